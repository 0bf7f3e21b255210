"""The sparse embedding: exactness against torch, counts, gurobi-ml parity, remove, errors."""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
import torch
from conftest import forward64, random_network
from gurobi_ml import add_predictor_constr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from gurobi_sparse_surrogate import (
    NetworkBounds,
    ShapeMismatchError,
    UnboundedInputError,
    UnsupportedNetworkError,
    add_sparse_predictor_constr,
)

FORMULATIONS = ("bigm", "max", "indicator")
network_args = {
    "seed": st.integers(0, 100_000),
    "n_in": st.integers(1, 5),
    "hidden": st.lists(st.integers(1, 8), min_size=0, max_size=3).map(tuple),
    "n_out": st.integers(1, 3),
    "density": st.sampled_from([1.0, 0.7, 0.4, 0.15]),
    "masks": st.booleans(),
    "zero_rows": st.booleans(),
    "zero_cols": st.booleans(),
    "final_relu": st.booleans(),
}


#: Solver tolerances tightened in these exactness tests: with Gurobi's defaults an output may
#: be off by IntFeasTol (1e-5) times a big-M, and an optimum by MIPGap (1e-4 relative), which
#: the 1e-5 / 1e-6 comparisons below would not allow.
TIGHT = {"IntFeasTol": 1e-9, "FeasibilityTol": 1e-9}


def tighten(m: gp.Model, mip_gap: bool = False) -> gp.Model:
    for name, value in TIGHT.items():
        m.setParam(name, value)
    if mip_gap:
        m.Params.MIPGap = 1e-9
    return m


def quiet_model() -> gp.Model:
    m = gp.Model()
    m.Params.OutputFlag = 0
    m.Params.Threads = 1
    return tighten(m)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**network_args, formulation=st.sampled_from(FORMULATIONS))
def test_fixed_inputs_reproduce_forward_pass(formulation, **kwargs):
    net = random_network(**kwargs)
    rng = np.random.default_rng(kwargs["seed"])
    points = rng.uniform(-1, 1, (3, kwargs["n_in"]))
    m = quiet_model()
    x = m.addMVar(points.shape, lb=-1.0, ub=1.0)
    pc = add_sparse_predictor_constr(m, net, x, relu_formulation=formulation)
    # fixed through the variables' bounds: rows would count against the size-limited licence
    x.LB, x.UB = points, points
    m.optimize()
    assert m.Status == gp.GRB.OPTIMAL
    np.testing.assert_allclose(pc.output_values, forward64(net, points), rtol=1e-5, atol=1e-5)
    assert pc.get_error().max() < 1e-5


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**network_args, formulation=st.sampled_from(FORMULATIONS))
def test_free_optimum_is_exact_and_beats_every_sample(formulation, **kwargs):
    net = random_network(**kwargs)
    n_in, n_out = kwargs["n_in"], kwargs["n_out"]
    rng = np.random.default_rng(kwargs["seed"] + 1)
    c = rng.normal(size=n_out)
    m = quiet_model()
    x = m.addMVar(n_in, lb=0.0, ub=1.0)
    pc = add_sparse_predictor_constr(m, net, x, relu_formulation=formulation)
    m.setObjective(c @ pc.output[0], gp.GRB.MAXIMIZE)
    m.optimize()
    assert m.Status == gp.GRB.OPTIMAL
    # exact at the solver's input
    at_solution = forward64(net, x.X)[0]
    assert abs(c @ at_solution - m.ObjVal) <= 1e-5 * (1 + abs(m.ObjVal))
    # a global optimum: no sampled input (random or vertex) does better than the proven bound
    # (ObjVal itself is only within MIPGap, 1e-4 relative, of the optimum, so a sample may beat
    # it); the bound is padded by the feasibility tolerances the solver works with
    samples = np.vstack([rng.random((2000, n_in)), rng.integers(0, 2, (500, n_in))])
    sampled = (forward64(net, samples) @ c).max()
    assert m.ObjBound >= m.ObjVal - 1e-9
    assert sampled <= m.ObjBound + 1e-5 * (1 + abs(m.ObjBound))
    assert m.ObjVal >= sampled - m.Params.MIPGap * abs(m.ObjBound) - 1e-5 * (1 + abs(sampled))


def test_one_dimensional_input_list_of_vars_and_given_outputs(model):
    net = random_network(0, 3, (5,), 2)
    x = [model.addVar(lb=0, ub=1) for _ in range(3)]
    y = model.addMVar(2, lb=-gp.GRB.INFINITY)
    pc = add_sparse_predictor_constr(model, net, x, y)
    model.addConstrs(x[i] == 0.25 * (i + 1) for i in range(3))
    tighten(model).optimize()
    np.testing.assert_allclose(y.X, forward64(net, [0.25, 0.5, 0.75])[0], atol=1e-6)
    assert pc.output.shape == (1, 2)


