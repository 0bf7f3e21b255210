"""CNNs through the rest of the package unchanged: pruning (unstructured, by output channel),
the gurobi-ml dispatch, SurrogateSwap, find_adversarial and maximize_output."""

from __future__ import annotations

import gurobi_ml
import gurobipy as gp
import numpy as np
import pytest
import torch
from cnn_helpers import make_cnn
from conftest import forward64
from torch import nn

from gurobi_sparse_surrogate import (
    Box,
    LinfBall,
    SparseSequentialConstr,
    SurrogateSwap,
    UnsupportedNetworkError,
    add_sparse_predictor_constr,
    find_adversarial,
    maximize_output,
    prune_network,
)
from gurobi_sparse_surrogate.network.extraction import extract_layers


def quiet_model() -> gp.Model:
    m = gp.Model()
    m.Params.OutputFlag = 0
    m.Params.Threads = 1
    return m


def small_cnn(seed: int = 0) -> nn.Sequential:
    return make_cnn(
        seed=seed,
        c_in=1,
        h=6,
        w=6,
        c_out=3,
        kernel=(3, 3),
        pool="max",
        pool_kernel=2,
        pool_stride=2,
        second_conv=False,
        n_out=3,
    )


def conv_and_linear_weights(net):
    return [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@pytest.mark.parametrize("structure", ["global", "layer"])
def test_unstructured_pruning_of_convolutions(structure):
    net = small_cnn()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    sparse = prune_network(net, 0.5, structure=structure)
    weights = conv_and_linear_weights(sparse)
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert zeros == round(0.5 * total)
    if structure == "layer":
        for w in weights:
            assert int((w == 0).sum()) == round(0.5 * w.numel())
    assert hasattr(sparse[1], "weight_mask")  # masks in place on the Conv2d
    assert all(torch.equal(state[k], net.state_dict()[k]) for k in state)
    # the masks are read by the embedding, which stores only the surviving weights
    dense_nnz = extract_layers(net)[0].nnz
    assert extract_layers(sparse)[0].nnz < dense_nnz


def test_structured_pruning_removes_whole_output_channels():
    net = small_cnn(1)
    sparse = prune_network(net, 0.34, structure="neuron")
    w = sparse[1].weight
    dead = (w.flatten(1) == 0).all(dim=1)
    assert int(dead.sum()) == round(0.34 * 3)
    assert torch.all(sparse[1].bias[dead] == 0)  # dead channels output nothing
    m = quiet_model()
    x = m.addMVar((1, 36), lb=0, ub=1)
    pc = add_sparse_predictor_constr(m, sparse, x, bounds="linear")
    # every position of a dead channel is a constant neuron: no variable
    assert pc.stats["layers"][0]["removed"] >= int(dead.sum()) * 16
    m.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
    m.optimize()
    assert pc.get_error().max() < 1e-5


def test_instance_aware_pruning_refuses_cnns_by_name():
    with pytest.raises(UnsupportedNetworkError, match=r"module '1' is a Conv2d"):
        prune_network(small_cnn(), 0.5, method="activation", domain=Box(np.zeros(36), np.ones(36)))


def test_gurobi_ml_dispatch_of_a_pruned_cnn():
    sparse = prune_network(small_cnn(2), 0.5)
    m = quiet_model()
    x = m.addMVar((1, 36), lb=0, ub=1)
    pc = gurobi_ml.add_predictor_constr(m, sparse, x)
    assert isinstance(pc, SparseSequentialConstr)
    m.setObjective(pc.output[0, 1], gp.GRB.MAXIMIZE)
    m.optimize()
    assert pc.get_error().max() < 1e-5


def test_surrogate_swap_on_a_cnn_is_judged_on_the_dense_network():
    net = small_cnn(3)
    m = quiet_model()
    x = m.addMVar((1, 36), lb=0, ub=1)
    pc = add_sparse_predictor_constr(m, net, x, bounds="linear")
    m.setObjective(pc.output[0, 0] - pc.output[0, 1], gp.GRB.MAXIMIZE)
    m.optimize()
    optimum = m.ObjVal
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=30)
    point = result.value(x).reshape(1, -1)
    dense = forward64(net, point)[0]
    assert result.objective == pytest.approx(dense[0] - dense[1], abs=1e-5)
    assert result.objective <= optimum + 1e-4 * (1 + abs(optimum))
    m.optimize()
    assert m.ObjVal == pytest.approx(optimum, abs=1e-5)


def test_find_adversarial_and_maximize_output_on_a_cnn():
    net = small_cnn(4)
    rng = np.random.default_rng(0)
    x0 = rng.random(36)
    label = int(forward64(net, x0[None, :])[0].argmax())
    result = find_adversarial(
        net, x0, LinfBall(x0, 0.3, lower=0.0, upper=1.0), time_limit=10, true_label=label
    )
    assert result.status in ("adversarial", "robust")
    if result.status == "adversarial":
        y = forward64(net, np.asarray(result.x).reshape(1, -1))[0]
        assert int(y.argmax()) != label
        assert np.abs(np.asarray(result.x) - x0).max() <= 0.3 + 1e-6
    best = maximize_output(net, Box(np.zeros(36), np.ones(36)), time_limit=5)
    value = forward64(net, np.asarray(best.x).reshape(1, -1))[0, 0]
    assert best.value == pytest.approx(value, abs=1e-5)
    samples = rng.random((500, 36))
    if best.bound is not None:  # a proven bound holds for every input of the box
        assert forward64(net, samples)[:, 0].max() <= best.bound + 1e-4 * (1 + abs(value))
