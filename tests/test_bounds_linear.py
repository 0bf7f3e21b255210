"""Linear-relaxation (CROWN) bounds: soundness against sampled and attack points, tightness."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import random_network
from hypothesis import given, settings
from hypothesis import strategies as st

from gurobi_sparse_surrogate.bounds.linear import concretize_box, relu_relaxation
from gurobi_sparse_surrogate.bounds.problem import METHODS, compute_bounds
from gurobi_sparse_surrogate.domains import L1Ball, LinfBall
from gurobi_sparse_surrogate.network.extraction import extract_layers, layers_forward

TOL = 1e-7


# ---------------------------------------------------------------- helpers (shared with lp tests)


def attack_points(layers, starts, project, steps=15, step=0.1):
    """Projected signed-gradient ascent and descent on every neuron of every layer.

    Independent of the bounding code: a dense torch re-implementation of the forward pass.
    Returns all iterates' final points, ``(n_layers * 2 * n_neurons * n_starts, n_in)``.
    """
    weights = [torch.from_numpy(layer.weight.toarray()) for layer in layers]
    biases = [torch.from_numpy(layer.bias) for layer in layers]

    def pre_activation(x, index):
        h = x
        for j in range(index + 1):
            z = h @ weights[j].T + biases[j]
            h = torch.relu(z) if layers[j].relu else z
        return z

    found = []
    for index, layer in enumerate(layers):
        n = layer.n_out
        targets = np.repeat(np.arange(n), 2 * len(starts))
        signs = np.tile(np.repeat([1.0, -1.0], len(starts)), n)
        x = np.tile(starts, (n * 2, 1))
        for _ in range(steps):
            xt = torch.tensor(x, requires_grad=True)
            z = pre_activation(xt, index)
            objective = (torch.from_numpy(signs) * z[np.arange(len(x)), targets]).sum()
            objective.backward()
            x = project(x + step * np.sign(xt.grad.numpy()))
        found.append(x)
    return np.vstack(found)


def assert_contains(layers, bounds, points, tol=TOL):
    """Every pre-activation of every point lies within the bounds (sample 0)."""
    for i, (z, lo, hi) in enumerate(
        zip(layers_forward(layers, points), bounds.lower, bounds.upper, strict=True)
    ):
        assert np.all(z >= lo[0] - tol), f"layer {i}: value below lower bound"
        assert np.all(z <= hi[0] + tol), f"layer {i}: value above upper bound"


def box_points(rng, lower, upper, n):
    inside = lower + rng.random((n, lower.size)) * (upper - lower)
    vertices = np.where(rng.random((n, lower.size)) < 0.5, lower, upper)
    return np.vstack([inside, vertices])


def make_domain(kind, rng, n_in):
    centre = rng.uniform(0.1, 0.9, n_in)
    if kind == "linf":
        return LinfBall(centre, rng.uniform(0.01, 0.3))
    return L1Ball(centre, rng.uniform(0.1, 1.0))


network_strategy = dict(
    seed=st.integers(0, 100_000),
    n_in=st.integers(1, 6),
    hidden=st.lists(st.integers(2, 12), min_size=1, max_size=4),
    density=st.floats(0.2, 1.0),
    masks=st.booleans(),
)


def build(seed, n_in, hidden, density, masks):
    net = random_network(
        seed, n_in, tuple(hidden), 3, density, masks, zero_rows=True, zero_cols=True
    )
    return extract_layers(net)


def check_method_on_box(method, seed, n_in, hidden, density, masks, n_points=1000, **options):
    layers = build(seed, n_in, hidden, density, masks)
    rng = np.random.default_rng(seed)
    lower = rng.uniform(-1, 0.5, n_in)
    upper = lower + rng.uniform(0, 1.5, n_in)
    bounds = compute_bounds(layers, lower, upper, method, **options)
    points = box_points(rng, lower, upper, n_points)
    assert_contains(layers, bounds, points)
    starts = box_points(rng, lower, upper, 2)
    assert_contains(
        layers, bounds, attack_points(layers, starts, lambda x: np.clip(x, lower, upper))
    )
    return layers, lower, upper, bounds


def check_method_on_domain(method, kind, seed, n_in, hidden, density, masks, **options):
    layers = build(seed, n_in, hidden, density, masks)
    rng = np.random.default_rng(seed)
    domain = make_domain(kind, rng, n_in)
    bounds = compute_bounds(layers, np.zeros(n_in), np.ones(n_in), method, domain, **options)
    assert_contains(layers, bounds, domain.sample(2000, rng))
    starts = domain.sample(2, rng)
    assert_contains(layers, bounds, attack_points(layers, starts, domain.project, step=0.05))
    return layers, domain, bounds


def widths(bounds):
    return [hi - lo for lo, hi in zip(bounds.lower, bounds.upper, strict=True)]


# ---------------------------------------------------------------- relaxation


def test_relu_relaxation_hand_computed():
    up_slope, up_icpt, low_slope = relu_relaxation(
        np.array([-1.0, 1.0, -2.0, -3.0]), np.array([3.0, 2.0, -1.0, 1.0])
    )
    np.testing.assert_allclose(up_slope, [0.75, 1.0, 0.0, 0.25])
    np.testing.assert_allclose(up_icpt, [0.75, 0.0, 0.0, 0.75])
    np.testing.assert_allclose(low_slope, [1.0, 1.0, 0.0, 0.0])  # u >= -l -> 1, else 0


@settings(max_examples=60, deadline=None)
@given(
    lower=st.one_of(st.floats(-5, 5), st.just(-np.inf)),
    width=st.one_of(st.floats(0, 10), st.just(np.inf)),
)
def test_relu_relaxation_encloses_relu(lower, width):
    if np.isinf(width):
        upper = np.inf
    else:
        upper = lower + width if np.isfinite(lower) else width - 5.0
    s_up, t_up, s_lo = relu_relaxation(np.array([lower]), np.array([upper]))
    z = np.linspace(max(lower, -50.0), min(upper, 50.0), 101)
    h = np.maximum(z, 0)
    assert np.all(h <= s_up * z + t_up + 1e-12)
    assert np.all(h >= s_lo * z - 1e-12)
    assert not np.isnan(s_up).any() and not np.isnan(s_lo).any()


def test_concretize_box_infinite_bounds_never_nan():
    coef = sp.csr_array(np.array([[1.0, 0.0], [0.0, -1.0], [0.0, 0.0]]))
    hi = concretize_box(coef, np.zeros(3), np.array([0.0, -np.inf]), np.array([np.inf, 1.0]))
    np.testing.assert_array_equal(hi, [np.inf, np.inf, 0.0])


# ---------------------------------------------------------------- soundness and tightness


@settings(max_examples=40, deadline=None)
@given(**network_strategy)
def test_linear_bounds_sound_and_tighter_than_interval_on_a_box(seed, n_in, hidden, density, masks):
    layers, lower, upper, bounds = check_method_on_box("linear", seed, n_in, hidden, density, masks)
    interval = compute_bounds(layers, lower, upper, "interval")
    for w_lin, w_int in zip(widths(bounds), widths(interval), strict=True):
        assert np.all(w_lin <= w_int + 1e-12)


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["linf", "l1"]), **network_strategy)
def test_linear_bounds_sound_on_balls(kind, seed, n_in, hidden, density, masks):
    check_method_on_domain("linear", kind, seed, n_in, hidden, density, masks)


def test_linear_is_strictly_tighter_than_interval_on_a_deep_network():
    layers = extract_layers(random_network(3, 5, (12, 12, 12, 12), 3))
    lower, upper = np.full(5, 0.3), np.full(5, 0.6)
    lin = compute_bounds(layers, lower, upper, "linear")
    itv = compute_bounds(layers, lower, upper, "interval")
    assert widths(lin)[-1].sum() < 0.9 * widths(itv)[-1].sum()
    unstable = [row["unstable"] for row in lin.report if row["stage"] == "linear"]
    assert sum(unstable) < sum(r["unstable"] for r in itv.report)


def test_first_layer_uses_the_domain_support_function():
    layers = extract_layers(random_network(5, 6, (8,), 2))
    domain = L1Ball(np.full(6, 0.5), 0.7)
    bounds = compute_bounds(layers, np.zeros(6), np.ones(6), "linear", domain)
    lo, hi = domain.first_layer_bounds(layers[0].weight, layers[0].bias)
    np.testing.assert_allclose(bounds.lower[0][0], lo, atol=1e-8)
    np.testing.assert_allclose(bounds.upper[0][0], hi, atol=1e-8)


def test_infinite_input_bounds_give_infinite_not_nan_bounds():
    net = random_network(2, 3, (4, 4), 2)
    with torch.no_grad():
        net[0].weight[:, 2] = 0.0  # input 2 unread
        net[0].weight[0, 1] = 0.0
        net[0].weight[1:, 1] = 1.0  # input 1 read by neurons 1..3 only
    layers = extract_layers(net)
    bounds = compute_bounds(layers, [0, -np.inf, -np.inf], [1, 1, np.inf], "linear")
    for lo, hi in zip(bounds.lower, bounds.upper, strict=True):
        assert not np.isnan(lo).any() and not np.isnan(hi).any()
    assert np.isfinite(bounds.lower[0][0, 0]) and np.isfinite(bounds.upper[0][0, 0])
    assert np.isinf(bounds.lower[0][0, 1:]).all() and np.isfinite(bounds.upper[0][0, 1:]).all()
    rng = np.random.default_rng(0)
    points = np.column_stack(
        [rng.random(500), 1 - rng.exponential(100, 500), rng.normal(0, 1e3, 500)]
    )
    assert_contains(layers, bounds, points)


def test_samples_are_bounded_independently():
    layers = extract_layers(random_network(7, 4, (6, 6), 2))
    lower = np.array([[0.0, 0.0, 0.0, 0.0], [-1.0, -0.5, 0.2, 0.0]])
    upper = np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.5, 0.4, 2.0]])
    both = compute_bounds(layers, lower, upper, "linear")
    for s in range(2):
        alone = compute_bounds(layers, lower[s], upper[s], "linear")
        for a, b in zip(both.lower + both.upper, alone.lower + alone.upper, strict=True):
            np.testing.assert_allclose(a[s], b[0])


def test_linear_method_is_registered_and_reported():
    assert [stage.name for stage in METHODS["linear"]] == ["interval", "linear"]
    layers = extract_layers(random_network(1, 2, (3,), 1))
    report = compute_bounds(layers, np.zeros(2), np.ones(2), "linear").report
    assert [(r["layer"], r["stage"]) for r in report] == [
        (0, "interval"),
        (0, "linear"),
        (1, "interval"),
        (1, "linear"),
    ]


@pytest.mark.parametrize("masks", [False, True])
def test_pruned_network_with_masks_is_bounded_soundly(masks):
    net = random_network(11, 5, (10, 10), 2, density=0.3, masks=masks)
    layers = extract_layers(net)
    rng = np.random.default_rng(0)
    bounds = compute_bounds(layers, np.zeros(5), np.ones(5), "linear")
    assert_contains(layers, bounds, box_points(rng, np.zeros(5), np.ones(5), 2000))
