"""Bad input that once gave a raw Python or solver error gets the package's own, named one."""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
import torch

import gurobi_sparse_surrogate as gss
from gurobi_sparse_surrogate import InvalidOptionError, ShapeMismatchError, SurrogateSwap

NET = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
X0 = np.full(4, 0.5)


@pytest.fixture
def embedded(model):
    x = model.addMVar(4, lb=0, ub=1)
    pc = gss.add_sparse_predictor_constr(model, NET, x, bounds="interval")
    model.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
    model.update()
    return model, pc


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x: gss.add_sparse_predictor_constr(m, NET, x, domain=np.ones(4)),
        lambda m, x: gss.find_adversarial(NET, X0, np.ones(4), time_limit=5),
        lambda m, x: gss.maximize_output(NET, np.ones(4), time_limit=5),
        lambda m, x: gss.prune_network(NET, 0.5, method="bound", domain=np.ones(4)),
    ],
    ids=["embedding", "find_adversarial", "maximize_output", "prune_network"],
)
def test_domain_that_is_not_a_domain(model, call):
    x = model.addMVar(4, lb=0, ub=1)
    with pytest.raises(InvalidOptionError, match="domain must be a Box, LinfBall or L1Ball"):
        call(model, x)


def test_three_dimensional_mvar_is_a_shape_mismatch(model):
    x = model.addMVar((2, 2, 4), lb=0, ub=1)
    with pytest.raises(ShapeMismatchError):
        gss.add_sparse_predictor_constr(model, NET, x)


@pytest.mark.parametrize("which", ["params", "dense_params"])
def test_unknown_gurobi_parameter_is_named_and_nothing_changes(embedded, which):
    m, pc = embedded
    before = (m.NumVars, m.NumConstrs, m.Params.MIPGap)
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        with pytest.raises(
            InvalidOptionError, match=r"unknown Gurobi parameter\(s\) \['NoSuchParam'\]"
        ):
            swap.optimize(time_limit=5, **{which: {"NoSuchParam": 3, "MIPGap": 0.5}})
    m.update()
    assert (m.NumVars, m.NumConstrs, m.Params.MIPGap) == before


@pytest.mark.parametrize("bad", [True, False, 0, -1.0, float("nan"), float("inf"), "10"])
def test_time_limits_that_are_not_positive_finite_seconds(embedded, bad):
    m, pc = embedded
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        with pytest.raises(InvalidOptionError, match="time_limit must be a positive, finite"):
            swap.optimize(time_limit=bad)
    with pytest.raises(InvalidOptionError, match="time_limit must be a positive, finite"):
        gss.find_adversarial(NET, X0, gss.LinfBall(X0, 0.1), time_limit=bad)
    with pytest.raises(InvalidOptionError, match="time_limit must be a positive, finite"):
        gss.maximize_output(NET, gss.Box(np.zeros(4), np.ones(4)), time_limit=bad)


@pytest.mark.parametrize("threads", [-3, 1.5, True, "2"])
@pytest.mark.parametrize(
    "call",
    [
        lambda t: gss.find_adversarial(NET, X0, gss.Box(np.zeros(4), np.ones(4)), threads=t),
        lambda t: gss.maximize_output(NET, gss.Box(np.zeros(4), np.ones(4)), threads=t),
    ],
    ids=["find_adversarial", "maximize_output"],
)
def test_bad_thread_count_is_named_before_any_work(call, threads):
    """Once a raw GurobiError from the solver, or accepted when the attack answered first."""
    with pytest.raises(InvalidOptionError, match=r"threads must be an integer >= 0, got"):
        call(threads)


def test_l1_ball_bounds_are_refused_where_the_inputs_are_not_in_the_ball(model):
    """Bounds over an L1 ball hold only inside it: reusing them for inputs that range over the
    ball's bounding box would cut off reachable outputs (a silent wrong model)."""
    ball = gss.L1Ball(X0, 0.3)
    x = model.addMVar(4, lb=ball.lower, ub=ball.upper)
    ball.add_to_model(model, x)
    pc = gss.add_sparse_predictor_constr(model, NET, x, domain=ball, bounds="linear")
    assert pc.bounds.domain is ball
    other = gp.Model()
    other.Params.OutputFlag = 0
    y = other.addMVar(4, lb=ball.lower, ub=ball.upper)  # the box only, not the ball
    with pytest.raises(InvalidOptionError, match=r"computed over L1Ball\(n=4, radius=0.3\)"):
        gss.add_sparse_predictor_constr(other, NET, y, bounds=pc.bounds)
    with pytest.raises(InvalidOptionError, match="smaller than its bounding box"):
        gss.add_sparse_predictor_constr(other, NET, y, bounds=pc.bounds, domain=gss.L1Ball(X0, 0.4))
    # the same ball, or a smaller one, declared: accepted, and the bounds are exact there
    ball.add_to_model(other, y)
    again = gss.add_sparse_predictor_constr(other, NET, y, bounds=pc.bounds, domain=ball)
    assert again.bounds is pc.bounds
    smaller = gss.L1Ball(X0, 0.2)
    assert smaller.within(ball) and not ball.within(smaller)
    assert not gss.Box(ball.lower, ball.upper).within(ball)
    assert gss.Box(X0, X0).within(gss.Box(ball.lower, ball.upper))


def test_dropout_in_training_mode_is_embedded_as_evaluation_with_a_warning(model):
    """A network left in training mode would drop random neurons in torch; the embedding is
    the evaluation-mode network, and says so."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(6, 2)
    )
    net.train()
    x = model.addMVar((1, 4), lb=X0, ub=X0)
    with pytest.warns(UserWarning, match=r"module '2' \(Dropout, p=0.5\) is in training mode"):
        pc = gss.add_sparse_predictor_constr(model, net, x, bounds="interval")
    model.optimize()
    with torch.no_grad():
        expected = net.eval()(torch.as_tensor(X0[None], dtype=torch.float32)).numpy()
    np.testing.assert_allclose(pc.output.X, expected, atol=1e-5)
