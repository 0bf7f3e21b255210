"""find_adversarial and maximize_output: proofs before the MILP, and never a crash on size."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import forward64, random_network

from gurobi_sparse_surrogate import (
    Box,
    LinfBall,
    find_adversarial,
    license_is_size_limited,
    maximize_output,
)
from gurobi_sparse_surrogate.applications.attacks import pgd_attack
from gurobi_sparse_surrogate.datasets import load_digits, train_classifier


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    net = train_classifier(X[:1200], y[:1200], hidden=(16, 16), seed=0, epochs=15)
    return net, X[1200:]


def test_all_classes_proven_means_robust_without_a_milp(digits):
    net, X = digits
    x0 = X[0]
    domain = LinfBall(x0, 0.005)
    result = find_adversarial(net, x0, domain, target="any", time_limit=30)
    assert result.status == "robust"
    assert result.model_stats == {}  # no MILP was built
    assert len(result.proven_classes) == 9 and result.bound > 0
    # independent check: a strong attack finds nothing, and sampled margins stay above the bound
    attack = pgd_attack(net, x0, domain, true_label=result.label, target="any", restarts=5)
    assert not attack.success
    logits = forward64(net, domain.sample(2000, np.random.default_rng(0)))
    others = np.delete(logits, result.label, axis=1)
    assert (logits[:, result.label] - others.max(axis=1) >= result.bound).all()


def test_partly_proven_classes_leave_the_milp_and_the_answer_is_checked(digits, monkeypatch):
    from gurobi_sparse_surrogate.applications import adversarial

    monkeypatch.setattr(adversarial, "BRANCH_MIN_UNSTABLE", 10**9)  # no branch and bound
    net, X = digits
    for index in range(8):
        x0 = X[index]
        domain = LinfBall(x0, 0.08)
        result = find_adversarial(net, x0, domain, target="any", time_limit=60, attack=False)
        if result.status == "adversarial":
            logits = forward64(net, result.x)[0]
            assert domain.contains(result.x) and logits.argmax() != result.label
            assert result.target not in result.proven_classes
        elif result.status == "robust":
            attack = pgd_attack(net, x0, domain, true_label=result.label, target="any")
            assert not attack.success
        if result.model_stats and 0 < len(result.proven_classes) < 9:
            return  # a MILP over the unproven classes only was built and answered
    pytest.skip("no instance with some classes proven and a MILP needed")


def test_objective_cuts_do_not_change_the_optimum(digits):
    """With and without proofs/cuts, the MILP's minimum margin for one class is the same."""
    net, X = digits
    x0 = X[2]
    domain = LinfBall(x0, 0.1)
    runs = [
        find_adversarial(
            net,
            x0,
            domain,
            target="runner-up",
            time_limit=60,
            attack=False,
            stop_at_first=False,
            proof_steps=steps,
        )
        for steps in (None, 30)
    ]
    assert runs[0].status == runs[1].status != "unknown"
    if runs[0].status == "adversarial":
        assert runs[1].dense_margin == pytest.approx(runs[0].dense_margin, rel=1e-3, abs=1e-4)


@pytest.mark.skipif(not license_is_size_limited(), reason="needs the size-limited licence")
def test_a_network_that_cannot_fit_gives_unknown_with_a_reason():
    net = random_network(0, 30, (700, 700), 3)
    x0 = np.full(30, 0.5)
    domain = Box(np.zeros(30), np.ones(30))
    # without proofs (no optimised bounds, no branch and bound) only the MILP could answer
    result = find_adversarial(
        net,
        x0,
        domain,
        target="any",
        time_limit=30,
        attack=False,
        bounds="interval",
        proof_steps=None,
    )
    assert result.status == "unknown"
    assert "licence" in result.reason
    # with them, branch and bound answers where the MILP cannot be built (checked by torch)
    result = find_adversarial(
        net, x0, domain, target="any", time_limit=30, attack=False, bounds="interval"
    )
    if result.status == "adversarial":
        assert domain.contains(result.x)
        assert forward64(net, result.x)[0].argmax() != result.label
    else:
        assert result.status == "unknown" and result.reason
    maximum = maximize_output(
        net, domain, time_limit=30, bounds="interval", attack_options={"steps": 5}
    )
    assert maximum.reason is not None and "licence" in maximum.reason
    assert maximum.value is not None and maximum.bound >= maximum.value
    samples = forward64(net, domain.sample(500, np.random.default_rng(0)))[:, 0]
    assert (samples <= maximum.bound).all()
