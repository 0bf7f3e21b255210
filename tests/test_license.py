"""Size checks against the size-limited licence."""

from __future__ import annotations

import gurobipy as gp
import pytest
from conftest import random_network

from gurobi_sparse_surrogate import (
    ModelTooLargeError,
    add_sparse_predictor_constr,
    check_model_size,
    license_is_size_limited,
)
from gurobi_sparse_surrogate.license import SizeReport

limited = pytest.mark.skipif(not license_is_size_limited(), reason="needs the size-limited licence")


def test_check_model_size_counts(model):
    model.addMVar(10)
    model.addConstr(model.addVar() >= 1)
    report = check_model_size(model, added_variables=5, added_constraints=7, added_binaries=2)
    assert (report.variables, report.constraints) == (16, 8)
    assert report.fits


def test_report_message_names_what_is_over():
    report = SizeReport(2500, 100, 2400, 50, 900, size_limited=True)
    assert not report.fits
    text = report.message("Prune it.")
    assert "2500 variables (limit 2000)" in text and "900 binary" in text and "Prune it." in text
    assert "constraints (limit" not in text
    assert SizeReport(2500, 2500, size_limited=False).fits


@limited
def test_license_detection_matches_gurobi():
    m = gp.Model()
    m.Params.OutputFlag = 0
    m.addMVar(2001)
    with pytest.raises(gp.GurobiError):
        m.optimize()


@limited
def test_too_large_embedding_fails_before_building(model):
    # 3 x 400 unstable ReLUs with big-M: ~2400 variables and ~3600 rows
    net = random_network(0, 30, (400, 400, 400), 2)
    x = model.addMVar(30, lb=-1.0, ub=1.0)
    model.update()
    before = (model.NumVars, model.NumConstrs)
    with pytest.raises(
        ModelTooLargeError, match=r"variables \(limit 2000\).*relu_formulation='max'"
    ):
        add_sparse_predictor_constr(model, net, x)
    model.update()
    assert (model.NumVars, model.NumConstrs) == before
    # the advice works here: the max formulation without the check builds
    pc = add_sparse_predictor_constr(model, net, x, check_size=False)
    assert pc.stats["variables"] > 2000
