"""Results read like gurobipy's: load() into the model, summaries, de-duplicated history."""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
import torch
from conftest import forward64, random_network

from gurobi_sparse_surrogate import (
    LinfBall,
    SurrogateSwap,
    add_sparse_predictor_constr,
    find_adversarial,
    maximize_output,
)
from gurobi_sparse_surrogate.solving import (
    DUPLICATE_TOLERANCE,
    is_duplicate,
    optimize_judging,
)
from gurobi_sparse_surrogate.surrogate.results import SwapResult


def user_model(seed: int = 5):
    net = random_network(seed, 4, (10, 10), 3)
    m = gp.Model(env=gp.Env(params={"OutputFlag": 0, "Threads": 1}))
    x = m.addMVar(4, lb=0, ub=1)
    w = m.addVar(lb=0, ub=2)
    pc = add_sparse_predictor_constr(m, net, x)
    m.addConstr(x.sum() <= 2.5)
    m.setObjective(pc.output[0, 0] + 0.5 * pc.output[0, 2] - 0.3 * w, gp.GRB.MAXIMIZE)
    return net, m, x, w, pc


@pytest.mark.parametrize("fallback", [False, True])
def test_load_puts_the_judged_answer_in_the_users_variables(fallback):
    net, m, x, w, pc = user_model()
    m.update()
    sizes = (m.NumVars, m.NumConstrs)
    x.Start = [0.1, 0.2, 0.3, 0.4]
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=20, fallback=fallback)
        with pytest.raises(RuntimeError, match="leave the with block"):
            result.load()
    with pytest.raises(gp.GurobiError):
        x.X  # noqa: B018  (the restored model holds no solution yet)
    assert result.load() is result
    np.testing.assert_allclose(x.X, result.inputs[0], atol=1e-6)
    np.testing.assert_allclose(x.X, result.value(x), atol=1e-6)
    assert w.X == pytest.approx(result.value(w), abs=1e-6)
    # the outputs are the dense network's, checked by torch, and by the user's handle
    np.testing.assert_allclose(pc.output.X[0], forward64(net, x.X)[0], atol=1e-5)
    assert pc.get_error().max() < 1e-5
    assert m.ObjVal == pytest.approx(result.objective, rel=1e-6, abs=1e-6)
    # the model is as it was: same size, input bounds free again, the user's start kept
    m.update()
    assert (m.NumVars, m.NumConstrs) == sizes
    np.testing.assert_array_equal(x.LB, 0.0)
    np.testing.assert_array_equal(x.UB, 1.0)
    np.testing.assert_allclose(x.Start, [0.1, 0.2, 0.3, 0.4])


def test_load_without_a_solution_says_so():
    _, m, x, _, pc = user_model()
    m.addConstr(x.sum() >= 3.0)  # infeasible with x.sum() <= 2.5
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=20)
    assert result.status == "infeasible"
    with pytest.raises(LookupError, match="no dense-valid solution"):
        result.load()


def test_load_when_the_model_changed_under_the_answer_says_so_and_restores():
    _, m, x, w, pc = user_model()
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=20)
    assert result.inputs is not None
    # a constraint added afterwards that the judged inputs break by 0.5
    m.addConstr(x.sum() >= float(result.inputs.sum()) + 0.5)
    m.Params.TimeLimit = 77.0
    with pytest.raises(RuntimeError, match="no solution with the inputs fixed at the judged"):
        result.load()
    m.update()  # the inputs' bounds and the parameters are back
    np.testing.assert_array_equal(x.LB, 0.0)
    np.testing.assert_array_equal(x.UB, 1.0)
    assert m.Params.TimeLimit == 77.0 and m.Params.SolutionLimit == gp.GRB.MAXINT
    # a result without a solution: the swap's own method says so too
    empty = SwapResult("no_solution", None, None, None, 1.0, 0.0, _swap=swap)
    with pytest.raises(LookupError, match="no dense-valid solution to load"):
        swap.load_solution(empty)


