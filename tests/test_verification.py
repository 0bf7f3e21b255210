"""find_adversarial: adversarial answers are real, robust answers are proved and unbroken."""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
from conftest import forward64

from gurobi_sparse_surrogate import L1Ball, LinfBall, add_sparse_predictor_constr, find_adversarial
from gurobi_sparse_surrogate.applications.attacks import pgd_attack
from gurobi_sparse_surrogate.datasets import load_digits, load_mnist, train_classifier

#: attack options without a time budget: the attack's outcome does not depend on the load
STEPS_ONLY = {"steps": 100, "restarts": 5, "time_budget": None}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    net = train_classifier(X[:1200], y[:1200], hidden=(16, 16), seed=0, epochs=15)
    return net, X[1200:], y[1200:]


@pytest.fixture(scope="module")
def mnist18():
    X, y = load_mnist(size=18, n=1500, seed=0)
    net = train_classifier(X[:1200], y[:1200], hidden=(16, 16), seed=0, epochs=10)
    return net, X[1200:], y[1200:]


def check(result, net, domain, target="any", verdict=True):
    """Every answer is judged against torch and the domain, independently of the solver.

    ``verdict``: the test's point is an answer, so ``unknown`` (a timeout) fails it; the
    searches here are small and their time limits generous.
    """
    if verdict:
        assert result.status in ("adversarial", "robust"), f"no verdict: {result!r}"
    if result.status == "adversarial":
        logits = forward64(net, result.x)[0]
        assert domain.contains(result.x)
        assert logits.argmax() != result.label
        assert logits[result.label] - logits[result.target] == pytest.approx(result.dense_margin)
        assert result.dense_margin < 0 and result.time_to_first <= result.runtime
    elif result.status == "robust":
        assert result.bound > 0
        # a step-budgeted attack (no time budget: the same search under any load)
        attack = pgd_attack(
            net,
            domain.center,
            domain,
            true_label=result.label,
            target=target,
            restarts=10,
            steps=200,
            seed=1,
            time_budget=None,
        )
        assert not attack.success
        assert attack.margin > 0


@pytest.mark.parametrize("surrogate", [None, 0.7])
def test_radius_zero_is_robust_and_huge_radius_is_not(digits, surrogate):
    net, X, _ = digits
    x0 = X[0]
    robust = find_adversarial(net, x0, L1Ball(x0, 0.0), time_limit=30, surrogate=surrogate)
    assert robust.status == "robust"
    check(robust, net, L1Ball(x0, 0.0))
    domain = LinfBall(x0, 1.0)
    found = find_adversarial(net, x0, domain, time_limit=30, surrogate=surrogate, attack=False)
    assert found.status == "adversarial"
    check(found, net, domain)


@pytest.mark.parametrize("target", ["runner-up", "any", 3])
def test_every_answer_on_digits_is_checked(digits, target):
    net, X, _ = digits
    statuses = set()
    for i in range(6):
        x0 = X[i]
        if target == 3 and forward64(net, x0)[0].argmax() == 3:
            continue
        domain = L1Ball(x0, 1.5)
        result = find_adversarial(net, x0, domain, target=target, time_limit=30, attack=False)
        check(result, net, domain, "any" if target == "any" else result.target)
        statuses.add(result.status)
        if isinstance(target, int):
            assert result.target == target
    assert statuses <= {"adversarial", "robust"}


def test_surrogate_and_dense_routes_agree_on_status(mnist18):
    net, X, _ = mnist18
    statuses = []
    # at an L1 radius of 0.25 images 0 and 4 are robust (proven margins about 0.14 and 0.015,
    # far above the solver's tolerances) and image 1 is not; at 3.0 every image is adversarial
    for i, radius in ((0, 0.25), (1, 0.25), (4, 0.25), (2, 3.0), (3, 3.0)):
        domain = L1Ball(X[i], radius)
        # proof_steps=None: no objective-aware proof, so that both MILP routes are exercised
        kwargs = {"time_limit": 60, "attack": False, "proof_steps": None}
        dense = find_adversarial(net, X[i], domain, **kwargs)
        sparse = find_adversarial(net, X[i], domain, surrogate=0.8, **kwargs)
        assert dense.status == sparse.status != "unknown"
        check(dense, net, domain)
        check(sparse, net, domain)
        assert sparse.pruning_seconds > 0 and "surrogate" in sparse.model_stats
        statuses.append(dense.status)
    # both verdicts are exercised: a robust answer from the surrogate route is the dense proof
    assert statuses == ["robust", "adversarial", "robust", "adversarial", "adversarial"]


