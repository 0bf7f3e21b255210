"""Tests of gurobi_sparse_surrogate.network.pruning: exact counts, untouched inputs, masks, reports."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from gurobi_sparse_surrogate.exceptions import InvalidOptionError, UnsupportedNetworkError
from gurobi_sparse_surrogate.network.extraction import (
    clone_network,
    extract_layers,
    network_forward,
)
from gurobi_sparse_surrogate.network.pruning import (
    FinetuneConfig,
    PruningReport,
    SparseSequential,
    check_prune_options,
    prune_network,
    pruning_report,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny networks train faster on one thread (no oversubscription on shared CI cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_net(sizes: list[int], seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    modules: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        modules.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


def linears(net: nn.Module) -> list[nn.Linear]:
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def eff(module: nn.Linear, name: str = "weight") -> np.ndarray:
    """Effective parameter recomputed by hand from orig and mask (independent of the hook)."""
    if hasattr(module, f"{name}_mask"):
        value = getattr(module, f"{name}_orig") * getattr(module, f"{name}_mask")
    else:
        value = getattr(module, name)
    return value.detach().numpy().astype(np.float64)


def snapshot(net: nn.Module) -> dict:
    return {
        "state": {k: v.clone() for k, v in net.state_dict().items()},
        "buffers": {k: v.clone() for k, v in net.named_buffers()},
        "params": {k: v.clone() for k, v in net.named_parameters()},
        "hooks": {
            name: list(m._forward_pre_hooks.items()) + list(m._forward_hooks.items())
            for name, m in net.named_modules()
        },
        "training": {name: m.training for name, m in net.named_modules()},
        "attrs": {name: sorted(vars(m)) for name, m in net.named_modules()},
    }


def assert_same(before: dict, after: dict) -> None:
    for key in ("state", "buffers", "params"):
        assert before[key].keys() == after[key].keys()
        for name, value in before[key].items():
            assert torch.equal(value, after[key][name]), (key, name)
    assert before["hooks"].keys() == after["hooks"].keys()
    for name, hooks in before["hooks"].items():
        assert [(k, id(h)) for k, h in hooks] == [(k, id(h)) for k, h in after["hooks"][name]]
    assert before["training"] == after["training"]
    assert before["attrs"] == after["attrs"]


sizes_strategy = st.lists(st.integers(1, 12), min_size=3, max_size=5)
sparsity_strategy = st.floats(0.0, 0.99, allow_nan=False, exclude_max=False)


# --------------------------------------------------------------------------- exact sparsity


@settings(max_examples=40, deadline=None)
@given(
    sizes=sizes_strategy,
    sparsity=sparsity_strategy,
    method=st.sampled_from(["magnitude", "random"]),
    prune_output=st.booleans(),
    rounds=st.integers(1, 3),
)
def test_global_sparsity_is_exact(sizes, sparsity, method, prune_output, rounds):
    net = make_net(sizes)
    sparse = prune_network(
        net, sparsity, method=method, prune_output=prune_output, rounds=rounds, seed=1
    )
    layers = linears(sparse)
    pruned = layers if prune_output else layers[:-1]
    n = sum(m.weight.numel() for m in pruned)
    zeros = sum(int((eff(m) == 0).sum()) for m in pruned)
    assert zeros == round(sparsity * n)
    if not prune_output:
        assert not hasattr(layers[-1], "weight_mask")
        assert torch.equal(layers[-1].weight, linears(net)[-1].weight)
    assert sparse.pruning_report.zeros == sum(int((eff(m) == 0).sum()) for m in layers)


@settings(max_examples=40, deadline=None)
@given(
    sizes=sizes_strategy,
    sparsity=sparsity_strategy,
    method=st.sampled_from(["magnitude", "random"]),
    rounds=st.integers(1, 3),
)
def test_layer_sparsity_is_exact(sizes, sparsity, method, rounds):
    sparse = prune_network(
        make_net(sizes), sparsity, structure="layer", method=method, rounds=rounds
    )
    for module in linears(sparse):
        w = eff(module)
        assert int((w == 0).sum()) == round(sparsity * w.size)


@settings(max_examples=40, deadline=None)
@given(
    sizes=sizes_strategy,
    sparsity=sparsity_strategy,
    method=st.sampled_from(["magnitude", "random"]),
    rounds=st.integers(1, 3),
)
def test_neuron_pruning_zeros_exact_number_of_whole_rows(sizes, sparsity, method, rounds):
    net = make_net(sizes)
    sparse = prune_network(net, sparsity, structure="neuron", method=method, rounds=rounds)
    layers = linears(sparse)
    for module in layers[:-1]:
        w, b = eff(module), eff(module, "bias")
        zero_rows = (w == 0).all(axis=1)
        assert int(zero_rows.sum()) == round(sparsity * w.shape[0])
        # whole rows only: no zero in a surviving row (random init has no exact zeros)
        assert not (w[~zero_rows] == 0).any()
        # the bias of a pruned neuron is zeroed, the others are kept
        assert (b[zero_rows] == 0).all()
        assert (b[~zero_rows] != 0).all()
    # the output layer is never neuron-pruned
    assert torch.equal(layers[-1].weight, linears(net)[-1].weight)
    report = sparse.pruning_report
    assert [layer.dead_neurons for layer in report.layers[:-1]] == [
        round(sparsity * m.out_features) for m in layers[:-1]
    ]


def test_neuron_pruning_can_keep_biases():
    net = make_net([5, 10, 3])
    sparse = prune_network(net, 0.5, structure="neuron", prune_bias=False)
    assert not hasattr(sparse[0], "bias_mask")
    assert torch.equal(sparse[0].bias, net[0].bias)
    assert int((eff(sparse[0]) == 0).all(axis=1).sum()) == 5


def test_sparsity_zero_keeps_weights_and_adds_masks():
    net = make_net([4, 6, 2])
    sparse = prune_network(net, 0.0)
    for a, b in zip(linears(sparse), linears(net), strict=True):
        assert hasattr(a, "weight_mask") and hasattr(a, "weight_orig")
        assert torch.equal(a.weight, b.weight)


# --------------------------------------------------------------------------- input untouched


@pytest.mark.parametrize("structure", ["global", "layer", "neuron"])
@pytest.mark.parametrize("permanent", [False, True])
def test_input_network_is_not_modified(structure, permanent):
    net = make_net([6, 8, 8, 3])
    net.register_forward_hook(lambda module, inputs, output: None)
    net[0].register_forward_pre_hook(lambda module, inputs: None)
    net.eval()
    net[2].train()
    prune.l1_unstructured(net[2], "weight", amount=10)  # already pruned: masks in place
    net(torch.randn(2, 6)).sum().backward()  # non-leaf cached weight, gradients
    before = snapshot(net)
    grads = {k: v.grad.clone() for k, v in net.named_parameters()}
    out_before = net(torch.ones(1, 6)).detach()
    sparse = prune_network(
        net,
        0.6,
        structure=structure,
        permanent=permanent,
        rounds=2,
        finetune=lambda m: None,
        rewind=True,
    )
    assert_same(before, snapshot(net))
    for k, v in net.named_parameters():
        assert torch.equal(v.grad, grads[k])
    assert torch.equal(net(torch.ones(1, 6)).detach(), out_before)
    # the copy is independent and keeps the training flags
    assert sparse.training is False and sparse[2].training is True
    assert all(a is not b for a, b in zip(linears(sparse), linears(net), strict=True))


def test_builtin_finetuning_does_not_modify_input():
    net = make_net([3, 8, 1])
    before = snapshot(net)
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    prune_network(net, 0.5, finetune={"epochs": 2}, data=(x, x.sum(axis=1)))
    assert_same(before, snapshot(net))


# --------------------------------------------------------------------------- random, magnitude


@pytest.mark.parametrize("structure", ["global", "layer", "neuron"])
def test_random_pruning_is_reproducible_with_seed(structure):
    net = make_net([10, 20, 20, 4])
    masks = []
    state = torch.random.get_rng_state()
    for seed in (3, 3, 4):
        sparse = prune_network(net, 0.5, method="random", structure=structure, seed=seed)
        masks.append(torch.cat([(m.weight == 0).flatten() for m in linears(sparse)]))
    assert torch.equal(torch.random.get_rng_state(), state)  # global generator untouched
    assert torch.equal(masks[0], masks[1])
    assert not torch.equal(masks[0], masks[2])
    magnitude = prune_network(net, 0.5, structure=structure)
    mag_mask = torch.cat([(m.weight == 0).flatten() for m in linears(magnitude)])
    assert not torch.equal(mag_mask, masks[0])


@settings(max_examples=20, deadline=None)
@given(sizes=sizes_strategy, sparsity=sparsity_strategy, seed=st.integers(0, 1000))
def test_global_magnitude_pruning_keeps_the_largest_weights(sizes, sparsity, seed):
    net = make_net(sizes, seed)
    sparse = prune_network(net, sparsity)
    dense = np.concatenate([m.weight.detach().numpy().ravel() for m in linears(net)])
    kept = np.concatenate([eff(m).ravel() != 0 for m in linears(sparse)])
    n_pruned = round(sparsity * dense.size)
    expected = np.zeros(dense.size, dtype=bool)
    expected[np.argsort(np.abs(dense), kind="stable")[n_pruned:]] = True
    assert np.array_equal(kept, expected)
    # surviving weights are the dense ones
    survived = np.concatenate([eff(m).ravel() for m in linears(sparse)])
    np.testing.assert_array_equal(survived[kept], dense[kept])


def test_layer_magnitude_pruning_keeps_the_largest_weights_of_each_layer():
    net = make_net([7, 9, 5, 3], seed=2)
    sparse = prune_network(net, 0.4, structure="layer")
    for a, b in zip(linears(sparse), linears(net), strict=True):
        w = b.weight.detach().numpy().ravel()
        k = round(0.4 * w.size)
        expected = np.ones(w.size, dtype=bool)
        expected[np.argsort(np.abs(w))[:k]] = False
        assert np.array_equal(eff(a).ravel() != 0, expected)


def test_neuron_magnitude_pruning_removes_rows_of_smallest_l2_norm():
    net = make_net([6, 10, 8, 2], seed=5)
    sparse = prune_network(net, 0.3, structure="neuron")
    for a, b in zip(linears(sparse)[:-1], linears(net)[:-1], strict=True):
        norms = np.linalg.norm(b.weight.detach().numpy(), axis=1)
        k = round(0.3 * len(norms))
        expected = np.zeros(len(norms), dtype=bool)
        expected[np.argsort(norms)[:k]] = True
        assert np.array_equal((eff(a) == 0).all(axis=1), expected)


# --------------------------------------------------------------------------- masks, forward


@pytest.mark.parametrize("structure", ["global", "layer", "neuron"])
def test_masks_present_unless_permanent(structure):
    net = make_net([5, 6, 4])
    sparse = prune_network(net, 0.5, structure=structure)
    assert isinstance(sparse, SparseSequential) and isinstance(sparse, nn.Sequential)
    pruned_layers = linears(sparse) if structure != "neuron" else linears(sparse)[:1]
    for module in pruned_layers:
        assert hasattr(module, "weight_orig") and hasattr(module, "weight_mask")
        assert prune.is_pruned(module)
    permanent = prune_network(net, 0.5, structure=structure, permanent=True)
    for module in linears(permanent):
        assert not prune.is_pruned(module)
        assert not hasattr(module, "weight_mask") and not hasattr(module, "bias_mask")
        assert isinstance(module.weight, nn.Parameter)
    for a, b in zip(linears(sparse), linears(permanent), strict=True):
        np.testing.assert_array_equal(eff(a), b.weight.detach().numpy())
        np.testing.assert_array_equal(eff(a, "bias"), b.bias.detach().numpy())


@pytest.mark.parametrize("structure", ["global", "layer", "neuron"])
def test_forward_equals_manual_masked_forward(structure):
    net = make_net([8, 16, 16, 3], seed=1)
    sparse = prune_network(net, 0.7, structure=structure)
    x = np.random.default_rng(0).normal(size=(20, 8))
    h = x
    layers = linears(sparse)
    for i, module in enumerate(layers):
        h = h @ eff(module).T + eff(module, "bias")
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    with torch.no_grad():
        out = sparse(torch.from_numpy(x).float()).numpy()
    np.testing.assert_allclose(out, h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(network_forward(sparse, x), h, rtol=1e-9, atol=1e-9)
    # the package's extraction sees the same sparsity
    extracted = extract_layers(sparse)
    assert [layer.nnz for layer in extracted] == [int((eff(m) != 0).sum()) for m in layers]


def test_nested_sequential_and_already_pruned_input():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Sequential(nn.Flatten(), nn.Linear(6, 10), nn.ReLU()),
        nn.Sequential(nn.Linear(10, 10), nn.ReLU()),
        nn.Linear(10, 2),
    )
    first = prune_network(net, 0.3)
    second = prune_network(first, 0.6)
    zeros1 = [eff(m) == 0 for m in linears(first)]
    zeros2 = [eff(m) == 0 for m in linears(second)]
    assert sum(int(z.sum()) for z in zeros2) == round(0.6 * 180)
    for z1, z2 in zip(zeros1, zeros2, strict=True):
        assert not (z1 & ~z2).any()  # nothing is un-pruned
    assert isinstance(second[0], nn.Sequential)
    assert second.pruning_report.layers[1].name == "1.0"


def test_more_existing_zeros_than_requested_keeps_them():
    net = make_net([6, 10, 2])
    with torch.no_grad():
        net[0].weight[:, :3] = 0.0  # 30 permanent zeros
    prune.random_unstructured(net[2], "weight", amount=4)  # 4 masked zeros
    total = 60 + 20
    sparse = prune_network(net, 0.1, method="random", seed=0)  # asks for 8 zeros only
    assert sparse.pruning_report.zeros == 34
    assert sparse.pruning_report.sparsity == pytest.approx(34 / total)
    # existing zeros count towards the target, and are masked now
    assert (sparse[0].weight_mask[:, :3] == 0).all()
    sparse = prune_network(net, 0.5, method="random", seed=0)  # asks for 40
    assert sparse.pruning_report.zeros == 40
    assert (eff(sparse[0])[:, :3] == 0).all()


def test_deepcopy_network_handles_non_leaf_cached_weights():
    sparse = prune_network(make_net([4, 5, 2]), 0.5)
    sparse(torch.randn(3, 4)).sum().backward()
    with pytest.raises(RuntimeError):
        copy.deepcopy(sparse)
    clone = clone_network(sparse)
    assert type(clone) is SparseSequential
    for a, b in zip(linears(clone), linears(sparse), strict=True):
        assert torch.equal(a.weight, b.weight) and a.weight_orig is not b.weight_orig
    # prune_network accepts such a network as input
    assert prune_network(sparse, 0.7).pruning_report.sparsity == pytest.approx(round(0.7 * 30) / 30)


# --------------------------------------------------------------------------- rounds, finetuning


@pytest.mark.parametrize(
    ("schedule", "levels"),
    [
        ("geometric", [1 - 0.2 ** (1 / 3), 1 - 0.2 ** (2 / 3), 0.8]),
        ("linear", [0.8 / 3, 1.6 / 3, 0.8]),
    ],
)
def test_rounds_follow_the_schedule(schedule, levels):
    net = make_net([10, 30, 10, 5])
    seen = []

    def record(network):
        assert isinstance(network, SparseSequential)
        report = pruning_report(network)
        seen.append(report.zeros)

    prune_network(net, 0.8, rounds=3, schedule=schedule, finetune=record)
    n = 300 + 300 + 50
    assert seen == [round(level * n) for level in levels]


def _regression_data():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(256, 4)).astype(np.float32)
    y = (np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] - 0.5 * x[:, 3]).astype(np.float32)
    return x, y


def test_builtin_finetuning_reduces_regression_loss_and_keeps_zeros():
    x, y = _regression_data()
    net = make_net([4, 32, 32, 1], seed=3)
    plain = prune_network(net, 0.7, data=(x, y))
    tuned = prune_network(
        net, 0.7, finetune={"epochs": 15, "lr": 1e-2, "batch_size": 128}, data=(x, y)
    )
    again = prune_network(net, 0.7, finetune=FinetuneConfig(15, 1e-2, 128, 0), data=(x, y))
    assert tuned.pruning_report.mse < 0.5 * plain.pruning_report.mse
    assert tuned.pruning_report.mse == pytest.approx(again.pruning_report.mse, rel=1e-6)
    # independent check of the reported loss
    mse = float(np.mean((network_forward(tuned, x).ravel() - y) ** 2))
    assert tuned.pruning_report.mse == pytest.approx(mse, rel=1e-9)
    # the masks kept the pruned weights at zero and the sparsity exact
    for a, b in zip(linears(plain), linears(tuned), strict=True):
        assert np.array_equal(eff(a) == 0, eff(b) == 0)
    assert tuned.pruning_report.zeros == round(0.7 * (128 + 1024 + 32))
    assert tuned.training is net.training


def test_unseeded_finetuning_draws_fresh_batches_and_leaves_the_global_rng_alone():
    """``seed=None``: each run shuffles differently (two runs agree only if all 32 batch
    orders of 256 samples coincide), the masks hold, and torch's global RNG is untouched."""
    x, y = _regression_data()
    net = make_net([4, 8, 1], seed=6)
    options = {"epochs": 2, "lr": 1e-2, "batch_size": 16, "seed": None}
    state = torch.get_rng_state()
    first = prune_network(net, 0.5, finetune=options, data=(x, y))
    second = prune_network(net, 0.5, finetune=options, data=(x, y))
    assert torch.equal(torch.get_rng_state(), state)
    assert not np.array_equal(eff(linears(first)[0]), eff(linears(second)[0]))
    for a, b in zip(linears(first), linears(second), strict=True):
        assert np.array_equal(eff(a) == 0, eff(b) == 0)  # same magnitude masks, kept
    assert first.pruning_report.zeros == round(0.5 * (32 + 8))


