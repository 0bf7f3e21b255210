"""Intermediate bounds with optimised slopes: never cut off a reachable pre-activation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_network
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from gurobi_sparse_surrogate import Box, L1Ball, LinfBall
from gurobi_sparse_surrogate.bounds import compute_bounds
from gurobi_sparse_surrogate.bounds.alpha import optimise_intermediate_bounds
from gurobi_sparse_surrogate.datasets import load_digits, train_classifier
from gurobi_sparse_surrogate.exceptions import UnsupportedNetworkError
from gurobi_sparse_surrogate.network import extract_layers


def _pre_activations(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every Linear module of a float64 copy (torch, independent of the package)."""
    out, h = [], x
    for module in net:
        h = module(h)
        if isinstance(module, nn.Linear):
            out.append(h)
    return out


def _extremes_by_attack(net: nn.Module, domain, steps: int = 40, seed: int = 0):
    """Per layer, the smallest and largest pre-activation of every neuron found by projected
    gradient (one batch of starts per neuron and direction)."""
    net = net.double()
    rng = np.random.default_rng(seed)
    sizes = [m.out_features for m in net if isinstance(m, nn.Linear)]
    lows = [np.full(n, np.inf) for n in sizes]
    highs = [np.full(n, -np.inf) for n in sizes]
    step0 = float(np.max(domain.upper - domain.lower)) / 8
    for k, n in enumerate(sizes):
        for sign in (1.0, -1.0):
            x = torch.tensor(domain.sample(4 * n, rng), requires_grad=True)
            neuron = torch.arange(4 * n) % n
            step = step0
            for _ in range(steps):
                z = _pre_activations(net, x)[k]
                value = z[torch.arange(4 * n), neuron]
                (grad,) = torch.autograd.grad((sign * value).sum(), x)
                with torch.no_grad():
                    x = torch.tensor(
                        domain.project((x - step * grad.sign()).numpy()), requires_grad=True
                    )
                step *= 0.93
            with torch.no_grad():
                z = _pre_activations(net, x)[k][torch.arange(4 * n), neuron].numpy()
            np.minimum.at(lows[k], neuron.numpy(), z)
            np.maximum.at(highs[k], neuron.numpy(), z)
    return lows, highs


def _check_contains(net, domain, bounds, n_samples=2000):
    points = domain.sample(n_samples, np.random.default_rng(3))
    with torch.no_grad():
        values = [z.numpy() for z in _pre_activations(net.double(), torch.tensor(points))]
    lows, highs = _extremes_by_attack(net, domain)
    for k, z in enumerate(values):
        lo, hi = bounds.lower[k][0], bounds.upper[k][0]
        tol = 1e-9 * (1 + np.abs(z))
        assert (z >= lo - tol).all() and (z <= hi + tol).all()
        assert (lows[k] >= lo - 1e-9).all() and (highs[k] <= hi + 1e-9).all()


def _tightened(net, domain, steps=20):
    layers = extract_layers(net)
    crown = compute_bounds(layers, domain.lower, domain.upper, "linear", domain)
    tight = optimise_intermediate_bounds(net, domain, crown, steps=steps)
    for a, b, c, d in zip(tight.lower, crown.lower, tight.upper, crown.upper, strict=True):
        assert (a >= b).all() and (c <= d).all()  # never looser than the start
    return crown, tight


def _domains(x0: np.ndarray, scale: float):
    return [
        LinfBall(x0, 0.15 * scale),
        L1Ball(x0, 0.8 * scale),
        Box(np.clip(x0 - 0.1 * scale, 0, 1), np.clip(x0 + 0.05 * scale, 0, 1)),
    ]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), depth=st.integers(2, 3), scale=st.sampled_from([0.5, 2.0]))
def test_random_networks_every_domain(seed, depth, scale):
    net = random_network(seed, 6, (10,) * depth, 3, density=0.8)
    x0 = np.random.default_rng(seed).uniform(0.2, 0.8, 6)
    for domain in _domains(x0, scale):
        _, tight = _tightened(net, domain)
        _check_contains(net, domain, tight)


def test_badly_scaled_network():
    net = random_network(5, 6, (10, 10, 10), 3)
    with torch.no_grad():
        net[0].weight.mul_(1e3)
        net[2].weight.mul_(1e-3)
        net[4].bias.add_(10.0)
    domain = LinfBall(np.full(6, 0.5), 0.2)
    _, tight = _tightened(net, domain)
    _check_contains(net, domain, tight)