def test_hand_made_network_has_exactly_the_expected_counts(model):
    # x in [0, 1]^2. Hidden neurons: active, inactive, constant (zero row), unstable, and an
    # unstable neuron that the output does not read.
    first = nn.Linear(2, 5)
    second = nn.Linear(5, 1)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1, 1], [-1, -1], [0, 0], [1, -1], [1, 0]]))
        first.bias.copy_(torch.tensor([0.5, -0.1, 0.3, 0.0, -0.5]))
        second.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0, 0.0]]))
        second.bias.fill_(0.25)
    net = nn.Sequential(first, nn.ReLU(), second)
    x = model.addMVar(2, lb=0.0, ub=1.0)
    pc = add_sparse_predictor_constr(model, net, x)
    hidden, out = pc.stats["layers"]
    assert (hidden["active"], hidden["inactive"], hidden["constant"]) == (1, 1, 1)
    assert (hidden["unstable"], hidden["unread"], hidden["removed"]) == (1, 1, 3)
    assert pc.stats["binaries"] == 1
    # hidden: 2 neuron variables + 1 binary; output: 1 created variable
    assert pc.stats["variables"] == 4
    # active: 1 row, unstable: 3 rows (big-M), output: 1 row
    assert pc.stats["constraints"] == 5
    # constant neuron folded into the output bias: 0.25 + 3 * 0.3
    model.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
    tighten(model, mip_gap=True).optimize()
    expected = max(forward64(net, p)[0, 0] for p in [[0, 0], [0, 1], [1, 0], [1, 1]])
    assert model.ObjVal == pytest.approx(expected)


