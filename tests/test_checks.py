"""The package's small checks and solver helpers: option keys that are not strings, numbers
without a minimum, optional time limits, Gurobi parameters that are not a dict, and the proven
bound of a model after a solve (stopped at once, optimal, infeasible)."""

from __future__ import annotations

import gurobipy as gp
import pytest

from gurobi_sparse_surrogate import InvalidOptionError
from gurobi_sparse_surrogate.bounds import BoundOptions
from gurobi_sparse_surrogate.solving import check_gurobi_params, check_time_limit, proven_bound
from gurobi_sparse_surrogate.validation import check_number


def test_an_option_key_that_is_not_a_string_is_named_without_suggestions():
    with pytest.raises(InvalidOptionError) as info:
        BoundOptions.from_value({3: 1.0})
    message = str(info.value)
    assert message.startswith("unknown bounding option 3. Valid bounding options: ")
    assert "did you mean" not in message and "time_budget" in message


def test_a_number_without_a_minimum():
    assert check_number("scale", -2.5) == -2.5
    assert check_number("count", -3, integer=True) == -3
    assert check_number("scale", None, allow_none=True) is None
    with pytest.raises(InvalidOptionError, match=r"^scale must be a number, got 'x'$"):
        check_number("scale", "x")
    with pytest.raises(InvalidOptionError, match=r"^count must be an integer or None, got 1\.5$"):
        check_number("count", 1.5, integer=True, allow_none=True)


def test_time_limits_and_gurobi_parameter_dicts():
    assert check_time_limit(None, allow_none=True) is None
    assert check_time_limit(3) == 3.0
    with pytest.raises(InvalidOptionError, match=r"finite number of seconds, got None$"):
        check_time_limit(None)
    with pytest.raises(InvalidOptionError, match=r"\(or None for no limit\), got -1"):
        check_time_limit(-1, allow_none=True)
    with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as model:
        check_gurobi_params(model, None, "params")
        check_gurobi_params(model, {"TimeLimit": 1.0}, "params")
        with pytest.raises(InvalidOptionError, match=r"^dense_params must be a dict of Gurobi"):
            check_gurobi_params(model, [("TimeLimit", 1.0)], "dense_params")
        with pytest.raises(InvalidOptionError, match=r"\['TimeLimt'\] in params"):
            check_gurobi_params(model, {"TimeLimt": 1.0}, "params")
        assert model.Params.TimeLimit == float("inf")  # nothing was set (the default)


def test_proven_bound_before_and_after_a_solve():
    with gp.Env(params={"OutputFlag": 0, "Threads": 1}) as env:
        with gp.Model(env=env) as mip:
            # max x + 2y, x + y <= 2.5, x, y integer in [0, 2]: optimum 4 (x=0, y=2)
            x = mip.addVar(ub=2, vtype=gp.GRB.INTEGER)
            y = mip.addVar(ub=2, vtype=gp.GRB.INTEGER)
            mip.addConstr(x + y <= 2.5)
            mip.setObjective(x + 2 * y, gp.GRB.MAXIMIZE)
            mip.Params.TimeLimit = 0.0
            mip.optimize()  # stopped before any work: nothing proven
            assert mip.Status == gp.GRB.TIME_LIMIT and proven_bound(mip) == float("inf")
            mip.Params.TimeLimit = float("inf")
            mip.Params.MIPGap = 0.0
            mip.optimize()
            assert proven_bound(mip) == pytest.approx(4.0, abs=1e-9)
            mip.addConstr(x + y >= 3)  # infeasible: the bound of the empty set
            mip.optimize()
            assert mip.Status == gp.GRB.INFEASIBLE and proven_bound(mip) == float("-inf")
        with gp.Model(env=env) as lp:
            z = lp.addVar(ub=1.5)
            lp.setObjective(z, gp.GRB.MAXIMIZE)
            lp.optimize()
            assert proven_bound(lp) == pytest.approx(1.5)
            lp.addConstr(z >= 2.0)  # now infeasible: no bound
            lp.optimize()
            assert lp.Status == gp.GRB.INFEASIBLE and proven_bound(lp) is None