def test_attack_stage_answers_first_when_it_succeeds(digits):
    net, X, _ = digits
    domain = LinfBall(X[1], 0.5)
    # a step budget, not seconds: the attack runs its 100 steps x 5 restarts under any load
    result = find_adversarial(net, X[1], domain, time_limit=30, attack_options=STEPS_ONLY)
    assert result.status == "adversarial" and result.found_by == "attack"
    assert result.attack_seconds > 0 and result.history[0].phase == "attack"
    check(result, net, domain)


def test_worst_case_search_is_at_least_as_deep_as_first(digits):
    net, X, _ = digits
    domain = L1Ball(X[2], 3.0)
    first = find_adversarial(net, X[2], domain, time_limit=30, attack=False)
    worst = find_adversarial(net, X[2], domain, time_limit=60, attack=False, stop_at_first=False)
    check(first, net, domain)
    check(worst, net, domain)
    assert first.status == worst.status == "adversarial"
    # the worst case is optimal up to the relative MIPGap (1e-4) of the solver
    assert worst.dense_margin <= first.dense_margin + 1e-4 * (1 + abs(first.dense_margin))


def test_errors(digits):
    net, X, _ = digits
    domain = L1Ball(X[0], 1.0)
    with pytest.raises(ValueError, match="time_limit"):
        find_adversarial(net, X[0], domain, time_limit=-1)
    with pytest.raises(ValueError, match="inside the domain"):
        find_adversarial(net, X[1], domain)
    with pytest.raises(ValueError, match="target"):
        find_adversarial(net, X[0], domain, target="worst")
    label = int(forward64(net, X[0])[0].argmax())
    with pytest.raises(ValueError, match="other than the true label"):
        find_adversarial(net, X[0], domain, target=label)
    with pytest.raises(TypeError, match="domain"):
        find_adversarial(net, X[0], (0, 1))
    with pytest.raises(ValueError, match="entries"):
        find_adversarial(net, X[0][:10], domain)


def test_full_mnist_image_with_l1_ball_and_4x64_network_fits_the_licence():
    X, y = load_mnist(size=28, n=600, seed=1)
    net = train_classifier(X[:500], y[:500], hidden=(64, 64, 64, 64), seed=0, epochs=3)
    domain = L1Ball(X[500], 5.0)
    result = find_adversarial(net, X[500], domain, time_limit=5, attack=False)
    check(result, net, domain, verdict=False)  # built and solved: no size error
    # the same model, built by hand, measured as the licence counts it
    m = gp.Model(env=gp.Env(params={"OutputFlag": 0}))
    x = m.addMVar(784, lb=domain.lower, ub=domain.upper)
    domain.add_to_model(m, x)
    add_sparse_predictor_constr(m, net, x, domain=domain)
    m.update()
    assert m.NumVars <= 2000 and m.NumConstrs <= 2000


def test_surrogate_route_without_fallback_never_builds_the_dense_model(digits):
    net, X, _ = digits
    domain = LinfBall(X[3], 1.0)
    result = find_adversarial(
        net, X[3], domain, time_limit=30, surrogate=0.5, fallback=False, attack=False
    )
    assert "dense" not in result.model_stats and "surrogate" in result.model_stats
    assert result.bounding_seconds == result.model_stats["surrogate"]["bounds_seconds"]
    check(result, net, domain)


def test_an_adversarial_attack_point_is_never_reported_unknown(digits, monkeypatch):
    import gurobi_sparse_surrogate.applications.adversarial as verification
    from gurobi_sparse_surrogate.applications.common import Outcome

    net, X, _ = digits
    domain = LinfBall(X[1], 0.5)
    # the MILP gives no answer (as when time runs out): the attack's point decides
    monkeypatch.setattr(verification, "solve", lambda *args, **kwargs: Outcome())
    result = find_adversarial(
        net, X[1], domain, time_limit=30, stop_at_first=False, attack_options=STEPS_ONLY
    )
    assert result.status == "adversarial" and result.found_by == "attack"
    check(result, net, domain)


def test_network_and_domain_of_different_sizes_are_named(digits):
    from gurobi_sparse_surrogate import Box, ShapeMismatchError, maximize_output

    net, X, _ = digits
    with pytest.raises(ShapeMismatchError, match="64 inputs but the domain has dimension 10"):
        find_adversarial(net, X[0][:10], L1Ball(X[0][:10], 1.0))
    with pytest.raises(ShapeMismatchError, match="64 inputs but the domain has dimension 3"):
        maximize_output(net, Box(np.zeros(3), np.ones(3)))
