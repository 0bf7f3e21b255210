"""The LP/MILP stages off the main road: inputs unbounded above, models beyond the solver's
scale, solver bounds that contradict a witnessed value, groups of cones that do not fit one
model, layers every neuron of which known points decide, and several samples at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_network

from gurobi_sparse_surrogate.bounds import compute_bounds, lp
from gurobi_sparse_surrogate.network.extraction import extract_layers, layers_forward


def assert_sound(bounds, layers, points, atol=1e-7):
    """Every pre-activation at ``points`` lies within the bounds of its layer."""
    values = layers_forward(layers, points)
    for i, z in enumerate(values):
        assert np.all(z >= bounds.lower[i][0] - atol), i
        assert np.all(z <= bounds.upper[i][0] + atol), i


def test_lp_and_milp_over_an_input_unbounded_above_stay_sound_and_still_tighten():
    # x2 in [0, inf): layer-1 neurons are unbounded below, and the Lagrangian bound of the
    # LP (which reads infinite variable bounds) is infinite: the padded objective is used
    torch.manual_seed(2)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), torch.nn.ReLU(),
        torch.nn.Linear(4, 1),
    )  # fmt: skip
    layers = extract_layers(net)
    lower, upper = np.zeros(3), np.array([1.0, 1.0, np.inf])
    linear = compute_bounds(layers, lower, upper, "linear")
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.random((4000, 2)), rng.exponential(50.0, 4000)])
    points[:50, 2] = 0.0  # the corner the upper bounds come from
    for method in ("lp", "milp"):
        bounds = compute_bounds(layers, lower, upper, method, skip_decided=False)
        assert_sound(bounds, layers, points)
        # the sides left infinite are those the earlier stages left infinite
        np.testing.assert_array_equal(np.isinf(bounds.lower[1]), np.isinf(linear.lower[1]))
        np.testing.assert_array_equal(np.isinf(bounds.upper[1]), np.isinf(linear.upper[1]))
        # and the finite sides are tightened by the solves, never loosened
        assert np.all(bounds.upper[1] <= linear.upper[1])
        assert np.any(bounds.upper[1] < linear.upper[1] - 1e-3), method


def test_milp_beyond_the_solver_scale_is_refused_and_keeps_the_lp_bounds():
    layers = extract_layers(random_network(3, 3, (6, 6), 1))
    lower, upper = np.zeros(3), np.full(3, 10.0)
    refused = compute_bounds(layers, lower, upper, "milp", milp_max_magnitude=1.0)
    notes = [n for n in refused.notes if n["kind"] == "refused" and n["stage"] == "milp"]
    assert notes and "milp_max_magnitude" in notes[0]["reason"]
    assert "exceed 1" in notes[0]["reason"]
    solved = compute_bounds(layers, lower, upper, "milp")
    assert not any(r["stage"] == "milp" and r["solves"] for r in refused.report)
    assert any(r["stage"] == "milp" and r["solves"] for r in solved.report)
    points = np.random.default_rng(1).random((2000, 3)) * 10.0
    assert_sound(refused, layers, points)


def test_a_solver_bound_that_contradicts_a_witnessed_value_is_refused(monkeypatch):
    layers = extract_layers(random_network(5, 4, (8, 8), 2))
    lower, upper = np.zeros(4), np.ones(4)
    linear = compute_bounds(layers, lower, upper, "linear")
    real = lp._ConeModel.bound

    def wrong(self, weights, constant, maximise, time_limit):
        value, point = real(self, weights, constant, maximise, time_limit)
        if value is None:
            return value, point
        # a solver whose tolerances failed: a bound far on the wrong side of zero
        return (value - 1e3 if maximise else value + 1e3), point

    monkeypatch.setattr(lp._ConeModel, "bound", wrong)
    bounds = compute_bounds(layers, lower, upper, "lp", skip_decided=False)
    refused = [n for n in bounds.notes if n["kind"] == "refused"]
    assert refused and all("cuts off a value it takes" in n["reason"] for n in refused)
    # the stage stops at the first refusal: every later bound is the linear stage's
    for a, b in zip(bounds.lower + bounds.upper, linear.lower + linear.upper, strict=True):
        np.testing.assert_array_equal(a, b)


def test_cones_too_large_together_are_solved_in_groups_with_the_same_bounds(monkeypatch):
    layers = extract_layers(random_network(0, 8, (10, 10), 1, density=0.25))
    lower, upper = -np.ones(8), np.ones(8)
    groups = []
    real = lp.LPStage._groups

    def counted(self, *args):
        found = real(self, *args)
        groups.append(len(found))
        return found

    monkeypatch.setattr(lp.LPStage, "_groups", counted)
    together = compute_bounds(layers, lower, upper, "lp", skip_decided=False)
    assert max(groups) == 1
    groups.clear()
    # 14 variables: each cone fits, not two of them together
    apart = compute_bounds(layers, lower, upper, "lp", skip_decided=False, max_variables=14)
    assert max(groups) > 1
    assert not [n for n in apart.notes if n["kind"] == "fallback"]  # every cone was solved
    for a, b in zip(apart.lower + apart.upper, together.lower + together.upper, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_points_that_decide_every_unstable_neuron_of_a_layer_leave_it_without_a_solve():
    layers = extract_layers(random_network(2, 3, (6, 3), 1))
    lower, upper = np.zeros(3), np.ones(3)
    points = np.random.default_rng(0).random((400, 3))
    linear = compute_bounds(layers, lower, upper, "linear")
    unstable = (linear.lower[1][0] < 0) & (linear.upper[1][0] > 0)
    z = layers_forward(layers, points)[1]
    shown = (z < 0).any(axis=0) & (z > 0).any(axis=0)
    assert unstable.any() and np.array_equal(unstable, shown)  # the premise
    bounds = compute_bounds(layers, lower, upper, "lp", points=points)
    (row,) = [r for r in bounds.report if r["stage"] == "lp" and r["layer"] == 1]
    assert row["solves"] == 0 and row["skipped_by_points"] == 2 * unstable.sum()
    np.testing.assert_array_equal(bounds.lower[1], linear.lower[1])
    np.testing.assert_array_equal(bounds.upper[1], linear.upper[1])


@pytest.mark.parametrize("method", ["lp", "milp"])
def test_samples_bounded_together_equal_samples_bounded_apart(method):
    # sample 0 is a single point (every neuron stable), sample 1 a box
    layers = extract_layers(random_network(3, 3, (6, 6), 1))
    lower = np.array([[0.5, 0.5, 0.5], [0.0, 0.0, 0.0]])
    upper = np.array([[0.5, 0.5, 0.5], [1.0, 1.0, 1.0]])
    together = compute_bounds(layers, lower, upper, method, skip_decided=False)
    for s in range(2):
        alone = compute_bounds(layers, lower[s], upper[s], method, skip_decided=False)
        for a, b in zip(together.lower + together.upper, alone.lower + alone.upper, strict=True):
            np.testing.assert_allclose(a[s], b[0], atol=1e-6)
    # the point's bounds are its own pre-activations
    for i, z in enumerate(layers_forward(layers, lower[:1])):
        np.testing.assert_allclose(together.lower[i][0], z[0], atol=1e-9)
        np.testing.assert_allclose(together.upper[i][0], z[0], atol=1e-9)


@pytest.mark.parametrize("method", ["lp", "milp"])
def test_a_linear_layer_without_relu_inside_the_cone_is_exact(method):
    # Linear -> Linear -> ReLU is the single Linear of their product: same bounds
    torch.manual_seed(4)
    first, second = torch.nn.Linear(3, 4), torch.nn.Linear(4, 5)
    tail = [torch.nn.ReLU(), torch.nn.Linear(5, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1)]
    merged = torch.nn.Linear(3, 5)
    with torch.no_grad():
        merged.weight.copy_(second.weight @ first.weight)
        merged.bias.copy_(second.weight @ first.bias + second.bias)
    two = extract_layers(torch.nn.Sequential(first, second, *tail).double())
    one = extract_layers(torch.nn.Sequential(merged, *tail).double())
    lower, upper = -np.ones(3), np.ones(3)
    a = compute_bounds(two, lower, upper, method, skip_decided=False)
    b = compute_bounds(one, lower, upper, method, skip_decided=False)
    assert len(a.lower) == len(b.lower) + 1
    for i in (2, 3):  # the layers after the pair: the second ReLU layer and the output
        np.testing.assert_allclose(a.lower[i], b.lower[i - 1], atol=1e-6)
        np.testing.assert_allclose(a.upper[i], b.upper[i - 1], atol=1e-6)
    assert any(r["stage"] == method and r["layer"] == 2 and r["solves"] for r in a.report)
