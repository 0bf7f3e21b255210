"""find_adversarial and maximize_output: every way out before an answer says why.

Bad classes, a Ctrl-C while torch runs, a time limit passed before the MILP, a network the
objective-aware proofs cannot read, a network too large for the licence. Time limits are
passed by sleeping in a forward pass (the ``forward_passes`` fixture), never by racing the
clock, so the outcome does not depend on the machine's load.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import forward64, needs_size_limited_licence, random_network
from torch import nn

from gurobi_sparse_surrogate import (
    Box,
    InvalidOptionError,
    LinfBall,
    find_adversarial,
    maximize_output,
)


@pytest.fixture(scope="module")
def net():
    return random_network(3, 4, (8, 8), 3)


def test_classes_that_do_not_exist_are_refused(net):
    x0 = np.full(4, 0.5)
    domain = LinfBall(x0, 0.1)
    with pytest.raises(ValueError, match="at least 2 outputs"):
        find_adversarial(random_network(0, 4, (5,), 1), x0, domain)
    for label in (3, -1):
        with pytest.raises(ValueError, match=rf"true_label must be in \[0, 3\), got {label}"):
            find_adversarial(net, x0, domain, true_label=label)


def test_attack_option_values_are_checked(net):
    domain = Box(np.zeros(4), np.ones(4))
    with pytest.raises(InvalidOptionError, match="step_size must be a positive number"):
        maximize_output(net, domain, attack_options={"step_size": 0})
    with pytest.raises(InvalidOptionError, match="time_budget must be a positive number"):
        maximize_output(net, domain, attack_options={"time_budget": -1.0})


def test_ctrl_c_during_the_attack_returns_what_was_found(net, forward_passes):
    x0 = np.full(4, 0.5)
    calls = forward_passes(rows=5, raise_at=1)  # the attack's first batch (5 restarts)
    result = find_adversarial(net, x0, LinfBall(x0, 0.5), time_limit=20)
    assert calls[0] == 1
    assert result.interrupted and result.reason == "interrupted"
    assert result.status == "unknown" and result.x is None
    assert "reason: interrupted" in result.summary()

    calls = forward_passes(rows=5, raise_at=1)
    maximum = maximize_output(net, Box(np.zeros(4), np.ones(4)), time_limit=20)
    assert calls[0] == 1
    assert maximum.interrupted and maximum.reason == "interrupted"
    assert maximum.value is None and maximum.x is None and not maximum.optimal


def test_a_time_limit_passed_before_the_milp_leaves_no_milp(net, forward_passes):
    # an adversarial input exists (sampled), so the proofs cannot decide: only a MILP could
    x0 = np.full(4, 0.5)
    domain = Box(np.full(4, -5.0), np.full(4, 5.0))
    label = int(forward64(net, x0)[0].argmax())
    samples = domain.sample(5000, np.random.default_rng(0))
    assert (forward64(net, samples).argmax(axis=1) != label).any()
    forward_passes(sleep_at=1, seconds=0.6)  # 1: the logits at x0, at the start
    result = find_adversarial(net, x0, domain, time_limit=0.5, attack=False)
    assert result.status == "unknown", result.summary()
    assert result.reason == "time limit reached before the MILP"
    assert "dense" not in result.model_stats and result.history == []


def test_maximize_output_past_its_time_limit_keeps_the_attack_value(net, forward_passes):
    domain = Box(np.zeros(4), np.ones(4))
    forward_passes(rows=5, sleep_at=1, seconds=0.6)  # the attack's first batch
    result = maximize_output(net, domain, time_limit=0.5)
    assert not result.optimal and result.bound is None
    assert [h.phase for h in result.history] == ["attack"]
    assert domain.contains(result.x)
    assert result.value == pytest.approx(forward64(net, result.x)[0, 0], abs=1e-12)
    assert "dense" in result.model_stats  # built, not solved


def max_pool_cnn(channels, size=6, seed=0):
    """A convolutional network with max pooling: the objective-aware proofs refuse it."""
    torch.manual_seed(seed)
    conv = nn.Conv2d(1, channels, 3)
    if channels > 8:
        with torch.no_grad():
            conv.bias.zero_()  # every neuron unstable on a box around 0
    n = channels * ((size - 2) // 2) ** 2
    return nn.Sequential(
        nn.Unflatten(1, (1, size, size)),
        conv,
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(n, 3 if channels <= 8 else 1),
    ).eval()


def test_a_network_the_proofs_cannot_read_goes_to_the_milp():
    net = max_pool_cnn(2)
    x0 = np.full(36, 0.5)
    logits = forward64(net, x0)[0]
    label = int(logits.argmax())
    # L-infinity Lipschitz bound: conv rows, pooling and ReLU are 1-Lipschitz
    lipschitz = 1.0
    for m in net:
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            lipschitz *= float(m.weight.detach().abs().reshape(m.weight.shape[0], -1).sum(1).max())
    radius = 0.25 * (logits[label] - np.sort(logits)[-2]) / lipschitz  # robust by this bound
    result = find_adversarial(net, x0, LinfBall(x0, radius), time_limit=30, attack=False)
    assert result.status == "robust", result.summary()
    assert result.proven_classes == [] and "dense" in result.model_stats  # the MILP proved it
    assert result.reason is not None and "no objective-aware proof" in result.reason


@needs_size_limited_licence
def test_too_large_for_the_licence_and_unreadable_by_the_proofs_keeps_the_attack_value():
    """2048 unstable ReLUs (32 channels of 8x8, no bias, inputs around 0): no formulation fits
    the licence, and the objective-aware bound refuses max pooling: no bound at all."""
    net = max_pool_cnn(32, size=10)
    domain = Box(np.full(100, -1.0), np.full(100, 1.0))
    options = {"steps": 5, "restarts": 2, "time_budget": None}
    result = maximize_output(net, domain, time_limit=30, bounds="interval", attack_options=options)
    assert result.reason is not None and "does not fit the licence" in result.reason
    assert result.bound is None and not result.optimal
    assert result.value == pytest.approx(forward64(net, result.x)[0, 0], abs=1e-12)
