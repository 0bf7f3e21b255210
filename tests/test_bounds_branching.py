"""Branch and bound on unstable ReLUs: its bound never exceeds the exact minimum (gurobi-ml's
MILP), 'proven' only when the minimum is positive, counterexamples checked by torch."""

from __future__ import annotations

import gurobi_ml
import gurobipy as gp
import numpy as np
import pytest
from conftest import forward64, random_network
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gurobi_sparse_surrogate import Box, L1Ball, LinfBall
from gurobi_sparse_surrogate.bounds import compute_bounds
from gurobi_sparse_surrogate.bounds.alpha import optimise_intermediate_bounds
from gurobi_sparse_surrogate.bounds.branching import branch_and_bound
from gurobi_sparse_surrogate.network import extract_layers


def _exact_minimum(net, domain, c) -> float:
    with gp.Env(params={"OutputFlag": 0, "Threads": 1}) as env, gp.Model(env=env) as m:
        x = m.addMVar(domain.n, lb=domain.lower, ub=domain.upper)
        y = m.addMVar(len(c), lb=-gp.GRB.INFINITY)
        gurobi_ml.add_predictor_constr(m, net, x, y)
        m.setObjective(np.asarray(c) @ y, gp.GRB.MINIMIZE)
        m.Params.MIPGap = 1e-7
        m.Params.FeasibilityTol = 1e-8
        m.optimize()
        assert m.Status == gp.GRB.OPTIMAL
        return float(m.ObjBound)


def _bounds(net, domain):
    layers = extract_layers(net)
    crown = compute_bounds(layers, domain.lower, domain.upper, "linear", domain)
    return optimise_intermediate_bounds(net, domain, crown)


def _check(net, domain, c, offset, **options):
    truth = _exact_minimum(net, domain, c) + offset
    result = branch_and_bound(net, domain, c, _bounds(net, domain), offset, **options)
    assert result.lower <= truth + 1e-6 * (1 + abs(truth))
    if result.status == "proven":
        assert truth > 0
    if result.status == "counterexample":
        assert domain.contains(result.point)
        assert forward64(net, result.point)[0] @ c + offset < 0
    if result.point is not None:
        assert domain.contains(result.point)
    return truth, result


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    depth=st.integers(1, 3),
    shift=st.sampled_from([-0.3, -0.02, 0.02, 0.3]),
    box=st.booleans(),
)
def test_bound_below_the_exact_minimum(seed, depth, shift, box):
    net = random_network(seed, 5, (10,) * depth, 3)
    x0 = np.random.default_rng(seed).uniform(0.2, 0.8, 5)
    domain = Box(x0 - 0.3, x0 + 0.2) if box else LinfBall(x0, 0.25)
    c = np.array([1.0, -1.0, 0.0])
    truth = _exact_minimum(net, domain, c)
    # the offset puts the minimum just above or below zero (hard for a proof either way)
    _check(net, domain, c, -truth + shift * (1 + abs(truth)), time_budget=30.0, max_nodes=400)


def test_tiny_network_is_proven_when_positive():
    net = random_network(4, 3, (8, 8), 2)
    domain = LinfBall(np.full(3, 0.5), 0.4)
    c = np.array([1.0, -1.0])
    truth = _exact_minimum(net, domain, c)
    _, above = _check(net, domain, c, -truth + 0.05, time_budget=60.0)
    assert above.status == "proven" and above.lower > 0
    _, below = _check(net, domain, c, -truth - 0.05, time_budget=60.0)
    assert below.status != "proven" and below.lower < 0


def test_badly_scaled_network():
    net = random_network(9, 4, (10, 10), 2)
    import torch

    with torch.no_grad():
        net[0].weight.mul_(1e3)
        net[2].weight.mul_(1e-3)
    domain = LinfBall(np.full(4, 0.5), 0.2)
    c = np.array([1.0, -1.0])
    truth = _exact_minimum(net, domain, c)
    for shift in (-0.01, 0.01):
        _check(net, domain, c, -truth + shift * (1 + abs(truth)), time_budget=30.0, max_nodes=300)


def test_l1_ball_is_left_unknown():
    net = random_network(1, 4, (6,), 2)
    domain = L1Ball(np.full(4, 0.5), 0.5)
    result = branch_and_bound(net, domain, [1.0, -1.0], _bounds(net, domain))
    assert result.status == "unknown" and result.lower == -np.inf


@pytest.mark.parametrize("offset", [-100.0, 100.0])
def test_clear_cases_need_no_branching(offset):
    net = random_network(2, 4, (6, 6), 2)
    domain = LinfBall(np.full(4, 0.5), 0.1)
    result = branch_and_bound(net, domain, [1.0, -1.0], _bounds(net, domain), offset)
    assert result.nodes == 1
    assert result.status == ("proven" if offset > 0 else "counterexample")


def test_a_counterexample_lies_in_a_domain_smaller_than_its_box():
    """A user's domain (the box [0, 1]^4 cut by sum(x) <= 0.8): the relaxation's minimisers
    are corners of the box, outside the domain; one of them was reported as a
    counterexample ("an input of the domain") although the function is positive on the
    domain. Proofs over the box still hold for the domain."""
    import torch
    from test_bound_options import CappedBox

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))
    net = net.double()
    with torch.no_grad():  # y = -relu(sum(x) - 0.8) + small: negative only outside the cap
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(-0.8)
        net[2].weight.fill_(-1.0 / 6)
        net[2].bias.fill_(0.0)
    domain = CappedBox(4, 0.8)
    layers = extract_layers(net)
    bounds = compute_bounds(layers, domain.lower, domain.upper, "linear")  # the box's bounds
    points = domain.sample(2000, np.random.default_rng(0))
    offset = 0.01
    assert (forward64(net, points)[:, 0] + offset > 0).all()  # positive on the domain
    corner = np.ones(4)
    assert forward64(net, corner)[0, 0] + offset < 0  # negative at a corner of the box
    result = branch_and_bound(net, domain, [1.0], bounds, offset, time_budget=1e9, max_nodes=50)
    assert result.status != "counterexample"
    if result.point is not None:
        assert domain.contains(result.point)
