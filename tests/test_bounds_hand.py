"""Bounds and stable neurons of a 2-2-2-1 network, computed by hand.

Soundness tests cannot see a bound that is sound but looser than the method promises (for example
a post-activation lower bound that is no longer clamped at 0). This network's bounds are worked
out below by hand for interval arithmetic and for the linear (CROWN) relaxation. Its weights are
exact in float32, so the numbers are exact up to the linear stage's 1e-9 relative rounding pad.

    x in [-1, 1]^2
    layer 1  h1 = x1 + x2 - 0.5    in [-2.5, 1.5]    unstable
             h2 = x1 - x2 - 3      in [-5, -1]       stable inactive: relu(h2) = 0
             post-activation: a1 in [0, 1.5], a2 in [0, 0]
    layer 2  g1 = a1 + 0.125       in [0.125, 1.625] stable active
             g2 = a1 - a2 - 1.25   in [-1.25, 0.25]  unstable
             post-activation: b1 in [0.125, 1.625], b2 in [0, 0.25]
    output   y = 2 b1 - b2 + 1
             interval: [2 (0.125) - 0.25 + 1, 2 (1.625) - 0 + 1] = [1, 4.25]
             linear: b2 <= 0.25 / 1.5 (g2 + 1.25) = a1 / 6 (chord), b2 >= 0 (CROWN: 0.25 < 1.25),
                     a1 >= 0 (CROWN: 1.5 < 2.5), a1 <= 0.375 (h1 + 2.5) <= 1.5, so
                     y >= 2 (a1 + 0.125) - a1 / 6 + 1 = 11 a1 / 6 + 1.25 >= 1.25
                     y <= 2 (a1 + 0.125) + 1 <= 4.25
    true range: a2 = 0 and y = 2 a1 + 1.25 - max(a1 - 1.25, 0) for a1 in [0, 1.5]: [1.25, 4]

Without the clamp at 0 (a1 in [-2.5, 1.5], a2 in [-5, 0]), g1 would straddle 0 (one more
binary) and the interval output bounds would widen to [-9, 8].
"""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
import torch
from torch import nn

from gurobi_sparse_surrogate import add_sparse_predictor_constr
from gurobi_sparse_surrogate.bounds.problem import compute_bounds
from gurobi_sparse_surrogate.network.extraction import extract_layers

PAD = 1e-8  # the linear stage pads each bound by 1e-9 (1 + |bound|) outwards

HAND = {
    # method: per layer (lower, upper)
    "interval": [
        ([-2.5, -5.0], [1.5, -1.0]),
        ([0.125, -1.25], [1.625, 0.25]),
        ([1.0], [4.25]),
    ],
    "linear": [
        ([-2.5, -5.0], [1.5, -1.0]),
        ([0.125, -1.25], [1.625, 0.25]),
        ([1.25], [4.25]),
    ],
}
TRUE_OUTPUT_RANGE = (1.25, 4.0)


def hand_network() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    values = [
        ([[1.0, 1.0], [1.0, -1.0]], [-0.5, -3.0]),
        ([[1.0, 0.0], [1.0, -1.0]], [0.125, -1.25]),
        ([[2.0, -1.0]], [1.0]),
    ]
    with torch.no_grad():
        for linear, (w, b) in zip(net[::2], values, strict=True):
            linear.weight.copy_(torch.tensor(w))
            linear.bias.copy_(torch.tensor(b))
    return net.eval()


def test_the_hand_computed_output_range_is_the_true_one():
    net = hand_network()
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, 201)] * 2), -1).reshape(-1, 2)
    with torch.no_grad():
        y = net(torch.as_tensor(grid, dtype=torch.float32)).numpy()[:, 0]
    assert y.min() == pytest.approx(TRUE_OUTPUT_RANGE[0], abs=1e-5)
    assert y.max() == pytest.approx(TRUE_OUTPUT_RANGE[1], abs=1e-5)


@pytest.mark.parametrize("method", sorted(HAND))
def test_bounds_equal_the_hand_computed_ones(method):
    bounds = compute_bounds(extract_layers(hand_network()), -np.ones(2), np.ones(2), method)
    for layer, (lo, hi) in enumerate(HAND[method]):
        np.testing.assert_allclose(bounds.lower[layer][0], lo, rtol=0, atol=PAD)
        np.testing.assert_allclose(bounds.upper[layer][0], hi, rtol=0, atol=PAD)
        # sound: never inside the hand-computed values by more than the pad
        assert np.all(bounds.lower[layer][0] <= np.array(lo) + 1e-12)
        assert np.all(bounds.upper[layer][0] >= np.array(hi) - 1e-12)


@pytest.mark.parametrize("method", ["lp", "milp"])
def test_solver_methods_are_between_the_true_range_and_linear(method):
    bounds = compute_bounds(extract_layers(hand_network()), -np.ones(2), np.ones(2), method)
    for layer, (lo, hi) in enumerate(HAND["linear"]):
        assert np.all(bounds.lower[layer][0] >= np.array(lo) - PAD)
        assert np.all(bounds.upper[layer][0] <= np.array(hi) + PAD)
    # hidden layers: the hand values are the true ranges, so no method may cut into them
    for layer, (lo, hi) in enumerate(HAND["linear"][:2]):
        assert np.all(bounds.lower[layer][0] <= np.array(lo) + 1e-6)
        assert np.all(bounds.upper[layer][0] >= np.array(hi) - 1e-6)
    assert bounds.lower[2][0, 0] <= TRUE_OUTPUT_RANGE[0] + 1e-6
    assert bounds.upper[2][0, 0] >= TRUE_OUTPUT_RANGE[1] - 1e-6


@pytest.mark.parametrize("method", ["interval", "linear", "lp"])
def test_stable_neurons_and_binaries_are_the_hand_counted_ones(method):
    m = gp.Model(env=gp.Env(params={"OutputFlag": 0}))
    x = m.addMVar(2, lb=-1.0, ub=1.0)
    pc = add_sparse_predictor_constr(m, hand_network(), x, bounds=method)
    layers = pc.stats["layers"]
    # layer 1: h1 unstable, h2 stable inactive (removed); layer 2: g1 stable active, g2 unstable
    assert (layers[0]["unstable"], layers[0]["inactive"], layers[0]["active"]) == (1, 1, 0)
    assert (layers[1]["unstable"], layers[1]["inactive"], layers[1]["active"]) == (1, 0, 1)
    assert pc.stats["binaries"] == 2
    # the output variable it creates gets the method's output bounds (lp: the output layer,
    # which has no ReLU, keeps the linear bounds)
    lo, hi = HAND["interval" if method == "interval" else "linear"][2]
    m.update()
    y = pc.output
    assert y.LB[0, 0] == pytest.approx(lo[0], abs=PAD)
    assert y.UB[0, 0] == pytest.approx(hi[0], abs=PAD)
    # and the embedding reaches the true range exactly (to the solver's tolerances)
    for sense, expected in zip((gp.GRB.MINIMIZE, gp.GRB.MAXIMIZE), TRUE_OUTPUT_RANGE, strict=True):
        m.setObjective(y[0, 0], sense)
        m.optimize()
        assert m.ObjVal == pytest.approx(expected, rel=1e-4, abs=1e-6)