def test_trained_classifier_tightens_and_stays_sound():
    X, y = load_digits()
    net = train_classifier(X[:600], y[:600], hidden=(24, 24, 24), seed=0, epochs=8)
    domain = LinfBall(X[700], 0.08)
    crown, tight = _tightened(net, domain, steps=40)
    _check_contains(net, domain, tight)
    width = sum(
        float((h - lo).sum()) for lo, h in zip(crown.lower[1:3], crown.upper[1:3], strict=True)
    )
    tighter = sum(
        float((h - lo).sum()) for lo, h in zip(tight.lower[1:3], tight.upper[1:3], strict=True)
    )
    assert tighter < width  # the optimised slopes tighten the deeper hidden layers


def test_fixed_signs_hold_on_the_branch():
    """With a neuron fixed active (or inactive), the bounds hold for the inputs of that branch."""
    net = random_network(11, 5, (12, 12, 12), 3)
    domain = LinfBall(np.full(5, 0.5), 0.3)
    layers = extract_layers(net)
    crown = compute_bounds(layers, domain.lower, domain.upper, "linear", domain)
    unstable = np.flatnonzero((crown.lower[0][0] < 0) & (crown.upper[0][0] > 0))
    assert unstable.size
    neuron = int(unstable[0])
    points = domain.sample(20000, np.random.default_rng(0))
    with torch.no_grad():
        values = [z.numpy() for z in _pre_activations(net.double(), torch.tensor(points))]
    for sign in (1, -1):
        signs = np.zeros(12)
        signs[neuron] = sign
        tight = optimise_intermediate_bounds(net, domain, crown, fixed={0: signs})
        on_branch = sign * values[0][:, neuron] >= 0
        assert on_branch.any()
        for k, z in enumerate(values):
            lo, hi = tight.lower[k][0], tight.upper[k][0]
            assert (z[on_branch] >= lo - 1e-9).all() and (z[on_branch] <= hi + 1e-9).all()
        assert sign * (tight.lower[0][0][neuron] if sign > 0 else tight.upper[0][0][neuron]) >= 0


def test_unsupported_layers_are_named():
    net = nn.Sequential(
        nn.Unflatten(1, (1, 4, 4)),
        nn.Conv2d(1, 1, 1),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    domain = Box(np.zeros(16), np.ones(16))
    layers = extract_layers(net)
    crown = compute_bounds(layers, domain.lower, domain.upper, "interval", domain)
    with pytest.raises(UnsupportedNetworkError, match="affine layers"):
        optimise_intermediate_bounds(layers, domain, crown)


def _three_layers():
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2)
    ).double()
    domain = LinfBall(np.full(3, 0.5), 0.4)
    crown = compute_bounds(extract_layers(net), domain.lower, domain.upper, "linear", domain)
    return net, domain, crown


def test_a_time_budget_spent_before_the_first_hidden_layer_keeps_every_bound():
    net, domain, crown = _three_layers()
    assert ((crown.lower[1] < 0) & (crown.upper[1] > 0)).any()  # something to tighten
    tight = optimise_intermediate_bounds(net, domain, crown, steps=5)
    assert any((t > c).any() for t, c in zip(tight.lower, crown.lower, strict=True))
    kept = optimise_intermediate_bounds(net, domain, crown, steps=5, time_budget=0.0)
    assert kept.method == "linear+alpha"
    for a, b in zip(kept.lower + kept.upper, crown.lower + crown.upper, strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_empty_branch_stops_before_tightening():
    """Fixing active a neuron whose upper bound is negative leaves no input in the branch:
    its layer's bounds cross, and the later layers keep their bounds."""
    net, domain, crown = _three_layers()
    dead = np.flatnonzero(crown.upper[0][0] < 0)
    assert dead.size  # the seed gives a neuron of layer 0 that is always inactive
    signs = np.zeros(6)
    signs[dead[0]] = 1.0
    result = optimise_intermediate_bounds(net, domain, crown, steps=5, fixed={0: signs})
    assert result.lower[0][0, dead[0]] == 0.0 > result.upper[0][0, dead[0]]
    for k in (1, 2):
        np.testing.assert_array_equal(result.lower[k], crown.lower[k])
        np.testing.assert_array_equal(result.upper[k], crown.upper[k])
