"""What this package relies on in gurobi-ml's public base class (pinned for gurobi-ml 1.7.x).

:class:`~gurobi_sparse_surrogate.SparseSequentialConstr` derives from gurobi-ml's
``AbstractPredictorConstr`` and overrides its hooks ``_build_submodel`` and ``_mip_model``;
:class:`~gurobi_sparse_surrogate.SurrogateSwap` takes gurobi-ml's own embeddings apart and
rebuilds them. This file states the behaviour both depend on, so that a gurobi-ml release that
changes it fails here, by name, rather than somewhere inside a swap. ``pyproject.toml`` accepts
the gurobi-ml versions this file was checked against.
"""

from __future__ import annotations

import gurobi_ml
import gurobipy as gp
import numpy as np
import pytest
import torch
from conftest import random_network
from gurobi_ml import add_predictor_constr
from gurobi_ml.modeling.base_predictor_constr import AbstractPredictorConstr

from gurobi_sparse_surrogate import add_sparse_predictor_constr


def test_installed_version_is_the_range_pinned_in_pyproject():
    major, minor = (int(p) for p in gurobi_ml.__version__.split(".")[:2])
    assert (major, minor) == (1, 7), "re-check this file, then widen the range in pyproject.toml"


class Toy(AbstractPredictorConstr):
    """y = 2 x through one auxiliary variable per entry; records what the base class does."""

    def __init__(self, gp_model, input_vars, output_vars=None, **kwargs):
        self.calls = []
        self._output_shape = 3
        super().__init__(gp_model, input_vars, output_vars, **kwargs)

    def _build_submodel(self, gp_model, *args, **kwargs):
        # what the base class has set when the hook runs
        self.calls.append(("build", self.gp_model is gp_model, self._input, self._output, kwargs))
        if self._output is None:
            self._output = gp_model.addMVar(self._input.shape, lb=-gp.GRB.INFINITY, name="out")
        self._mip_model(**kwargs)
        return self

    def _mip_model(self, **kwargs):
        m = self.gp_model
        aux = m.addMVar(self._input.shape, lb=-gp.GRB.INFINITY, name=self._name_var("aux"))
        m.addConstr(aux == 2 * self._input, name=self._name_var("double"))
        m.addConstr(self._output == aux)
        top = m.addVar(lb=-gp.GRB.INFINITY)
        m.addGenConstrMax(top, aux.reshape(-1).tolist())

    def get_error(self, eps=None):
        return np.abs(self.output_values - 2 * self.input_values)


def sizes(m):
    m.update()
    return m.NumVars, m.NumConstrs, m.NumGenConstrs


@pytest.fixture
def model():
    m = gp.Model(env=gp.Env(params={"OutputFlag": 0}))
    yield m
    m.dispose()


def test_build_hook_runs_once_inside_the_recording_window(model):
    x = model.addMVar((1, 3), lb=0, ub=1)
    model.addConstr(x.sum() <= 2)  # before: not recorded
    before = sizes(model)
    toy = Toy(model, x, name="toy", no_debug=True)
    assert len(toy.calls) == 1
    _, same_model, given_input, given_output, kwargs = toy.calls[0]
    # the hook sees the model and the variables exactly as given, and the extra keywords
    assert same_model and given_input is x and given_output is None
    assert kwargs == {"no_debug": True}
    model.addConstr(toy.output.sum() >= 0)  # after: not recorded
    after = sizes(model)
    assert (len(toy.vars), len(toy.constrs), len(toy.genconstrs)) == (
        after[0] - before[0],
        after[1] - before[1] - 1,
        after[2] - before[2],
    )
    recorded = set(toy.vars)
    assert not recorded & set(x.reshape(-1).tolist())
    assert set(toy.output.reshape(-1).tolist()) <= recorded  # outputs created inside: recorded
    model.update()
    assert all(v.VarName.startswith("toy.") for v in toy.vars)  # names prefixed on close
    assert toy._name == "toy"  # read by print_stats


def test_remove_deletes_exactly_what_was_recorded_then_is_inert(model):
    x = model.addMVar((1, 3), lb=0, ub=1)
    y = model.addMVar((1, 3), lb=-gp.GRB.INFINITY)
    before = sizes(model)
    toy = Toy(model, x, y)
    assert not set(toy.vars) & set(y.reshape(-1).tolist())  # given outputs: not recorded
    toy.remove()
    assert sizes(model) == before
    assert toy.gp_model is None and toy.vars == [] and toy.constrs == [] and toy.genconstrs == []
    toy.remove()  # a second remove does nothing
    assert sizes(model) == before


def test_values_are_read_from_the_variables(model):
    x = model.addMVar((1, 3), lb=0.25, ub=0.25)
    toy = Toy(model, x)
    assert not toy._has_solution
    model.optimize()
    assert toy._has_solution
    np.testing.assert_allclose(toy.input_values, np.full((1, 3), 0.25))
    np.testing.assert_allclose(toy.output_values, np.full((1, 3), 0.5))


def test_gurobi_ml_sequential_records_created_outputs_and_removes_them(model):
    """SurrogateSwap takes gurobi-ml's own embeddings apart on these facts."""
    net = random_network(0, 3, (4,), 2)
    x = model.addMVar(3, lb=0, ub=1)
    empty = sizes(model)
    created = add_predictor_constr(model, net, x)
    assert isinstance(created, AbstractPredictorConstr)
    assert created.predictor is net
    assert set(created.output.reshape(-1).tolist()) <= set(created.vars)
    created.remove()
    assert sizes(model) == empty
    y = model.addMVar((1, 2), lb=-gp.GRB.INFINITY)
    given = add_predictor_constr(model, net, x, y)
    assert not set(y.reshape(-1).tolist()) & set(given.vars)
    given.remove()
    assert sizes(model) == (empty[0] + 2, *empty[1:])


def test_sparse_embedding_keeps_the_contract(model):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    x = model.addMVar(3, lb=-1, ub=1)
    empty = sizes(model)
    pc = add_sparse_predictor_constr(model, net, x, name="net")
    after = sizes(model)
    assert (len(pc.vars), len(pc.constrs), len(pc.genconstrs)) == tuple(
        a - b for a, b in zip(after, empty, strict=True)
    )
    assert set(pc.output.reshape(-1).tolist()) <= set(pc.vars)
    model.update()
    assert all(v.VarName.startswith("net.") for v in pc.vars)
    pc.remove()
    assert sizes(model) == empty
