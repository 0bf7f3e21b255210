"""Instance-aware pruning criteria: ``method="activation"`` and ``method="bound"``."""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gurobi_sparse_surrogate import (
    Box,
    L1Ball,
    LinfBall,
    SurrogateSwap,
    UnboundedInputError,
    add_sparse_predictor_constr,
    find_adversarial,
    prune_network,
)
from gurobi_sparse_surrogate.exceptions import ShapeMismatchError
from gurobi_sparse_surrogate.network.extraction import network_forward

INSTANCE_AWARE = ("activation", "bound")


def mlp(sizes, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    mods = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=False):
        mods += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*mods[:-1]).to(dtype)


def zeros(net):
    return [int((m.weight == 0).sum()) for m in net if isinstance(m, nn.Linear)]


def state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("method", INSTANCE_AWARE)
@pytest.mark.parametrize("structure", ["global", "layer"])
def test_exact_counts_and_untouched_input(method, structure):
    net = mlp([5, 12, 7, 3])
    before = state(net)
    domain = Box(np.zeros(5), np.ones(5))  # wide: no neuron is dead, so counts are exact
    sparse = prune_network(net, 0.5, method=method, structure=structure, domain=domain, seed=0)
    n = [m.weight.numel() for m in net if isinstance(m, nn.Linear)]
    if structure == "global":
        assert sum(zeros(sparse)) == round(0.5 * sum(n))
    else:
        assert zeros(sparse) == [round(0.5 * k) for k in n]
    after = state(net)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sparse.pruning_report.method == method


@pytest.mark.parametrize("method", ["magnitude", "random", *INSTANCE_AWARE])
def test_row_structure_prunes_the_same_count_in_every_row(method):
    net = mlp([6, 10, 4])
    domain = LinfBall(np.full(6, 0.5), 0.5)
    kwargs = {"domain": domain} if method in INSTANCE_AWARE else {"seed": 1}
    sparse = prune_network(net, 0.5, method=method, structure="row", **kwargs)
    for m in sparse:
        if isinstance(m, nn.Linear):
            per_row = (m.weight == 0).sum(dim=1)
            assert torch.all(per_row == round(0.5 * m.in_features)), per_row


def _two_input_neuron():
    net = nn.Sequential(nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[2.0, 1.0]]))
        net[0].bias.zero_()
    return net


def test_criteria_by_hand():
    # weight 2 reads an input that stays below 0.01, weight 1 reads one up to 1:
    # magnitude prunes the 1, both instance-aware criteria prune the 2
    net = _two_input_neuron()
    domain = Box([0.0, 0.0], [0.01, 1.0])
    magnitude = prune_network(net, 0.5)
    assert magnitude[0].weight.tolist() == [[2.0, 0.0]]
    for method in INSTANCE_AWARE:
        pruned = prune_network(net, 0.5, method=method, domain=domain)
        assert pruned[0].weight.tolist() == [[0.0, 1.0]], method


def test_activation_scores_are_wanda_scores():
    from gurobi_sparse_surrogate.network.importance import activation_scores

    net = mlp([3, 4, 2], seed=3)
    domain = Box(np.zeros(3), np.ones(3))
    (s0, s1) = activation_scores(net, [net[0], net[2]], domain, 64, seed=7)
    x = torch.as_tensor(domain.sample(64, rng=7))
    with torch.no_grad():
        hidden = torch.relu(net.double()[0](x))
    expected0 = net[0].weight.double().abs() * x.norm(dim=0)
    expected1 = net[2].weight.double().abs() * hidden.norm(dim=0)
    torch.testing.assert_close(s0.double(), expected0)
    torch.testing.assert_close(s1.double(), expected1)


def test_bound_scores_by_hand_without_a_relu_between_linears():
    """``|w_ij| * max(|l_j|, |u_j|)``: the first layer reads the box [-1, 1]^2; the second
    reads the first's pre-activations (no ReLU between: the negative side counts in full)."""
    from gurobi_sparse_surrogate.network.importance import bound_scores

    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 2.0], [-2.0, -2.0]]))
        net[0].bias.copy_(torch.tensor([0.5, -2.0]))  # h in [-2.5, 3.5] x [-6, 2]
        net[1].weight.copy_(torch.tensor([[1.0, -3.0]]))
        net[1].bias.zero_()
    domain = Box(-np.ones(2), np.ones(2))
    scores, dead = bound_scores(net, ["0", "1"], [net[0], net[1]], domain, "interval")
    torch.testing.assert_close(
        scores[0], torch.tensor([[1.0, 2.0], [2.0, 2.0]], dtype=torch.float64)
    )
    torch.testing.assert_close(scores[1], torch.tensor([[3.5, 18.0]], dtype=torch.float64))
    assert not dead[0].any() and not dead[1].any()  # no ReLU: nothing is dead


