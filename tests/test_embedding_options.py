"""Embedding options: declared once, validated at the boundary, and the rebuild contract."""

from __future__ import annotations

import dataclasses

import gurobipy as gp
import numpy as np
import pytest
from conftest import forward64, random_network

from gurobi_sparse_surrogate import (
    EmbeddingOptions,
    InvalidOptionError,
    LinfBall,
    StaleEmbeddingError,
    add_sparse_predictor_constr,
)


@pytest.fixture
def model():
    m = gp.Model(env=gp.Env(params={"OutputFlag": 0, "Threads": 1}))
    yield m
    m.dispose()


def sizes(m: gp.Model) -> tuple[int, int, int]:
    m.update()
    return m.NumVars, m.NumConstrs, m.NumGenConstrs


def test_misspelled_keyword_names_it_and_the_valid_ones(model):
    net = random_network(0, 3, (4,), 2)
    x = model.addMVar(3, lb=0, ub=1)
    before = sizes(model)
    with pytest.raises(
        InvalidOptionError, match=r"'relu_formulaton'; did you mean 'relu_formulation'"
    ):
        add_sparse_predictor_constr(model, net, x, relu_formulaton="max")
    with pytest.raises(TypeError, match="bound_option"):  # also a TypeError, like Python's
        add_sparse_predictor_constr(model, net, x, bound_option={"time_budget": 1})
    assert sizes(model) == before  # nothing was added
    # gurobi-ml's own keywords still pass
    pc = add_sparse_predictor_constr(model, net, x, name="net")
    model.update()
    assert all(v.VarName.startswith("net.") for v in pc.vars)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"relu_formulation": "indicatr"}, "unknown relu_formulation 'indicatr'"),
        ({"relu_formulation": None}, "unknown relu_formulation None"),
        ({"bounds": "lienar"}, "unknown bounding method 'lienar'"),
        ({"bounds": 3}, "bounds must be"),
        ({"domain": np.zeros(3)}, "domain must be"),
        ({"check_size": "no"}, "check_size must be"),
        ({"bound_options": 1.0}, "bound_options must be a mapping"),
    ],
)
def test_bad_values_are_named(model, changes, match):
    net = random_network(0, 3, (4,), 2)
    x = model.addMVar(3, lb=0, ub=1)
    with pytest.raises(InvalidOptionError, match=match):
        add_sparse_predictor_constr(model, net, x, **changes)
    with pytest.raises(InvalidOptionError, match=match):
        EmbeddingOptions().replace(**changes)