def test_builtin_finetuning_improves_digits_accuracy():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target
    net = make_net([64, 32, 10], seed=0)
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=2e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    plain = prune_network(net, 0.9, data=(x, y))
    tuned = prune_network(
        net, 0.9, data=(x, y), finetune={"epochs": 2, "lr": 1e-2, "batch_size": 128}
    )
    acc = float(np.mean(network_forward(tuned, x).argmax(axis=1) == y))
    assert tuned.pruning_report.accuracy == pytest.approx(acc)
    assert tuned.pruning_report.accuracy > plain.pruning_report.accuracy + 0.05


def test_rewind_restores_surviving_weights():
    x, y = _regression_data()
    net = make_net([4, 16, 16, 1], seed=4)
    calls = []

    def shake(network):
        calls.append(1)
        with torch.no_grad():
            for m in linears(network):
                m.weight_orig.add_(torch.randn_like(m.weight_orig))

    sparse = prune_network(net, 0.8, rounds=3, finetune=shake, rewind=True)
    assert len(calls) == 2  # no finetuning after the last round when rewinding
    for a, b in zip(linears(sparse), linears(net), strict=True):
        w, dense = eff(a), b.weight.detach().numpy()
        keep = w != 0
        np.testing.assert_array_equal(w[keep], dense[keep])
        np.testing.assert_array_equal(eff(a, "bias"), b.bias.detach().numpy())
    assert sparse.pruning_report.zeros == round(0.8 * (64 + 256 + 16))
    # the masks depend on the finetuned weights: rounds with shaking differ from one-shot MP
    one_shot = prune_network(net, 0.8)
    assert any(
        not np.array_equal(eff(a) == 0, eff(b) == 0)
        for a, b in zip(linears(sparse), linears(one_shot), strict=True)
    )
    # without rewind the finetuned weights stay
    tuned = prune_network(net, 0.8, rounds=3, finetune=shake)
    assert len(calls) == 5
    kept = eff(tuned[0]) != 0
    assert not np.array_equal(eff(tuned[0])[kept], net[0].weight.detach().numpy()[kept])