def test_bound_pruning_with_colons_in_module_names():
    """Module names are matched to layers exactly (a ':' in a name once made the network
    refused): the masks are those of the same network with plain names."""
    from collections import OrderedDict

    plain = mlp([4, 6, 3], seed=5)
    named = nn.Sequential(OrderedDict([("in:0", plain[0]), ("act", plain[1]), ("out:1", plain[2])]))
    domain = Box(np.zeros(4), np.ones(4))
    a = prune_network(plain, 0.4, method="bound", domain=domain)
    b = prune_network(named, 0.4, method="bound", domain=domain)
    for m, n in zip((a[0], a[2]), (b[0], b[2]), strict=True):
        torch.testing.assert_close(m.weight, n.weight, rtol=0, atol=0)
    assert b.pruning_report.zeros == a.pruning_report.zeros == round(0.4 * (24 + 18))


def _net_with_dead_neuron():
    net = mlp([4, 6, 3], seed=2, dtype=torch.float64)
    with torch.no_grad():
        net[0].bias[1] = -100.0  # inactive everywhere on [0, 1]^4
    return net


def test_bound_criterion_removes_dead_neurons_losslessly():
    net = _net_with_dead_neuron()
    domain = Box(np.zeros(4), np.ones(4))
    sparse = prune_network(net, 0.0, method="bound", domain=domain)
    assert torch.all(sparse[0].weight[1] == 0) and sparse[0].bias[1] == 0
    pts = domain.sample(500, rng=0)
    np.testing.assert_allclose(network_forward(sparse, pts), network_forward(net, pts), atol=1e-12)
    assert sparse.pruning_report.sparsity > 0


def test_bound_criterion_removes_dead_neurons_of_bias_free_layers():
    """Without biases a neuron whose weights are all negative is dead on [0, 1]^4 (its
    pre-activation is at most 0 there): its row is zeroed and no output changes."""
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(4, 5, bias=False), nn.ReLU(), nn.Linear(5, 2, bias=False))
    net = net.double()
    with torch.no_grad():
        net[0].weight[3] = -net[0].weight[3].abs() - 0.1
        alive = [0, 1, 2, 4]
        net[0].weight[alive] = net[0].weight[alive].abs() + 0.1
    domain = Box(np.zeros(4), np.ones(4))
    sparse = prune_network(net, 0.0, method="bound", domain=domain)
    assert torch.all(sparse[0].weight[3] == 0) and sparse[0].bias is None
    assert int((sparse[0].weight == 0).sum()) == 4
    assert sparse.pruning_report.dead_neurons == 1
    pts = domain.sample(500, rng=0)
    np.testing.assert_allclose(network_forward(sparse, pts), network_forward(net, pts), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    radius=st.floats(0.01, 0.5),
    kind=st.sampled_from(["box", "linf", "l1"]),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
)
def test_bound_criterion_at_sparsity_zero_never_changes_an_output_on_the_domain(
    seed, radius, kind, scale
):
    net = mlp([5, 9, 7, 3], seed=seed, dtype=torch.float64)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.mul_(scale)
                m.bias.add_(torch.randn(m.bias.shape, dtype=torch.float64) * scale)
    rng = np.random.default_rng(seed)
    center = rng.uniform(0, 1, 5)
    domain = {
        "box": lambda: Box(np.clip(center - radius, 0, 1), np.clip(center + radius, 0, 1)),
        "linf": lambda: LinfBall(center, radius),
        "l1": lambda: L1Ball(center, radius),
    }[kind]()
    sparse = prune_network(net, 0.0, method="bound", domain=domain)
    pts = domain.sample(300, rng=seed)
    ref = network_forward(net, pts)
    got = network_forward(sparse, pts)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(ref).max()))


