"""find_adversarial's stages after the proofs: per-class MILPs on the dense model and attacks
from the relaxation's inputs, checked against gurobi-ml's embedding and torch."""

from __future__ import annotations

import gurobi_ml
import gurobipy as gp
import numpy as np
import pytest
from conftest import forward64

from gurobi_sparse_surrogate import LinfBall, find_adversarial
from gurobi_sparse_surrogate.datasets import load_digits, train_classifier


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    net = train_classifier(X[:1000], y[:1000], hidden=(12, 12), seed=1, epochs=15)
    return net, X[1000:]


def _true_minimum_margins(net, domain, label: int) -> np.ndarray:
    """Per wrong class, min of y_label - y_j over the box, by gurobi-ml's own embedding."""
    out = []
    for j in range(10):
        if j == label:
            continue
        with gp.Env(params={"OutputFlag": 0, "Threads": 1}) as env, gp.Model(env=env) as m:
            x = m.addMVar(domain.n, lb=domain.lower, ub=domain.upper)
            y = m.addMVar(10, lb=-gp.GRB.INFINITY)
            gurobi_ml.add_predictor_constr(m, net, x, y)
            m.setObjective(y[label] - y[j], gp.GRB.MINIMIZE)
            m.Params.MIPGap = 1e-6
            m.optimize()
            assert m.Status == gp.GRB.OPTIMAL
            out.append(m.ObjVal)
    return np.array(out)


@pytest.mark.parametrize(("index", "radius"), [(0, 0.02), (1, 0.06), (3, 0.25)])
def test_per_class_milps_answer_as_the_exact_minimum_says(digits, index, radius):
    """No proofs and no attack: every class goes to its own MILP on the dense model."""
    net, X = digits
    x0 = X[index]
    domain = LinfBall(x0, radius)
    result = find_adversarial(
        net, x0, domain, target="any", time_limit=60, attack=False, proof_steps=None
    )
    truth = _true_minimum_margins(net, domain, result.label)
    if result.status == "adversarial":
        logits = forward64(net, result.x)[0]
        assert domain.contains(result.x) and logits.argmax() != result.label
        assert truth.min() < 0
    else:
        assert result.status == "robust"
        assert truth.min() > -1e-4
        assert result.bound <= truth.min() + 1e-4 * (1 + abs(truth.min()))


def test_the_verdicts_cover_both_answers(digits):
    """The cases above are not all of one kind (a test that cannot fail is a defect)."""
    net, X = digits
    statuses = {
        find_adversarial(
            net, X[i], LinfBall(X[i], r), target="any", time_limit=60, attack=False
        ).status
        for i, r in [(0, 0.02), (3, 0.25)]
    }
    assert statuses == {"robust", "adversarial"}


def test_relaxation_points_attack_and_stay_in_the_domain(digits, monkeypatch):
    """With the first attack given no steps (it only evaluates the reference input), the
    relaxation's inputs and the targeted attacks from them decide; whatever they return is
    checked by torch and lies in the domain. (With the default attack, the first attack
    decided every one of these instances and the relaxation stage never ran.)"""
    from gurobi_sparse_surrogate.applications import adversarial

    # a step budget only: the relaxation attacks' seconds cap is not what decides here
    monkeypatch.setattr(adversarial, "RELAXATION_ATTACK_SECONDS", 60.0)
    net, X = digits
    found_by = []
    for index in range(6):
        x0 = X[index]
        domain = LinfBall(x0, 0.12)
        result = find_adversarial(
            net,
            x0,
            domain,
            target="any",
            time_limit=60,
            attack_options={"steps": 0, "restarts": 1},
        )
        found_by.append(result.found_by)
        if result.status == "adversarial":
            assert domain.contains(result.x)
            assert forward64(net, result.x)[0].argmax() != result.label
        if result.x is not None:
            assert domain.contains(result.x)
    assert "relaxation attack" in found_by, found_by


@pytest.mark.parametrize(("index", "radius"), [(0, 0.05), (1, 0.1), (3, 0.14), (3, 0.25)])
def test_branch_and_bound_before_the_milp_answers_as_the_exact_minimum_says(
    digits, index, radius, monkeypatch
):
    """Branch and bound forced on (every class it cannot prove goes on to the MILP)."""
    from gurobi_sparse_surrogate.applications import adversarial

    monkeypatch.setattr(adversarial, "BRANCH_MIN_UNSTABLE", 0)
    net, X = digits
    x0 = X[index]
    domain = LinfBall(x0, radius)
    result = find_adversarial(net, x0, domain, target="any", time_limit=60, attack=False)
    truth = _true_minimum_margins(net, domain, result.label)
    others = [j for j in range(10) if j != result.label]
    for j in result.proven_classes:  # proven by the objective bounds or by branch and bound
        assert truth[others.index(j)] > -1e-6
    if result.status == "adversarial":
        assert domain.contains(result.x)
        assert forward64(net, result.x)[0].argmax() != result.label
        assert truth.min() < 0
    else:
        assert result.status == "robust"
        assert truth.min() > -1e-4
        assert result.bound <= truth.min() + 1e-4 * (1 + abs(truth.min()))


def _three_linear_classes(b2: float):
    """y = (0, -5e-5 - x, x + b2) on x in [0, 1], label 0 at x0 = 0: class 1's smallest
    margin is 5e-5 (no adversarial input, not provable above ROBUST_TOL); class 2's is
    -(1 + b2)."""
    import torch
    from torch import nn

    net = nn.Sequential(nn.Linear(1, 3)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.0], [-1.0], [1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, -5e-5, b2]))
    return net


def test_a_class_neither_adversarial_nor_provable_does_not_end_the_per_class_milps():
    """Class 1 is solved first (no start point orders them) and ends without an answer; the
    search stopped there with "unknown", "time limit reached" and a "proven" bound of 0,
    while class 2 has an adversarial input (x = 1)."""
    from gurobi_sparse_surrogate import Box

    net = _three_linear_classes(-0.5)
    domain = Box([0.0], [1.0])
    options = {"target": "any", "attack": False, "proof_steps": None, "time_limit": 20}
    result = find_adversarial(net, np.zeros(1), domain, **options)
    assert result.status == "adversarial", result.summary()
    assert domain.contains(result.x) and forward64(net, result.x)[0].argmax() != 0
    # no adversarial input anywhere: unknown, with the reason and the bound the MILPs proved
    net = _three_linear_classes(-1.5)
    result = find_adversarial(net, np.zeros(1), domain, **options)
    assert result.status == "unknown", result.summary()
    assert result.reason.startswith("the MILP found no adversarial input"), result.reason
    assert result.bound == pytest.approx(5e-5, abs=1e-6)  # class 1's minimum, x = 0
