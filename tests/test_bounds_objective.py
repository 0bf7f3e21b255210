"""Objective-aware bounds: never above any reachable value, at least as tight as fixed slopes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import forward64, random_network
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from gurobi_sparse_surrogate import Box, Domain, L1Ball, LinfBall, bound_output_objective
from gurobi_sparse_surrogate.bounds import compute_bounds
from gurobi_sparse_surrogate.datasets import load_digits, train_classifier
from gurobi_sparse_surrogate.exceptions import ShapeMismatchError, UnsupportedNetworkError
from gurobi_sparse_surrogate.network import extract_layers


def _domains(x0: np.ndarray, scale: float):
    n = x0.size
    return [
        LinfBall(x0, 0.1 * scale),
        L1Ball(x0, 0.8 * scale),
        Box(np.clip(x0 - 0.1 * scale, 0, 1), np.clip(x0 + 0.05 * scale, 0, 1)),
        L1Ball(x0, 0.3 * scale, lower=np.full(n, -np.inf), upper=np.full(n, np.inf)),
    ]


def _pgd_minimum(net: nn.Module, domain, c: np.ndarray, steps: int = 60, seed: int = 0):
    """Smallest value of each row of ``c @ net(x)`` found by projected gradient from samples."""
    model = net.double()
    rng = np.random.default_rng(seed)
    best = np.full(c.shape[0], np.inf)
    weights = torch.tensor(c)
    for i in range(c.shape[0]):
        x = torch.tensor(domain.sample(16, rng), requires_grad=True)
        step = float(np.max(domain.upper - domain.lower)) / 10
        for _ in range(steps):
            value = model(x) @ weights[i]
            (grad,) = torch.autograd.grad(value.sum(), x)
            with torch.no_grad():
                moved = x - step * grad.sign()
                x = torch.tensor(domain.project(moved.numpy()), requires_grad=True)
            step *= 0.95
        assert domain.contains(x.detach().numpy()).all()
        final = forward64(net, x.detach().numpy()) @ c[i]
        best[i] = min(best[i], final.min())
    return best


def _check_sound(net, domain, c, offset=None, n_samples=3000):
    result = bound_output_objective(net, domain, c, offset, steps=25)
    d = np.zeros(c.shape[0]) if offset is None else offset
    points = domain.sample(n_samples, np.random.default_rng(1))
    values = forward64(net, points) @ c.T + d
    assert (values >= result.lower[None, :]).all()
    attacked = _pgd_minimum(net, domain, c) + d
    assert (attacked >= result.lower).all()
    # at the centre too, and the optimised slopes never lose to CROWN's fixed ones
    assert (forward64(net, np.array(domain.center))[0] @ c.T + d >= result.lower).all()
    assert (result.lower >= result.fixed_slopes).all()
    # the relaxation's inputs lie in the domain, where the function is at least the bound
    assert result.inputs.shape == (c.shape[0], domain.n)
    assert domain.contains(result.inputs).all()
    at_inputs = np.einsum("ij,ij->i", forward64(net, result.inputs), c) + d
    assert (at_inputs >= result.lower - 1e-9).all()
    return result


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    depth=st.integers(1, 3),
    scale=st.sampled_from([0.3, 1.0, 3.0]),
    final_relu=st.booleans(),
)
def test_random_networks_every_domain(seed, depth, scale, final_relu):
    net = random_network(seed, 8, (12,) * depth, 4, density=0.8, final_relu=final_relu)
    x0 = np.random.default_rng(seed).uniform(0.2, 0.8, 8)
    rng = np.random.default_rng(seed + 1)
    c = rng.normal(size=(3, 4))
    offset = rng.normal(size=3)
    for domain in _domains(x0, scale):
        _check_sound(net, domain, c, offset)


def test_badly_scaled_network():
    net = random_network(3, 6, (10, 10), 3)
    with torch.no_grad():
        net[0].weight.mul_(1e3)
        net[2].weight.mul_(1e-3)
        net[4].bias.add_(1e4)
    c = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]])
    for domain in _domains(np.full(6, 0.5), 1.0):
        _check_sound(net, domain, c)


@pytest.fixture(scope="module")
def digits_net():
    X, y = load_digits()
    net = train_classifier(X[:800], y[:800], hidden=(24, 24), seed=0, epochs=10)
    return net, X[800:]


@pytest.mark.parametrize("index", [0, 5])
def test_trained_classifier_margins(digits_net, index):
    net, X = digits_net
    x0 = X[index]
    logits = forward64(net, x0)[0]
    label = int(logits.argmax())
    c = np.array([np.eye(10)[label] - np.eye(10)[j] for j in range(10) if j != label])
    for domain in [LinfBall(x0, 0.05), L1Ball(x0, 1.0), Box(np.clip(x0 - 0.03, 0, 1), x0)]:
        result = _check_sound(net, domain, c)
        assert result.lower.shape == (9,)


def test_optimised_slopes_strictly_help_somewhere():
    """On a network with many unstable neurons the gradient steps improve some row."""
    net = random_network(7, 10, (30, 30), 5)
    c = np.random.default_rng(0).normal(size=(4, 5))
    result = bound_output_objective(net, LinfBall(np.full(10, 0.5), 0.3), c, steps=40)
    assert (result.lower >= result.fixed_slopes).all()
    assert (result.lower > result.fixed_slopes + 1e-6).any()
    none = bound_output_objective(net, LinfBall(np.full(10, 0.5), 0.3), c, steps=0)
    np.testing.assert_array_equal(none.lower, none.fixed_slopes)


def test_one_row_and_given_bounds():
    net = random_network(1, 5, (8,), 3)
    domain = LinfBall(np.full(5, 0.5), 0.2)
    single = bound_output_objective(net, domain, [1.0, -1.0, 0.0])
    assert single.lower.shape == (1,)
    layers = extract_layers(net)
    nb = compute_bounds(layers, domain.lower, domain.upper, "lp", domain)
    given_bounds = bound_output_objective(layers, domain, [1.0, -1.0, 0.0], bounds=nb)
    assert given_bounds.bounds_method == "lp"
    values = forward64(net, domain.sample(2000, np.random.default_rng(0))) @ np.array(
        [1.0, -1.0, 0.0]
    )
    assert values.min() >= given_bounds.lower[0]


def test_errors():
    net = random_network(1, 5, (8,), 3)
    domain = LinfBall(np.full(5, 0.5), 0.2)
    with pytest.raises(ShapeMismatchError, match="c must have shape"):
        bound_output_objective(net, domain, np.ones(4))
    with pytest.raises(ShapeMismatchError, match="domain has dimension"):
        bound_output_objective(net, LinfBall(np.zeros(4), 0.1), np.ones(3))
    with pytest.raises(ShapeMismatchError, match="offset"):
        bound_output_objective(net, domain, np.ones((2, 3)), offset=np.ones(3))
    with pytest.raises(ValueError, match="steps"):
        bound_output_objective(net, domain, np.ones(3), steps=-1)
    with pytest.raises(UnsupportedNetworkError):
        bound_output_objective(nn.Sequential(nn.Linear(5, 3), nn.Sigmoid()), domain, np.ones(3))


class HalfOpen(Domain):
    """A user's domain with an infinite side (the package's own domains refuse one)."""

    def __init__(self, lower, upper):
        self._lower, self._upper = np.asarray(lower, float), np.asarray(upper, float)

    def _sample(self, n_points, rng):
        return np.tile(self._lower, (n_points, 1))


def test_refusals_name_what_is_wrong():
    from gurobi_sparse_surrogate import InvalidOptionError, UnboundedInputError

    net = random_network(1, 5, (8,), 3)
    domain = LinfBall(np.full(5, 0.5), 0.2)
    with pytest.raises(InvalidOptionError, match="domain must be a Box, LinfBall or L1Ball, got"):
        bound_output_objective(net, (np.zeros(5), np.ones(5)), np.ones(3))
    with pytest.raises(ValueError, match="c and offset must be finite"):
        bound_output_objective(net, domain, [1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="c and offset must be finite"):
        bound_output_objective(net, domain, np.ones(3), offset=[np.inf])
    unbounded = HalfOpen(np.zeros(5), np.array([1.0, 1.0, np.inf, 1.0, 1.0]))
    with pytest.raises(UnboundedInputError, match=r"infinite bounds at inputs \[2\]"):
        bound_output_objective(net, unbounded, np.ones(3))
    # intermediate bounds given, but computed over an unbounded box: not finite
    layers = extract_layers(net)
    loose = compute_bounds(layers, np.full(5, -np.inf), np.full(5, np.inf), "interval")
    with pytest.raises(UnboundedInputError, match=r"intermediate bounds of layer 0 .* not finite"):
        bound_output_objective(layers, domain, np.ones(3), bounds=loose)
    # max pooling: the layers of a CNN, given as a list, name the layer refused
    cnn = nn.Sequential(
        nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 1, 1), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(4, 2),
    )  # fmt: skip
    with pytest.raises(UnsupportedNetworkError, match=r"'layer 1 \(module 2: MaxPool2d.*maxpool"):
        bound_output_objective(extract_layers(cnn), Box(np.zeros(16), np.ones(16)), np.ones(2))


def test_proven_rows_are_those_bounded_above_the_threshold():
    # y = x (one identity output) on [0.2, 0.7]: rows y - 0.1 > 0 and 0.5 - y, bounds 0.1, -0.2
    net = nn.Sequential(nn.Linear(1, 1)).double()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.zero_()
    result = bound_output_objective(
        net, Box([0.2], [0.7]), [[1.0], [-1.0]], offset=[-0.1, 0.5], steps=0
    )
    np.testing.assert_allclose(result.lower, [0.1, -0.2], atol=1e-9)
    np.testing.assert_array_equal(result.proven(), [True, False])
    np.testing.assert_array_equal(result.proven(threshold=0.2), [False, False])
    np.testing.assert_array_equal(result.proven(threshold=-0.5), [True, True])