# --------------------------------------------------------------------------- report


def test_report_counts_on_hand_made_network():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        for m in linears(net):
            m.weight.fill_(1.0)
            m.bias.fill_(0.5)
        net[0].weight[0] = 0.0
        net[0].bias[0] = 0.0  # neuron 0 of layer 0: dead
        net[0].weight[1] = 0.0  # neuron 1: zero weights but bias 0.5, not dead
        net[2].weight[:, 3] = 0.0  # neuron 3 of layer 0 unused by layer 1
        net[2].weight[1] = 0.0
        net[2].bias[1] = 0.0  # neuron 1 of layer 1: dead
        net[4].weight[:, 2] = 0.0  # neuron 2 of layer 1 unused
        net[4].weight[:, 1] = 0.0  # neuron 1 of layer 1 unused too
    prune.identity(net[4], "weight")
    report = pruning_report(net)
    assert isinstance(report, PruningReport)
    got = [
        (r.name, r.weights, r.zeros, r.neurons, r.dead_neurons, r.unused_neurons, r.pruned)
        for r in report.layers
    ]
    assert got == [
        ("0", 12, 6, 4, 1, 1, False),
        ("2", 12, 6, 3, 1, 2, False),
        ("4", 6, 4, 2, 0, 0, True),
    ]
    assert report.weights == 30 and report.zeros == 16
    assert report.sparsity == pytest.approx(16 / 30)
    assert report.pruned_sparsity == pytest.approx(4 / 6)
    assert report.dead_neurons == 2 and report.unused_neurons == 3
    assert report.accuracy is None and report.mse is None and report.seconds is None
    as_dict = report.to_dict()
    json.dumps(as_dict)
    assert as_dict["layers"][1]["dead_neurons"] == 1
    text = str(report)
    assert "overall" in text and "0.5333" in text and "dead" in text