@pytest.mark.parametrize("norm_after", [True, False])
def test_bound_criterion_dead_neurons_with_batch_norm_stay_lossless(norm_after):
    """A batch norm folded after the Linear turns zeroed rows into its shift: those neurons
    are not dead by zeroing, so sparsity 0 must still change no output on the domain."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(6, 10), nn.BatchNorm1d(10), nn.ReLU(), nn.Linear(10, 3))
    if not norm_after:  # the norm before the Linear is folded into its input: dead is dead
        net = nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3))
    net = net.double().eval()
    norm = net[1] if norm_after else net[0]
    with torch.no_grad():
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        norm.weight.uniform_(-2, 2)
        norm.bias.copy_(torch.linspace(-1, 1, norm.bias.numel(), dtype=torch.float64))
    domain = LinfBall(np.full(6, 0.5), 0.05)
    sparse = prune_network(net, 0.0, method="bound", domain=domain)
    pts = domain.sample(300, rng=0)
    np.testing.assert_allclose(network_forward(sparse, pts), network_forward(net, pts), atol=1e-9)


def test_instance_aware_methods_need_a_matching_domain():
    net = mlp([3, 4, 2])
    for method in INSTANCE_AWARE:
        with pytest.raises(ValueError, match="domain"):
            prune_network(net, 0.5, method=method)
        with pytest.raises(ShapeMismatchError, match="4 inputs but the network has 3"):
            prune_network(net, 0.5, method=method, domain=Box(np.zeros(4), np.ones(4)))
        with pytest.raises(TypeError, match="Domain"):
            prune_network(net, 0.5, method=method, domain=np.ones(3))
    with pytest.raises(ValueError, match="instance-aware"):
        prune_network(net, 0.5, domain=Box(np.zeros(3), np.ones(3)))
    with pytest.raises(ValueError, match="n_samples"):
        prune_network(
            net, 0.5, method="activation", domain=Box(np.zeros(3), np.ones(3)), n_samples=0
        )
    with pytest.raises(ValueError, match="bound_method"):
        prune_network(
            net, 0.5, method="bound", domain=Box(np.zeros(3), np.ones(3)), bound_method="x"
        )


def test_swap_scores_over_the_input_bounds_when_no_domain_is_given():
    net = _net_with_dead_neuron()
    m = gp.Model()
    m.Params.OutputFlag = 0
    x = m.addMVar(4, lb=0.0, ub=1.0)
    y = m.addMVar(3, lb=-gp.GRB.INFINITY)
    pc = add_sparse_predictor_constr(m, net, x, y)
    m.setObjective(y[0], gp.GRB.MAXIMIZE)
    with SurrogateSwap(m, pc, surrogate=0.5, prune_options={"method": "bound"}) as swap:
        surrogate = swap.surrogates[0]
        assert torch.all(surrogate[0].weight[1] == 0)  # the dead neuron, found over [0, 1]^4
        result = swap.optimize(time_limit=20)
    assert result.status in ("optimal", "feasible")
    dense_value = network_forward(net, result.value(x))[0]
    assert result.objective == pytest.approx(dense_value, rel=1e-6, abs=1e-6)


def test_swap_refuses_instance_aware_pruning_over_unbounded_inputs():
    net = mlp([3, 4, 2])
    m = gp.Model()
    m.Params.OutputFlag = 0
    x = m.addMVar(3, lb=0.0, ub=1.0)
    pc = add_sparse_predictor_constr(m, net, x)
    x.UB = np.full(3, gp.GRB.INFINITY)
    with pytest.raises(UnboundedInputError, match="instance-aware"):
        SurrogateSwap(m, pc, surrogate=0.5, prune_options={"method": "activation"})


def test_find_adversarial_with_a_bound_aware_surrogate_is_judged_on_the_dense_network():
    net = mlp([6, 16, 16, 3], seed=5)
    x0 = np.full(6, 0.5, dtype=np.float64)
    label = int(network_forward(net, x0).argmax())
    r = find_adversarial(
        net,
        x0,
        LinfBall(x0, 0.3),
        target="any",
        surrogate=0.5,
        prune_options={"method": "bound"},
        time_limit=30,
        attack=False,
    )
    assert r.status in ("adversarial", "robust")
    if r.status == "adversarial":
        assert int(network_forward(net, r.x).argmax()) != label


def test_misspelled_pruning_options_are_named_at_every_boundary():
    from gurobi_sparse_surrogate import InvalidOptionError, maximize_output

    net = mlp([3, 4, 2])
    m = gp.Model()
    m.Params.OutputFlag = 0
    x = m.addMVar(3, lb=0.0, ub=1.0)
    pc = add_sparse_predictor_constr(m, net, x)
    before = m.NumVars
    with pytest.raises(InvalidOptionError, match="'structur'; did you mean 'structure'"):
        SurrogateSwap(m, pc, surrogate=0.5, prune_options={"structur": "row"})
    m.update()
    assert m.NumVars == before  # nothing was swapped
    x0 = np.full(3, 0.5)
    with pytest.raises(InvalidOptionError, match="pruning option 'methd'"):
        find_adversarial(net, x0, LinfBall(x0, 0.1), surrogate=0.5, prune_options={"methd": "x"})
    with pytest.raises(InvalidOptionError, match="pruning option 'sparsity'"):
        maximize_output(net, Box(np.zeros(3), np.ones(3)), prune_options={"sparsity": 0.5})


def test_a_module_used_at_two_places_keeps_both_and_its_neurons_die_only_if_dead_at_both():
    """One Linear object at places 0 and 2 (shared weights). Its neuron 2 is dead on the
    first layer's inputs, [0, 1]^3, but not on the second's: it may not be zeroed. The pruned
    copy once lost place 2 (built from named_children(), which skips repeats), and the bound
    criterion read the first place only: both changed what the network computes."""
    torch.manual_seed(115)
    shared = nn.Linear(3, 3)
    net = nn.Sequential(shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(3, 1)).double()
    domain = Box(np.zeros(3), np.ones(3))
    pts = domain.sample(500, rng=0)
    # the premise, by torch: neuron 2 is never positive at place 0, and is at place 2
    with torch.no_grad():
        first = shared(torch.from_numpy(pts))
        second = shared(torch.relu(first))
    assert (first[:, 2] <= 0).all() and (second[:, 2] > 0).any()
    for method in ("bound", "magnitude"):
        sparse = prune_network(
            net, 0.0, method=method, domain=domain if method == "bound" else None
        )
        assert len(sparse) == len(net) and sparse[0] is sparse[2]
        np.testing.assert_allclose(
            network_forward(sparse, pts), network_forward(net, pts), rtol=0, atol=1e-12
        )