def test_load_into_a_model_without_integer_variables():
    # a network without hidden ReLUs embeds as linear constraints: the dense model is an LP
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    m = gp.Model(env=gp.Env(params={"OutputFlag": 0, "Threads": 1}))
    x = m.addMVar(3, lb=0, ub=1)
    pc = add_sparse_predictor_constr(m, net, x)
    m.setObjective(pc.output[0, 0] - pc.output[0, 1], gp.GRB.MAXIMIZE)
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=20)
    m.update()
    assert not m.IsMIP
    assert result.load() is result
    np.testing.assert_allclose(x.X, result.inputs[0], atol=1e-9)
    dense = forward64(net, x.X)[0]
    np.testing.assert_allclose(pc.output.X[0], dense, atol=1e-6)
    assert m.ObjVal == pytest.approx(dense[0] - dense[1], abs=1e-6)
    assert m.Params.SolutionLimit == gp.GRB.MAXINT


def test_result_values_of_a_list_and_the_refusals():
    net, m, x, w, pc = user_model()
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=20)
    listed = result.value([*x.tolist(), w])
    np.testing.assert_array_equal(listed, [*result.value(x), result.value(w)])
    assert isinstance(listed, np.ndarray) and listed.shape == (5,)
    internal = next(v for v in swap.restored.vars if v not in set(pc.output.tolist()[0]))
    with pytest.raises(LookupError, match="not a variable of the user's model"):
        result.value(internal)
    # a result built by hand has no swap to load it with
    detached = SwapResult(
        "feasible", 1.0, None, None, 1.0, 0.0, inputs=result.inputs, _solution={w: 0.0}
    )
    with pytest.raises(RuntimeError, match="not attached to a SurrogateSwap"):
        detached.load()


def test_swap_result_summary_and_repr_are_short_and_true():
    _, m, _, _, pc = user_model()
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=20)
    text = str(result)
    assert text == result.summary()
    assert text.splitlines()[0] == f"SurrogateSwap result: {result.status}"
    assert f"{result.objective:.6g}" in text
    for phase in result.phases:
        assert phase["name"] in text
    assert len(text.splitlines()) <= 6 + len(result.phases)
    shown = repr(result)
    assert "\n" not in shown and len(shown) < 300
    assert "model_stats" not in shown and "Incumbent" not in shown


def test_history_has_no_copies_of_one_solution():
    # the callback's incumbents come back in the final pool with rounding differences (and
    # -0.0 for 0.0): compared as raw bytes they were counted twice
    _, m, _, _, _ = user_model(7)
    m.Params.PoolSolutions = 50
    m.Params.PoolSearchMode = 2
    offered: list[np.ndarray] = []
    m.update()
    variables = m.getVars()

    def offer(values, objective):
        offered.append(values)
        return True

    optimize_judging(m, variables, offer)
    assert len(offered) >= 2
    for i, a in enumerate(offered):
        for b in offered[:i]:
            assert np.abs(a - b).max() > DUPLICATE_TOLERANCE * (1 + np.abs(a).max())


def test_is_duplicate_uses_a_tolerance():
    a = np.array([0.1, 0.7, 3.0])
    assert is_duplicate(a + 1e-16, [a])
    assert is_duplicate(a * (1 + 1e-12), [np.zeros(3), a])
    assert not is_duplicate(a + 1e-6, [a])
    assert not is_duplicate(a, [])


def test_application_results_print_a_summary():
    net = random_network(6, 4, (8,), 3)
    x0 = np.full(4, 0.5)
    domain = LinfBall(x0, 0.3, lower=0.0, upper=1.0)
    adversarial = find_adversarial(net, x0, domain, attack=False, time_limit=20)
    text = str(adversarial)
    assert text.startswith(f"find_adversarial: {adversarial.status}")
    assert f"label {adversarial.label}" in text
    assert "\n" not in repr(adversarial) and "history" not in repr(adversarial)
    maximum = maximize_output(random_network(7, 3, (8,), 1), LinfBall(np.full(3, 0.5), 0.5))
    text = str(maximum)
    assert text.startswith("maximize_output: optimal" if maximum.optimal else "maximize_output:")
    assert f"{maximum.value:.6g}" in text
    assert "\n" not in repr(maximum)


def test_summary_shows_why_a_phase_was_skipped_in_its_first_clause():
    result = SwapResult(
        "feasible", 1.5, None, 0.25, 2.0, 0.1,
        phases=[{"name": "dense", "seconds": 0.0,
                 "skipped": "model too large for the licence; 2400 variables. Try pruning"}],
    )  # fmt: skip
    (row,) = [line for line in result.summary().splitlines() if "skipped" in line]
    assert row.endswith("skipped: model too large for the licence")
    assert "2400" not in row