def test_report_counts_on_hand_made_convolutions():
    """Dead channels of a bias-free convolution; unused channels read by the next convolution,
    with groups=1 (a channel is a column of every kernel) and groups=2 (a channel is read by
    its group's kernels only)."""
    net = nn.Sequential(
        nn.Unflatten(1, (1, 4, 4)),
        nn.Conv2d(1, 4, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(4, 4, 1),
        nn.ReLU(),
        nn.Conv2d(4, 2, 1, groups=2),
        nn.Flatten(),
        nn.Linear(32, 3),
    )
    with torch.no_grad():
        for m in net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.fill_(1.0)
        net[1].weight[2] = 0.0  # channel 2: dead (no bias)
        net[3].weight[:, 1] = 0.0  # channel 1 unused by the 1x1 convolution
        net[3].weight[:, 3] = 0.0  # and channel 3
        net[5].weight[1, 0] = 0.0  # channel 2 (group 1, first input) unused by the grouped one
        net[5].weight[0, 1] = 0.0  # channel 1 (group 0, second input) too
        net[7].weight[:, 5] = 0.0  # a column of the Linear: not a channel, no unused count
    report = pruning_report(net)
    got = [(r.name, r.weights, r.zeros, r.dead_neurons, r.unused_neurons) for r in report.layers]
    assert got == [
        ("1", 36, 9, 1, 2),
        ("3", 16, 8, 0, 2),
        ("5", 4, 2, 0, 0),
        ("7", 96, 3, 0, 0),
    ]


def test_report_text_shows_finetuning_time_and_accuracy():
    x = np.eye(3, dtype=np.float32)
    labels = np.array([0, 1, 1])
    net = nn.Sequential(nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
        net[0].bias.zero_()
    report = pruning_report(net, (x, labels))
    assert report.accuracy == pytest.approx(2 / 3)  # the second sample: a tie, argmax 0
    report.seconds, report.finetune_seconds = 1.5, 0.25
    text = str(report)
    assert text.splitlines()[0] == "Pruning report, 1.500 s (0.250 s finetuning)"
    assert "accuracy: 0.6667" in text
    report.finetune_seconds = 0.0  # no finetuning: no mention
    assert str(report).splitlines()[0] == "Pruning report, 1.500 s"


def test_report_of_prune_network_has_request_time_and_metrics():
    x, y = _regression_data()
    sparse = prune_network(make_net([4, 8, 1]), 0.5, structure="layer", data=(x, y))
    report = sparse.pruning_report
    assert (report.method, report.structure, report.rounds) == ("magnitude", "layer", 1)
    assert report.target_sparsity == 0.5 and report.seconds >= 0
    assert report.finetune_seconds == 0.0
    assert report.mse == pytest.approx(
        float(np.mean((network_forward(sparse, x).ravel() - y) ** 2))
    )
    assert "magnitude layer pruning to 0.5000" in str(report) and "mse" in str(report)
    labels = (y > 0).astype(np.int64)
    acc = pruning_report(sparse, (x, labels)).accuracy
    assert acc == pytest.approx(float(np.mean(network_forward(sparse, x).argmax(axis=1) == labels)))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (1.0, r"in \[0, 1\)"),
        (-0.1, r"in \[0, 1\)"),
        (float("nan"), r"in \[0, 1\)"),
        (math.inf, r"in \[0, 1\)"),
        ("0.5", "real number"),
        (None, "real number"),
        (True, "real number"),
    ],
)
def test_bad_sparsity(value, match):
    with pytest.raises(ValueError, match=match):
        prune_network(make_net([3, 4, 2]), value)