def test_options_are_frozen_with_defaults_declared_once(model):
    options = EmbeddingOptions()
    assert options.as_dict() == {
        "relu_formulation": "bigm",
        "bounds": "auto",
        "domain": None,
        "check_size": True,
        "bound_options": None,
        "bound_cache": True,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.bounds = "interval"  # type: ignore[misc]
    given = {"time_budget": 1.0}
    frozen = EmbeddingOptions(bound_options=given)
    given["time_budget"] = 99.0  # the caller's dict is copied
    assert frozen.bound_options["time_budget"] == 1.0
    with pytest.raises(TypeError):
        frozen.bound_options["time_budget"] = 2.0  # type: ignore[index]
    with pytest.raises(InvalidOptionError, match="unknown embedding option"):
        options.replace(relu="max")


def test_options_property_and_options_argument(model):
    net = random_network(1, 3, (5,), 2)
    x = model.addMVar(3, lb=0, ub=1)
    domain = LinfBall(np.full(3, 0.5), 0.2)
    pc = add_sparse_predictor_constr(
        model, net, x, relu_formulation="max", bounds="interval", domain=domain
    )
    assert pc.options == EmbeddingOptions("max", "interval", domain)
    # the options of one embedding, passed whole, with a keyword overriding one of them
    y = model.addMVar((1, 2), lb=-gp.GRB.INFINITY)
    other = add_sparse_predictor_constr(model, net, x, y, options=pc.options, check_size=False)
    assert other.options == pc.options.replace(check_size=False)
    with pytest.raises(InvalidOptionError, match="relu_formulaton"):
        add_sparse_predictor_constr(model, net, x, options={"relu_formulaton": "max"})


@pytest.mark.parametrize("formulation", ["bigm", "max", "indicator"])
def test_rebuild_gives_equal_outputs_with_the_same_options(model, formulation):
    net = random_network(2, 4, (6, 6), 3)
    x = model.addMVar(4, lb=0, ub=1)
    pc = add_sparse_predictor_constr(model, net, x, relu_formulation=formulation)
    model.setObjective(pc.output[0, 0] - pc.output[0, 2], gp.GRB.MAXIMIZE)
    model.optimize()
    optimum = model.ObjVal
    without = sizes(model)
    pc.remove(keep_outputs=True)
    rebuilt = pc.rebuild()
    assert rebuilt is not pc and pc.replaced_by is rebuilt
    assert rebuilt.options == pc.options
    assert sizes(model) == without  # the same size again, on the same output variables
    model.optimize()
    assert model.ObjVal == pytest.approx(optimum, abs=1e-6)
    np.testing.assert_allclose(
        rebuilt.output_values, forward64(net, rebuilt.input_values), atol=1e-5
    )
    # the old object still reads its variables; what would change the model fails clearly
    assert pc.get_error().max() < 1e-5
    with pytest.raises(StaleEmbeddingError, match="replacement"):
        pc.remove()


def test_rebuilt_embedding_removes_exactly_what_the_original_added(model):
    net = random_network(3, 3, (5,), 2)
    x = model.addMVar(3, lb=0, ub=1)
    model.addConstr(x.sum() <= 2)
    empty = sizes(model)
    pc = add_sparse_predictor_constr(model, net, x)
    pc.remove(keep_outputs=True)
    assert sizes(model)[0] == empty[0] + 2  # only the outputs are left
    rebuilt = pc.rebuild(bounds="interval")
    assert rebuilt.outputs_created and not pc.outputs_created
    rebuilt.remove()
    assert sizes(model) == empty


def test_rebuild_with_given_outputs_leaves_them(model):
    net = random_network(3, 3, (5,), 2)
    x = model.addMVar(3, lb=0, ub=1)
    y = model.addMVar(2, lb=-gp.GRB.INFINITY)
    empty = sizes(model)
    pc = add_sparse_predictor_constr(model, net, x, y)
    assert not pc.outputs_created
    pc.remove()
    assert sizes(model) == empty  # user's outputs stay
    rebuilt = pc.rebuild(relu_formulation="max")
    assert pc.replaced_by is rebuilt and not rebuilt.outputs_created  # y stays the user's
    rebuilt.remove()
    assert sizes(model) == empty


def test_rebuild_in_another_model_and_of_another_network(model):
    net = random_network(4, 3, (5,), 2)
    x = model.addMVar(3, lb=0, ub=1)
    pc = add_sparse_predictor_constr(model, net, x, bounds="interval")
    other = gp.Model(env=model.getEnv() if hasattr(model, "getEnv") else None)
    with pytest.raises(InvalidOptionError, match="input_vars"):
        pc.rebuild(other)
    x2 = other.addMVar(3, lb=0, ub=1)
    copy = pc.rebuild(other, input_vars=x2)
    assert copy.gp_model is other and copy.options == pc.options
    second = random_network(5, 3, (7,), 2)
    y2 = model.addMVar(2, lb=-gp.GRB.INFINITY)
    swapped = pc.rebuild(predictor=second, output_vars=y2)
    assert swapped.predictor is second and swapped.output.shape == (1, 2)
    with pytest.raises(InvalidOptionError, match="relu_formulaton"):
        pc.rebuild(relu_formulaton="max")
    other.dispose()


def test_input_and_output_variables_are_read_by_the_package(model):
    net = random_network(6, 3, (4,), 2)
    xs = [model.addVar(lb=0, ub=1) for _ in range(3)]
    pc = add_sparse_predictor_constr(model, net, xs)  # list of Var
    assert pc.input.shape == (1, 3) and pc.output.shape == (1, 2)
    batch = model.addMVar((2, 3), lb=0, ub=1)
    ys = model.addMVar(4, lb=-gp.GRB.INFINITY)  # (k * n_out,) reshaped
    pc2 = add_sparse_predictor_constr(model, net, batch, ys)
    assert pc2.output.shape == (2, 2)
    model.setObjective(pc2.output.sum(), gp.GRB.MAXIMIZE)
    model.optimize()
    assert pc2.get_error().max() < 1e-5
    from gurobi_sparse_surrogate import ShapeMismatchError

    with pytest.raises(ShapeMismatchError, match=r"shape \(1, 1, 3\)"):
        add_sparse_predictor_constr(model, net, model.addMVar((1, 1, 3)))
    with pytest.raises(ShapeMismatchError, match=r"shape \(2, 2\)"):
        add_sparse_predictor_constr(model, net, batch, model.addMVar(3))
    with pytest.raises(TypeError, match="input_vars must be"):
        add_sparse_predictor_constr(model, net, [1.0, 2.0, 3.0])


def test_bound_cache_and_options_of_the_wrong_type_are_refused_by_name():
    from gurobi_sparse_surrogate import InvalidOptionError
    from gurobi_sparse_surrogate.formulation.options import EmbeddingOptions, split_options

    with pytest.raises(InvalidOptionError, match="bound_cache must be True, False or a Bounds"):
        EmbeddingOptions(bound_cache="yes")
    with pytest.raises(InvalidOptionError, match="options must be an EmbeddingOptions or a "):
        split_options(["relu_formulation", "max"], {})
    options, gurobi_ml = split_options({"relu_formulation": "max"}, {"bounds": "interval"})
    assert (options.relu_formulation, options.bounds, gurobi_ml) == ("max", "interval", {})
