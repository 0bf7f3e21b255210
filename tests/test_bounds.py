"""Interval bounds: soundness (random and adversarial points) and exactness where expected."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_network
from hypothesis import given, settings
from hypothesis import strategies as st

from gurobi_sparse_surrogate.bounds.problem import NetworkBounds, compute_bounds
from gurobi_sparse_surrogate.exceptions import ShapeMismatchError
from gurobi_sparse_surrogate.network.extraction import extract_layers, layers_forward


def corners_and_random(rng, lower, upper, n):
    """Random points of the box, plus random vertices (where interval bounds are attained)."""
    inside = lower + rng.random((n, lower.size)) * (upper - lower)
    vertices = np.where(rng.random((n, lower.size)) < 0.5, lower, upper)
    return np.vstack([inside, vertices])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_in=st.integers(1, 6),
    hidden=st.lists(st.integers(1, 10), min_size=0, max_size=3),
    density=st.floats(0.2, 1.0),
    masks=st.booleans(),
)
def test_interval_bounds_contain_every_sampled_value(seed, n_in, hidden, density, masks):
    net = random_network(
        seed, n_in, tuple(hidden), 3, density, masks, zero_rows=True, zero_cols=True
    )
    layers = extract_layers(net)
    rng = np.random.default_rng(seed)
    lower = rng.uniform(-1, 0.5, n_in)
    upper = lower + rng.uniform(0, 1.5, n_in)
    bounds = compute_bounds(layers, lower, upper)
    points = corners_and_random(rng, lower, upper, 1000)
    for z, lo, hi in zip(layers_forward(layers, points), bounds.lower, bounds.upper, strict=True):
        assert np.all(z >= lo - 1e-9) and np.all(z <= hi + 1e-9)


def test_first_layer_interval_bounds_are_exact():
    net = random_network(1, 4, (6,), 2)
    layers = extract_layers(net)
    lower, upper = np.zeros(4), np.ones(4)
    bounds = compute_bounds(layers, lower, upper)
    grid = np.array(np.meshgrid(*[[0.0, 1.0]] * 4)).reshape(4, -1).T
    z = layers_forward(layers, grid)[0]
    np.testing.assert_allclose(bounds.lower[0][0], z.min(axis=0))
    np.testing.assert_allclose(bounds.upper[0][0], z.max(axis=0))


def test_infinite_input_bound_read_by_zero_weight_stays_finite():
    net = random_network(2, 3, (4,), 2)
    with __import__("torch").no_grad():
        net[0].weight[:, 2] = 0.0
    layers = extract_layers(net)
    bounds = compute_bounds(layers, [0, 0, -np.inf], [1, 1, np.inf])
    assert np.isfinite(bounds.lower[0]).all() and np.isfinite(bounds.upper[0]).all()
    bounds = compute_bounds(layers, [0, -np.inf, 0], [1, 1, 1])
    assert not np.isnan(bounds.lower[0]).any()


def test_batched_bounds_match_row_by_row():
    layers = extract_layers(random_network(3, 3, (5, 4), 2))
    rng = np.random.default_rng(0)
    lo = rng.uniform(-1, 0, (4, 3))
    hi = lo + rng.uniform(0, 1, (4, 3))
    batched = compute_bounds(layers, lo, hi)
    for s in range(4):
        single = compute_bounds(layers, lo[s], hi[s])
        for a, b in zip(batched.upper, single.upper, strict=True):
            np.testing.assert_allclose(a[s], b[0])


def test_report_counts_unstable_neurons():
    layers = extract_layers(random_network(4, 3, (6,), 2))
    bounds = compute_bounds(layers, -np.ones(3), np.ones(3))
    unstable = np.count_nonzero((bounds.lower[0] < 0) & (bounds.upper[0] > 0))
    assert bounds.report[0]["unstable"] == unstable and bounds.report[1]["unstable"] == 0
    assert bounds.seconds >= 0


def test_errors():
    layers = extract_layers(random_network(0, 3, (4,), 2))
    with pytest.raises(ValueError, match="unknown bounding method 'nope'"):
        compute_bounds(layers, np.zeros(3), np.ones(3), method="nope")
    with pytest.raises(ShapeMismatchError, match="3 inputs"):
        compute_bounds(layers, np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="exceed upper"):
        compute_bounds(layers, np.ones(3), np.zeros(3))
    bad = NetworkBounds.from_arrays([np.zeros(4)], [np.ones(4)])
    with pytest.raises(ShapeMismatchError, match="the network has 2"):
        bad.check_shapes(layers, 1)


def test_refused_domains_and_bounds_of_the_wrong_shape_are_named():
    from gurobi_sparse_surrogate import Box

    layers = extract_layers(random_network(0, 3, (4,), 2))
    with pytest.raises(TypeError, match="domain must be a gurobi_sparse_surrogate Domain.*list"):
        compute_bounds(layers, np.zeros(3), np.ones(3), domain=[0.0, 1.0])
    with pytest.raises(ShapeMismatchError, match="domain has dimension 4, the network 3 inputs"):
        compute_bounds(layers, np.zeros(3), np.ones(3), domain=Box(np.zeros(4), np.ones(4)))
    # the right number of layers, but layer 0 bounded for 3 neurons where it has 4
    bad = NetworkBounds.from_arrays([np.zeros(3), np.zeros(2)], [np.ones(3), np.ones(2)])
    with pytest.raises(
        ShapeMismatchError, match=r"bounds of layer 0 .* shape \(1, 3\), expected \(1, 4\)"
    ):
        bad.check_shapes(layers, 1)
    good = compute_bounds(layers, np.zeros(3), np.ones(3))
    good.check_shapes(layers, 1)  # its own layers: accepted
    with pytest.raises(ShapeMismatchError, match=r"shape \(1, 4\), expected \(2, 4\)"):
        good.check_shapes(layers, 2)


def test_a_problem_validates_dict_options_and_a_stage_called_alone_gets_a_record():
    from gurobi_sparse_surrogate import InvalidOptionError
    from gurobi_sparse_surrogate.bounds import METHODS, BoundingProblem, BoundOptions

    layers = extract_layers(random_network(0, 3, (4,), 2))
    problem = BoundingProblem(layers, np.zeros((1, 3)), np.ones((1, 3)), options={"time_budget": 2})
    assert isinstance(problem.options, BoundOptions) and problem.options.time_budget == 2.0
    with pytest.raises(InvalidOptionError, match="'time_limit'; did you mean 'time_budget'"):
        BoundingProblem(layers, np.zeros((1, 3)), np.ones((1, 3)), options={"time_limit": 2})
    # outside a pass there is no running stage: the stage annotates a detached record
    lp = next(stage for stage in METHODS["lp"] if stage.name == "lp")
    lower, upper = -np.ones((1, 4)), np.ones((1, 4))
    new_lo, new_hi = lp.layer_bounds(problem, 0, lower, upper)
    np.testing.assert_array_equal(new_lo, lower)
    np.testing.assert_array_equal(new_hi, upper)
    record = problem.record
    assert (record.stage, record.layer, record.ran) == ("", -1, False)
    assert record.skipped_reason.startswith("first layer")
    assert problem.current_record() is record


def test_domain_aware_first_layer_bounds_are_sound_and_tighter_than_the_box():
    from gurobi_sparse_surrogate import L1Ball

    net = random_network(5, 40, (30, 20), 3)
    layers = extract_layers(net)
    rng = np.random.default_rng(0)
    center = np.where(rng.random(40) < 0.6, 0.0, rng.random(40))  # many pixels at 0
    domain = L1Ball(center, 2.0)
    box = compute_bounds(layers, domain.lower, domain.upper, "interval")
    ball = compute_bounds(layers, domain.lower, domain.upper, "interval", domain=domain)
    for a_lo, a_hi, b_lo, b_hi in zip(box.lower, box.upper, ball.lower, ball.upper, strict=True):
        assert np.all(b_lo >= a_lo - 1e-12) and np.all(b_hi <= a_hi + 1e-12)
    assert np.mean(ball.upper[0] - ball.lower[0]) < 0.8 * np.mean(box.upper[0] - box.lower[0])
    points = domain.sample(3000, rng)
    assert domain.contains(points).all()
    for z, lo, hi in zip(layers_forward(layers, points), ball.lower, ball.upper, strict=True):
        assert np.all(z >= lo - 1e-9) and np.all(z <= hi + 1e-9)