def test_numpy_sparsity_accepted():
    sparse = prune_network(make_net([3, 4, 2]), np.float32(0.5))
    assert sparse.pruning_report.zeros == 10


def test_unknown_method_structure_schedule():
    net = make_net([3, 4, 2])
    with pytest.raises(ValueError, match="unknown pruning method 'l2'.*magnitude, random"):
        prune_network(net, 0.5, method="l2")
    with pytest.raises(
        ValueError, match="unknown pruning structure 'channel'.*global, layer, row, neuron"
    ):
        prune_network(net, 0.5, structure="channel")
    with pytest.raises(ValueError, match="unknown schedule 'cubic'.*geometric, linear"):
        prune_network(net, 0.5, schedule="cubic")


def test_network_errors():
    with pytest.raises(UnsupportedNetworkError, match="no nn.Linear or nn.Conv2d layer"):
        prune_network(nn.Sequential(nn.ReLU()), 0.5)
    with pytest.raises(UnsupportedNetworkError, match="expected a torch.nn.Sequential"):
        prune_network(nn.Linear(3, 2), 0.5)
    single = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(
        UnsupportedNetworkError, match="only Linear layer is its output.*never neuron"
    ):
        prune_network(single, 0.5, structure="neuron")
    with pytest.raises(UnsupportedNetworkError, match="prune_output=False"):
        prune_network(single, 0.5, prune_output=False)
    assert prune_network(single, 0.5).pruning_report.zeros == 3
    with pytest.raises(UnsupportedNetworkError, match="no nn.Linear or nn.Conv2d layer"):
        pruning_report(nn.Sequential(nn.ReLU()))


