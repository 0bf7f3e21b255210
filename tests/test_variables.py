"""The input and output variables a user may pass: MVar, Var, lists, dicts, pandas objects."""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pandas as pd
import pytest
from conftest import forward64, random_network

from gurobi_sparse_surrogate import add_sparse_predictor_constr
from gurobi_sparse_surrogate.exceptions import ShapeMismatchError

NET = random_network(3, 3, (5,), 2)


def solved_outputs(m: gp.Model, pc) -> np.ndarray:
    m.Params.IntFeasTol = 1e-9  # tightened: outputs compared with torch at 1e-6
    m.optimize()
    assert m.Status == gp.GRB.OPTIMAL
    return np.asarray(pc.output.X).reshape(-1, 2)


def test_dataframe_with_constant_columns_becomes_fixed_variables(model):
    x = model.addMVar((2, 2), lb=0.0, ub=1.0)
    model.update()
    frame = pd.DataFrame(
        {"a": x[:, 0].tolist(), "b": [0.25, 0.75], "c": x[:, 1].tolist()}, index=["p", "q"]
    )
    pc = add_sparse_predictor_constr(model, NET, frame)
    model.addConstr(x == np.array([[0.1, 0.9], [0.6, 0.3]]))
    out = solved_outputs(model, pc)
    expected = forward64(NET, np.array([[0.1, 0.25, 0.9], [0.6, 0.75, 0.3]]))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert pc.output.shape == (2, 2)


def test_series_dict_and_single_var_inputs(model):
    x = model.addMVar(3, lb=0.0, ub=1.0)
    model.update()
    series = pd.Series([x[0].item(), 0.5, x[2].item()], index=["a", "b", "c"], name="row")
    pc = add_sparse_predictor_constr(model, NET, series)
    as_dict = add_sparse_predictor_constr(model, NET, {i: v for i, v in enumerate(x.tolist())})
    model.addConstr(x == np.array([0.2, 0.5, 0.7]))
    expected = forward64(NET, np.array([0.2, 0.5, 0.7]))
    np.testing.assert_allclose(solved_outputs(model, pc), expected, atol=1e-6)
    np.testing.assert_allclose(solved_outputs(model, as_dict), expected, atol=1e-6)
    one = random_network(4, 1, (3,), 1)
    v = model.addVar(lb=0.0, ub=1.0)
    y = model.addVar(lb=-gp.GRB.INFINITY)
    single = add_sparse_predictor_constr(model, one, v, y)
    model.addConstr(v == 0.4)
    model.optimize()
    assert single.output.shape == (1, 1)
    assert y.X == pytest.approx(forward64(one, np.array([0.4]))[0, 0], abs=1e-6)


def test_output_variables_as_a_dataframe(model):
    x = model.addMVar(3, lb=0.0, ub=1.0)
    y = model.addMVar(2, lb=-gp.GRB.INFINITY)
    model.update()
    frame = pd.DataFrame([y.tolist()], columns=["y0", "y1"])
    pc = add_sparse_predictor_constr(model, NET, x, frame)
    model.addConstr(x == 0.5)
    np.testing.assert_allclose(
        solved_outputs(model, pc), forward64(NET, np.full(3, 0.5)), atol=1e-6
    )


def test_variables_that_are_not_variables_or_have_the_wrong_shape(model):
    x = model.addMVar(3, lb=0.0, ub=1.0)
    model.update()
    with pytest.raises(TypeError, match="input_vars must be a gurobipy MVar, Var, or a list"):
        add_sparse_predictor_constr(model, NET, [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="input_vars must be a gurobipy MVar"):
        add_sparse_predictor_constr(model, NET, [])
    with pytest.raises(TypeError, match="neither gurobipy variables nor numbers"):
        add_sparse_predictor_constr(model, NET, pd.Series([x[0].item(), "b", x[2].item()]))
    with pytest.raises(ShapeMismatchError, match=r"input variables have shape \(1, 1, 3\)"):
        add_sparse_predictor_constr(model, NET, model.addMVar((1, 1, 3)))
    with pytest.raises(ShapeMismatchError, match="expects 3 inputs per sample"):
        add_sparse_predictor_constr(model, NET, x[:2])
    with pytest.raises(ShapeMismatchError, match=r"output variables should have shape \(1, 2\)"):
        add_sparse_predictor_constr(model, NET, x, model.addMVar(3))


def test_dataframe_of_variables_only_adds_no_fixed_variable(model):
    x = model.addMVar((2, 3), lb=0.0, ub=1.0)
    model.update()
    frame = pd.DataFrame(x.tolist(), columns=["a", "b", "c"])
    pc = add_sparse_predictor_constr(model, NET, frame)
    model.update()
    assert not [v for v in model.getVars() if "fixed_input" in v.VarName]  # as a constant gets
    points = np.array([[0.1, 0.4, 0.8], [0.9, 0.3, 0.2]])
    model.addConstr(x == points)
    np.testing.assert_allclose(solved_outputs(model, pc), forward64(NET, points), atol=1e-6)


def test_output_variables_of_three_dimensions_are_refused(model):
    x = model.addMVar(3, lb=0.0, ub=1.0)
    with pytest.raises(
        ShapeMismatchError, match=r"output_vars must have one dimension.*\(1, 2, 1\)"
    ):
        add_sparse_predictor_constr(model, NET, x, model.addMVar((1, 2, 1)))