def dense_and_sparse_optimum(net, formulation, objective):
    values, models = [], []
    for embed in ("gurobi-ml", "sparse"):
        m = tighten(quiet_model(), mip_gap=True)  # two optima compared at 1e-6
        x = m.addMVar(4, lb=-1.0, ub=1.0)
        if embed == "gurobi-ml":
            pc = add_predictor_constr(m, net, x)
        else:
            pc = add_sparse_predictor_constr(m, net, x, relu_formulation=formulation)
        m.setObjective(objective @ pc.output[0], gp.GRB.MAXIMIZE)
        m.optimize()
        values.append(m.ObjVal)
        models.append((m, pc))
    return values, models


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_same_optimum_as_gurobi_ml(formulation):
    net = random_network(7, 4, (10, 8), 3)
    (dense, sparse), _ = dense_and_sparse_optimum(net, formulation, np.array([1.0, -2.0, 0.5]))
    assert sparse == pytest.approx(dense, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_fewer_disjunctions_and_no_larger_model_than_gurobi_ml_on_pruned_network(formulation):
    net = random_network(11, 4, (12, 12), 2, density=0.3, zero_rows=True, zero_cols=True)
    (dense, sparse), models = dense_and_sparse_optimum(net, formulation, np.array([1.0, -1.0]))
    assert sparse == pytest.approx(dense, rel=1e-6, abs=1e-6)
    (_, ml), (_, ours) = models
    ml_disjunctions = len(ml.genconstrs)  # one max constraint per ReLU neuron
    ours_disjunctions = ours.stats["disjunctions"]
    assert ours_disjunctions < ml_disjunctions == 24
    if formulation == "max":
        assert len(ours.vars) <= len(ml.vars)
        assert len(ours.constrs) <= len(ml.constrs)
        assert len(ours.genconstrs) == ours_disjunctions


def test_remove_leaves_model_as_before(model):
    net = random_network(5, 3, (6, 6), 2, density=0.6)
    x = model.addMVar(3, lb=0.0, ub=1.0)
    model.addConstr(x.sum() <= 2)
    model.update()
    before = (model.NumVars, model.NumConstrs, model.NumGenConstrs, model.NumNZs)
    for formulation in FORMULATIONS:
        pc = add_sparse_predictor_constr(model, net, x, relu_formulation=formulation)
        model.update()
        assert model.NumVars > before[0]
        pc.remove()
        model.update()
        assert (model.NumVars, model.NumConstrs, model.NumGenConstrs, model.NumNZs) == before
    # user-given outputs survive remove()
    y = model.addMVar(2, lb=-gp.GRB.INFINITY)
    add_sparse_predictor_constr(model, net, x, y).remove()
    model.update()
    assert model.NumVars == before[0] + 2


def test_bounds_are_exposed_and_user_bounds_are_used(model):
    net = random_network(3, 3, (4,), 1)
    x = model.addMVar(3, lb=0.0, ub=1.0)
    pc = add_sparse_predictor_constr(model, net, x)
    assert pc.bounds.method == "auto" and pc.bounds.lower[0].shape == (1, 4)
    wide = NetworkBounds([b - 1 for b in pc.bounds.lower], [b + 1 for b in pc.bounds.upper])
    pc2 = add_sparse_predictor_constr(model, net, x, bounds=wide)
    assert pc2.bounds is wide
    assert pc2.stats["layers"][0]["unstable"] >= pc.stats["layers"][0]["unstable"]


def test_print_stats_reports_each_layer(capsys, model):
    net = random_network(0, 3, (4, 4), 2)
    pc = add_sparse_predictor_constr(model, net, model.addMVar(3, lb=0, ub=1))
    pc.print_stats()
    out = capsys.readouterr().out
    for word in ("Neurons", "Removed", "Active", "Inactive", "Binaries", "Weights", "layer 2"):
        assert word in out


def test_unbounded_inputs_named_for_big_m_but_fine_for_max(model):
    net = random_network(0, 4, (5,), 1)
    x = model.addMVar(4, lb=0.0, ub=1.0)
    x[2].LB = -gp.GRB.INFINITY
    with pytest.raises(UnboundedInputError, match=r"inputs \[2\].*relu_formulation='max'"):
        add_sparse_predictor_constr(model, net, x)
    pc = add_sparse_predictor_constr(model, net, x, relu_formulation="max")
    model.addConstr(x[2] == 0.3)
    tighten(model).optimize()
    assert pc.get_error().max() < 1e-6


def test_shape_errors(model):
    net = random_network(0, 4, (5,), 2)
    with pytest.raises(ShapeMismatchError, match="expects 4 inputs"):
        add_sparse_predictor_constr(model, net, model.addMVar(3))
    with pytest.raises(ShapeMismatchError, match=r"shape \(1, 2\)"):
        add_sparse_predictor_constr(model, net, model.addMVar(4), model.addMVar(3))


def test_other_errors(model):
    x = model.addMVar(3, lb=0, ub=1)
    with pytest.raises(UnsupportedNetworkError, match="Tanh"):
        add_sparse_predictor_constr(model, nn.Sequential(nn.Linear(3, 2), nn.Tanh()), x)
    with pytest.raises(ValueError, match="unknown relu_formulation"):
        add_sparse_predictor_constr(model, random_network(0, 3, (2,), 1), x, relu_formulation="x")
    with pytest.raises(TypeError, match="bounds must be"):
        add_sparse_predictor_constr(model, random_network(0, 3, (2,), 1), x, bounds=3)


def test_network_is_not_modified(model):
    net = random_network(0, 3, (6,), 2, masks=True).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    pc = add_sparse_predictor_constr(model, net, model.addMVar(3, lb=0, ub=1))
    model.optimize()
    pc.get_error()
    assert net.training
    after = net.state_dict()
    assert set(after) == set(before)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_bounds_computed_for_smaller_inputs_are_refused():
    """bounds= from a smaller box would cut off reachable values: maximising gave -0.0085
    where torch reaches 0.2 on this network."""
    from gurobi_sparse_surrogate import InvalidOptionError, L1Ball, compute_bounds
    from gurobi_sparse_surrogate.network import extract_layers

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)).double()
    layers = extract_layers(net)
    small = compute_bounds(layers, np.zeros(3), np.full(3, 0.1), method="linear")
    ball = L1Ball(np.full(3, 0.5), 0.2)
    over_ball = compute_bounds(layers, np.zeros(3), np.ones(3), method="linear", domain=ball)
    wide = compute_bounds(layers, np.zeros(3), np.ones(3), method="linear")
    # a larger box than computed for; a larger box than the ball's box the bounds assumed
    cases = [(small, None, 1.0, "smaller box"), (over_ball, None, 1.0, "smaller box")]
    for bounds, domain, hi, match in cases:
        m = gp.Model()
        x = m.addMVar(3, lb=1.0 - hi, ub=hi)
        with pytest.raises(InvalidOptionError, match=match):
            add_sparse_predictor_constr(m, net, x, bounds=bounds, domain=domain)
        m.dispose()
    # the same box, or the same domain: accepted, and the model's maximum is torch's
    for bounds, domain in [(wide, None), (over_ball, ball), (small, None)]:
        m = gp.Model()
        m.Params.OutputFlag = 0
        hi = 0.1 if bounds is small else 1.0
        x = m.addMVar(3, lb=0, ub=hi)
        if domain is not None:
            domain.add_to_model(m, x)
        pc = add_sparse_predictor_constr(m, net, x, bounds=bounds, domain=domain)
        m.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
        m.optimize()
        pts = (
            domain.sample(2000, rng=0)
            if domain
            else np.random.default_rng(0).random((2000, 3)) * hi
        )
        assert m.ObjBound >= forward64(net, pts).max() - 1e-6
        m.dispose()
