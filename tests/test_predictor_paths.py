"""Side roads of the predictor constraint object: get_error before a solve and its warning,
print_stats in one line and for a network without ReLU, unstable neurons without any finite
bound (no tolerance to tighten), and a domain of the wrong dimension."""

from __future__ import annotations

import warnings

import gurobipy as gp
import numpy as np
import pytest
import torch
from conftest import forward64, random_network
from gurobi_ml.exceptions import NoSolutionError
from torch import nn

from gurobi_sparse_surrogate import Box, ShapeMismatchError, add_sparse_predictor_constr

#: at fixed inputs the outputs are exact up to IntFeasTol times a big-M: tightened here
TIGHT = {"IntFeasTol": 1e-9, "FeasibilityTol": 1e-9}


def solve_at(model: gp.Model, x: gp.MVar, point: np.ndarray) -> None:
    for name, value in TIGHT.items():
        model.setParam(name, value)
    model.addConstr(x == point)
    model.optimize()
    assert model.Status == gp.GRB.OPTIMAL


def test_get_error_needs_a_solution_and_warns_above_eps(model):
    net = random_network(1, 3, (4,), 2)
    x = model.addMVar(3, lb=0.0, ub=1.0)
    pc = add_sparse_predictor_constr(model, net, x)
    with pytest.raises(NoSolutionError):
        pc.get_error()
    point = np.array([0.2, 0.5, 0.9])
    solve_at(model, x, point)
    # get_error compares with the network as it is when first asked: shift the output bias
    # by 0.5 after the solve, and the error is 0.5 on every output (up to the solver's error)
    with torch.no_grad():
        net[-1].bias += 0.5
    error = pc.get_error()
    np.testing.assert_allclose(error, np.full((1, 2), 0.5), atol=1e-6)
    with pytest.warns(UserWarning, match=r"largest error 0\.5 exceeds 0\.1"):
        again = pc.get_error(eps=0.1)
    np.testing.assert_array_equal(again, error)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pc.get_error(eps=0.6)  # below eps: no warning


def test_print_stats_abbreviated_is_one_line_of_the_stats(capsys, model):
    net = random_network(2, 3, (5,), 2)
    pc = add_sparse_predictor_constr(model, net, model.addMVar(3, lb=-1.0, ub=1.0))
    pc.print_stats(abbrev=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    fields = lines[0].split()
    stats = pc.stats
    # name, output shape "(1, 2)" (two tokens), variables, constraints, 0 quadratic, general
    assert fields[0] == "sparse_sequential"
    assert " ".join(fields[1:3]) == "(1, 2)"
    assert [int(f) for f in fields[3:]] == [
        stats["variables"],
        stats["constraints"],
        0,
        stats["general_constraints"],
    ]
    model.update()
    assert stats["variables"] == model.NumVars - 3  # all but the user's inputs


def test_print_stats_of_a_network_without_relu_has_no_unstable_section(capsys, model):
    net = nn.Sequential(nn.Linear(3, 2))
    x = model.addMVar(3, lb=0.0, ub=1.0)
    pc = add_sparse_predictor_constr(model, net, x)
    pc.print_stats()
    out = capsys.readouterr().out
    assert "Unstable neurons" not in out and "skipped" not in out
    assert "0 binary" in out
    assert out.rstrip().splitlines()[-2:] == [
        "Input has shape (1, 3)",
        "Output has shape (1, 2)",
    ]
    solve_at(model, x, np.array([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(pc.output_values, forward64(net, [0.1, 0.2, 0.3]), atol=1e-6)


def test_unstable_neurons_without_finite_bounds_tighten_no_tolerance():
    """The tolerances are tightened for the largest finite big-M; with every input free,
    no unstable neuron has a finite bound and none is changed (the max formulation needs no
    big-M), while the same weights over a wide box do tighten them."""
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 1.0]]))
        net[0].bias.zero_()
    env = gp.Env(params={"OutputFlag": 0, "Threads": 1})
    try:
        free = gp.Model(env=env)
        x = free.addMVar(2, lb=-gp.GRB.INFINITY, ub=gp.GRB.INFINITY)
        pc = add_sparse_predictor_constr(free, net, x, relu_formulation="max")
        assert pc.stats["layers"][0]["unstable"] == 2
        assert np.isinf(pc.bounds.lower[0]).all() and np.isinf(pc.bounds.upper[0]).all()
        assert pc.tolerance_changes == {}
        assert free.Params.IntFeasTol == 1e-5 and free.Params.FeasibilityTol == 1e-6
        solve_at(free, x, np.array([3.0, -4.0]))
        np.testing.assert_allclose(pc.output_values, forward64(net, [3.0, -4.0]), atol=1e-6)

        wide = gp.Model(env=env)
        y = wide.addMVar(2, lb=-1e5, ub=1e5)
        pc = add_sparse_predictor_constr(wide, net, y, relu_formulation="max")
        assert set(pc.tolerance_changes) == {"IntFeasTol", "FeasibilityTol"}
        assert wide.Params.IntFeasTol < 1e-5
    finally:
        env.dispose()


def test_a_domain_of_the_wrong_dimension_is_refused(model):
    net = random_network(0, 3, (4,), 2)
    x = model.addMVar(3, lb=0.0, ub=1.0)
    model.update()
    before = (model.NumVars, model.NumConstrs)
    with pytest.raises(ShapeMismatchError, match="domain has dimension 4, the network 3 inputs"):
        add_sparse_predictor_constr(model, net, x, domain=Box(np.zeros(4), np.ones(4)))
    model.update()
    assert (model.NumVars, model.NumConstrs) == before
