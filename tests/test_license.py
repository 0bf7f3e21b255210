"""Size checks against the size-limited licence."""

from __future__ import annotations

import gurobipy as gp
import pytest
from conftest import licence_refuses_2001_variables, needs_size_limited_licence, random_network

from gurobi_sparse_surrogate import (
    ModelTooLargeError,
    add_sparse_predictor_constr,
    check_model_size,
    license_is_size_limited,
)
from gurobi_sparse_surrogate import license as license_module
from gurobi_sparse_surrogate.license import SizeReport


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


def test_license_detection_matches_a_probe_model_of_2001_variables():
    # fails (never skips) when the detection is wrong, whichever licence is installed
    assert license_is_size_limited() is licence_refuses_2001_variables()
    assert check_model_size(gp.Model(env=gp.Env(params={"OutputFlag": 0}))).size_limited is (
        licence_refuses_2001_variables()
    )


class _FakeGurobi:
    """Stands in for gurobipy in ``license``: a licence that answers ``optimize`` as told.

    What is mocked: ``gp.Env``/``gp.Model`` as ``license_is_size_limited`` uses them, with an
    ``optimize`` that succeeds (a full licence), raises errno 10010 (the size limit) or another
    error (no licence). Why: the machines that run the suite have one licence each, so without
    a stand-in only one of the three paths could ever run; the real licence is checked against
    an independent probe in the test above.
    """

    GurobiError = gp.GurobiError

    def __init__(self, errno=None):
        errno_ = errno

        class Model:
            def __init__(self, env=None):
                pass

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def addVars(self, n):
                assert n == 2001

            def optimize(self):
                if errno_ is not None:
                    raise gp.GurobiError(errno_, "licence says no")

        self.Model = Model
        self.Env = lambda params=None: Model()


@pytest.mark.parametrize("errno", [None, 10010, 10009])
def test_license_detection_on_a_full_a_limited_and_a_broken_licence(monkeypatch, errno):
    monkeypatch.setattr(license_module, "gp", _FakeGurobi(errno))
    detect = license_is_size_limited.__wrapped__  # the uncached function
    if errno == 10009:  # no licence at all: Gurobi's own error, not a guess
        with pytest.raises(gp.GurobiError, match="licence says no"):
            detect()
    else:
        assert detect() is (errno == 10010)


@needs_size_limited_licence
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


def test_report_message_names_constraints_alone_when_only_they_are_over():
    report = SizeReport(1500, 2600, 300, 2400, 100, size_limited=True)
    assert not report.fits
    text = report.message()
    assert text.startswith("the model would have 2600 linear constraints (limit 2000), of which")
    assert "1500 variables" not in text and "variables (limit" not in text
    assert text.endswith("cannot solve it.")