def test_argument_errors():
    net = make_net([3, 4, 2])
    with pytest.raises(ValueError, match="rounds must be a positive integer"):
        prune_network(net, 0.5, rounds=0)
    with pytest.raises(ValueError, match="built-in finetuning needs data"):
        prune_network(net, 0.5, finetune={"epochs": 1})
    with pytest.raises(
        ValueError, match=r"unknown finetune option 'epoch'; did you mean 'epochs'?"
    ):
        prune_network(net, 0.5, finetune={"epoch": 1}, data=(np.zeros((2, 3)), np.zeros(2)))
    with pytest.raises(ValueError, match="finetune must be None, a callable"):
        prune_network(net, 0.5, finetune=3)
    with pytest.raises(ValueError, match="seed must be an integer"):
        prune_network(net, 0.5, method="random", seed=1.5)
    with pytest.raises(ValueError, match="data must be X of shape"):
        prune_network(net, 0.5, data=(np.zeros((3, 3)), np.zeros(2)))
    with pytest.raises(ValueError, match="finetune lr must be a positive number"):
        FinetuneConfig(lr=0)
    with pytest.raises(ValueError, match="finetune epochs must be a non-negative integer, got -1"):
        FinetuneConfig(epochs=-1)
    with pytest.raises(ValueError, match="finetune batch_size must be a positive integer, got 0"):
        FinetuneConfig(batch_size=0)
    with pytest.raises(ValueError, match="data must be a pair \\(X, y\\), got ndarray"):
        prune_network(net, 0.5, data=np.zeros((3, 3)))
    with pytest.raises(InvalidOptionError, match="prune_options must be a dict.*got str"):
        check_prune_options("magnitude")
    nan_net = make_net([3, 4, 2])
    with torch.no_grad():
        nan_net[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        prune_network(nan_net, 0.5)
