"""SurrogateSwap's less travelled paths: refused options, Ctrl-C at each stage, repairs that
find nothing or meet the same inputs twice, output bounds the dense network breaks, a start
the dense model cannot complete, and what a rebuilt gurobi-ml embedding owns."""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
import torch
from conftest import forward64, random_network
from gurobi_ml import add_predictor_constr
from test_surrogate import shifted, sizes

import gurobi_sparse_surrogate.surrogate.swap as swap_module
from gurobi_sparse_surrogate import Box, UnboundedInputError
from gurobi_sparse_surrogate.network.pruning import prune_network
from gurobi_sparse_surrogate.surrogate.swap import SurrogateSwap

GRB = gp.GRB


class InterruptingModel(gp.Model):
    """A model whose solve number ``interrupt_solve`` (1-based) ends as on Ctrl-C.

    Gurobi answers Ctrl-C by ending the solve with status ``INTERRUPTED``, as it does when a
    callback calls ``terminate()``: this model does the latter, at the first callback of that
    solve, and counts every ``optimize()`` (the swap's solves, repairs and MIP starts alike).
    """

    def __init__(self, interrupt_solve: int) -> None:
        super().__init__()
        self._interrupt_solve = interrupt_solve
        self._solves = 0

    def optimize(self, callback=None):
        self._solves += 1
        if self._solves != self._interrupt_solve:
            return super().optimize(callback)

        def interrupting(model, where):
            model.terminate()
            if callback is not None:
                callback(model, where)

        return super().optimize(interrupting)


def quiet(m: gp.Model) -> gp.Model:
    m.Params.OutputFlag = 0
    m.Params.Threads = 1
    return m


def names(result) -> list[str]:
    return [p["name"] for p in result.phases]


# -- refused options ---------------------------------------------------------------------------


def test_empty_schedule_and_a_share_outside_0_1_are_refused_before_anything_changes():
    net = random_network(0, 3, (4,), 2)
    m = quiet(gp.Model())
    x = m.addMVar(3, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    before = sizes(m)
    with pytest.raises(ValueError, match="surrogate schedule is empty"):
        SurrogateSwap(m, pc, surrogate=[])
    swap = SurrogateSwap(m, pc, surrogate=0.5)
    for share in (0, -0.5, 1.5):
        with pytest.raises(ValueError, match=rf"surrogate_share must be in \(0, 1\], got {share}"):
            swap.optimize(time_limit=5, surrogate_share=share)
    assert sizes(m) == before and swap.surrogate_constr is None and swap.restored is None


def test_instance_aware_pruning_scores_over_the_domain_given_for_the_surrogates():
    net = random_network(4, 3, (8,), 2)
    m = quiet(gp.Model())
    x = m.addMVar(3, lb=-GRB.INFINITY, ub=GRB.INFINITY)  # the domain is the only bound
    pc = add_predictor_constr(m, net, x)
    with pytest.raises(UnboundedInputError, match="infinite bounds"):
        SurrogateSwap(m, pc, surrogate=0.5, prune_options={"method": "activation"})
    box = Box(np.zeros(3), np.full(3, 0.5))
    swap = SurrogateSwap(
        m, pc, surrogate=0.5, prune_options={"method": "activation"}, embed_options={"domain": box}
    )
    expected = prune_network(net, 0.5, method="activation", domain=box)
    got = swap.surrogates[0].state_dict()
    assert got.keys() == expected.state_dict().keys()
    for key, value in expected.state_dict().items():
        assert torch.equal(got[key], value), key
    # and not the same as scoring over another box: the domain was used
    other = prune_network(net, 0.5, method="activation", domain=Box(np.full(3, 0.5), np.ones(3)))
    assert any(not torch.equal(got[k], v) for k, v in other.state_dict().items())


# -- the schedule, stopping early ---------------------------------------------------------------


def test_stop_at_first_valid_without_a_time_limit_skips_the_rest_of_the_schedule():
    net = random_network(2, 4, (8, 8), 2)
    m = quiet(gp.Model())
    x = m.addMVar(4, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    m.setObjective(pc.output[0, 0], GRB.MAXIMIZE)
    with SurrogateSwap(m, pc, surrogate=[0.5, 0.7]) as swap:
        result = swap.optimize(time_limit=None, stop_at_first_valid=True)
    # no constraint reads the outputs: the surrogate's first incumbent is valid, and ends it all
    assert names(result) == ["surrogate 0"]
    assert [h.valid for h in result.history] == [True]
    assert result.status == "feasible"
    assert result.objective == pytest.approx(forward64(net, result.inputs)[0, 0], abs=1e-9)


# -- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_while_embedding_the_next_surrogate_keeps_what_was_found_and_restores(monkeypatch):
    net = random_network(3, 4, (8, 8), 2)
    m = quiet(gp.Model())
    x = m.addMVar(4, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    m.setObjective(pc.output[0, 0] - pc.output[0, 1], GRB.MAXIMIZE)
    m.Params.TimeLimit = 123.0
    with SurrogateSwap(m, pc, surrogate=[0.5, 0.7]) as swap:
        inside = sizes(m)
        install = swap.install_surrogate

        def install_or_interrupt(index=0):
            if index == 1:
                raise KeyboardInterrupt  # Ctrl-C while the second surrogate is bounded
            return install(index)

        monkeypatch.setattr(swap, "install_surrogate", install_or_interrupt)
        result = swap.optimize(time_limit=60)
        monkeypatch.undo()
        assert sizes(m) == inside and swap.surrogate_constr is not None
    assert result.interrupted
    assert names(result) == ["surrogate 0"]  # neither the second surrogate nor the dense model
    assert result.status == "feasible"  # what the first surrogate found, judged on the dense net
    dense = forward64(net, result.inputs)[0]
    assert result.objective == pytest.approx(dense[0] - dense[1], abs=1e-9)
    assert result.pruning_seconds == swap.pruning_seconds > 0
    assert m.Params.TimeLimit == 123.0


def test_ctrl_c_in_the_surrogate_solve_ends_the_call():
    net = random_network(3, 4, (8, 8), 2)
    m = quiet(InterruptingModel(interrupt_solve=1))
    x = m.addMVar(4, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    m.setObjective(pc.output[0, 0], GRB.MAXIMIZE)
    before = sizes(m)
    with SurrogateSwap(m, pc, surrogate=[0.5, 0.7]) as swap:
        result = swap.optimize(time_limit=60)
    assert result.interrupted
    assert names(result) == ["surrogate 0"]
    assert result.phases[0]["gurobi_status"] == GRB.INTERRUPTED
    assert m._solves == 1  # no repair, no second surrogate, no dense solve
    assert sizes(m) == before


def threshold_at(net, x0, margin):
    """The dense network's y1 at ``x0`` minus ``margin``: a threshold the dense output breaks."""
    return forward64(net, x0)[0, 1] - margin


def test_ctrl_c_in_a_repair_stops_the_repairs_and_the_fallback_and_restores_the_bounds():
    net = random_network(8, 5, (10, 10), 2)
    m = quiet(InterruptingModel(interrupt_solve=2))  # 1: the surrogate, 2: the first repair
    x = m.addMVar(5, lb=0, ub=1)
    s = m.addVar(lb=0.0)
    pc = add_predictor_constr(m, net, x)
    # the surrogate underestimates y1 by 1: its incumbents keep s = 0 and break the threshold
    m.addConstr(pc.output[0, 1] - s <= threshold_at(net, np.full(5, 0.5), 0.25))
    m.setObjective(pc.output[0, 0] - 10 * s, GRB.MAXIMIZE)
    with SurrogateSwap(m, pc, surrogate=shifted(net, 1, -1.0)) as swap:
        result = swap.optimize(time_limit=60, max_repairs=3)
    assert result.interrupted
    assert names(result) == ["surrogate 0", "repair"]  # no dense fallback after Ctrl-C
    assert result.phases[1]["incumbents"] == 1  # the repairs stop at the interrupted one
    assert m._solves == 2
    m.update()
    assert np.array_equal(x.LB, np.zeros(5)) and np.array_equal(x.UB, np.ones(5))


def test_ctrl_c_while_completing_the_dense_start_keeps_the_surrogate_answer():
    net = random_network(3, 4, (8, 8), 2)
    m = quiet(InterruptingModel(interrupt_solve=2))  # 1: the surrogate, 2: the complete start
    x = m.addMVar(4, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    m.setObjective(pc.output[0, 0], GRB.MAXIMIZE)
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=60)
    assert result.interrupted
    assert names(result) == ["surrogate 0"]  # the dense solve never started
    assert result.status == "feasible" and result.bound is None
    assert result.objective == pytest.approx(forward64(net, result.inputs)[0, 0], abs=1e-9)
    assert m._solves == 2
    m.update()
    assert np.array_equal(x.LB, np.zeros(4)) and np.array_equal(x.UB, np.ones(4))


# -- repairs ------------------------------------------------------------------------------------


def test_a_repair_solves_each_distinct_input_once():
    net = random_network(8, 5, (10, 10), 2)
    x0 = np.full(5, 0.5)
    dense = forward64(net, x0)[0]
    m = quiet(gp.Model())
    x = m.addMVar(5, lb=x0, ub=x0)  # every incumbent has the same inputs
    s = m.addVar(lb=0.0)
    k = m.addVar(vtype=GRB.INTEGER, lb=0, ub=4)  # ... and its own k
    pc = add_predictor_constr(m, net, x)
    threshold = threshold_at(net, x0, 0.25)
    m.addConstr(pc.output[0, 1] - s <= threshold)
    m.setObjective(pc.output[0, 0] - 10 * s + 0.01 * k, GRB.MAXIMIZE)
    with SurrogateSwap(m, pc, surrogate=shifted(net, 1, -1.0)) as swap:
        result = swap.optimize(
            time_limit=60,
            fallback=False,
            max_repairs=3,
            params={"PoolSearchMode": 2, "PoolSolutions": 5},
        )
    broken = [h for h in result.history if h.phase == "surrogate 0" and not h.feasible]
    assert len(broken) >= 2  # several incumbents to repair, all at x0
    assert result.phases[-1] == {**result.phases[-1], "name": "repair", "incumbents": 1}
    assert [h.valid for h in result.history if h.repaired] == [True]
    # the repair's answer: s makes up the dense y1's excess, k at its best
    assert result.value(s) == pytest.approx(dense[1] - threshold, abs=1e-6)
    assert result.objective == pytest.approx(dense[0] - 10 * 0.25 + 0.04, abs=1e-5)


def test_a_repair_that_the_dense_outputs_make_infeasible_records_nothing():
    net = random_network(8, 5, (10, 10), 2)
    x0 = np.full(5, 0.5)
    m = quiet(gp.Model())
    x = m.addMVar(5, lb=x0, ub=x0)
    pc = add_predictor_constr(m, net, x)
    # the dense y1 at x0 breaks this by 0.5; the surrogate's (1 lower) keeps it
    m.addConstr(pc.output[0, 1] <= threshold_at(net, x0, 0.5))
    m.setObjective(pc.output[0, 0], GRB.MAXIMIZE)
    with SurrogateSwap(m, pc, surrogate=shifted(net, 1, -1.0)) as swap:
        result = swap.optimize(time_limit=60)
    assert names(result) == ["surrogate 0", "repair", "dense"]
    assert result.phases[1]["incumbents"] == 1 and result.phases[1]["valid"] == 0
    assert not any(h.repaired for h in result.history)
    assert not any(h.feasible for h in result.history)
    assert result.status == "infeasible" and result.objective is None


def test_dense_outputs_outside_the_output_variables_bounds_are_infeasible_even_repaired():
    net = random_network(8, 5, (10, 10), 2)
    x0 = np.full(5, 0.5)
    m = quiet(gp.Model())
    x = m.addMVar(5, lb=x0, ub=x0)
    # the user's own bound on y1: the dense y1 at x0 is 0.5 above it, the surrogate's below
    y = m.addMVar((1, 2), lb=-100.0, ub=[[100.0, threshold_at(net, x0, 0.5)]])
    pc = add_predictor_constr(m, net, x, y)
    m.setObjective(y[0, 0], GRB.MAXIMIZE)
    with SurrogateSwap(m, pc, surrogate=shifted(net, 1, -1.0)) as swap:
        result = swap.optimize(time_limit=60)
    surrogate_phase = [h for h in result.history if h.phase == "surrogate 0"]
    assert surrogate_phase and not any(h.feasible for h in surrogate_phase)
    # the repair fixes y at the dense outputs (its solve succeeds), the judge still refuses them
    repaired = [h for h in result.history if h.repaired]
    assert repaired and not any(h.feasible or h.valid for h in repaired)
    assert result.status == "infeasible" and result.objective is None
    m.update()  # the user's bounds are back
    np.testing.assert_array_equal(y.UB, [[100.0, threshold_at(net, x0, 0.5)]])


# -- the dense phase's MIP start ----------------------------------------------------------------


@pytest.mark.parametrize("hint", ["completable", "infeasible"])
def test_dense_start_is_complete_when_the_hint_can_be_completed_else_partial(monkeypatch, hint):
    net = random_network(5, 4, (8, 8), 2)
    m = quiet(gp.Model())
    x = m.addMVar(4, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    m.addConstr(x.sum() <= 2.5)
    m.setObjective(pc.output[0, 0], GRB.MAXIMIZE)
    # sum 2 keeps x.sum() <= 2.5; sum 4 breaks it, so no dense solution has these inputs
    initial = np.full(4, 0.5) if hint == "completable" else np.ones(4)
    starts = []
    real = swap_module.optimize_judging

    def spy(model, variables, offer, stop_when_offered=False):
        model.update()
        starts.append((np.array(x.Start), np.array(pc.output.Start)))
        return real(model, variables, offer, stop_when_offered)

    monkeypatch.setattr(swap_module, "optimize_judging", spy)
    # no solution counts as valid: the hint is the only start the dense phase can have
    with SurrogateSwap(m, pc, surrogate=0.5, valid=lambda inputs, outputs: False) as swap:
        result = swap.optimize(time_limit=60, initial_inputs=initial)
    assert names(result) == ["surrogate 0", "dense"]
    assert result.status == "no_solution"
    x_start, y_start = starts[-1]  # the dense phase's
    np.testing.assert_array_equal(x_start, initial)
    if hint == "completable":  # the dense network's outputs at the hint: a complete start
        np.testing.assert_allclose(y_start, forward64(net, initial), atol=1e-5)
    else:  # the inputs only, as a partial start
        assert np.all(y_start == GRB.UNDEFINED)
    m.update()  # the user had no start: none is left behind
    assert np.all(np.array(x.Start) == GRB.UNDEFINED)


# -- the rebuilt gurobi-ml embedding -------------------------------------------------------------


def test_rebuilt_gurobi_ml_embedding_takes_the_dense_options_and_removes_once():
    net = random_network(3, 4, (6,), 2)
    m = quiet(gp.Model())
    x = m.addMVar(4, lb=0, ub=1)
    without_network = sizes(m)
    pc = add_predictor_constr(m, net, x)  # creates the output variables
    m.setObjective(pc.output[0, 0], GRB.MAXIMIZE)
    m.optimize()
    optimum = m.ObjVal
    with SurrogateSwap(m, pc, surrogate=0.5, dense_options={"name": "rebuilt"}) as swap:
        pass
    restored = swap.restored
    m.update()
    internal = [v.VarName for v in restored.constr.vars]
    assert internal and all(name.startswith("rebuilt.") for name in internal)
    assert set(restored.vars) >= set(pc.output.reshape(-1).tolist())  # it owns the outputs
    m.optimize()
    assert m.ObjVal == pytest.approx(optimum, rel=1e-4, abs=1e-6)
    restored.remove()
    assert sizes(m) == without_network
    restored.remove()  # a second remove() has nothing left to remove, as gurobi-ml's
    assert sizes(m) == without_network


def test_a_general_constraint_of_a_type_the_judge_cannot_read_sends_incumbents_to_repair():
    # z = |y0| as a piecewise-linear constraint: its variables are not read by the judge, so
    # it counts as reading the outputs (z cannot be recomputed from the dense outputs)
    net = random_network(5, 3, (8,), 2)
    m = quiet(gp.Model())
    x = m.addMVar(3, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    y0 = pc.output[0, 0].item()
    z = m.addVar(lb=-GRB.INFINITY)
    m.addGenConstrPWL(y0, z, [-100.0, 0.0, 100.0], [100.0, 0.0, 100.0])
    m.setObjective(z + pc.output[0, 1], GRB.MINIMIZE)
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=60, fallback=False)
    surrogate_phase = [h for h in result.history if h.phase == "surrogate 0"]
    assert surrogate_phase and not any(h.feasible for h in surrogate_phase)
    assert any(h.repaired and h.valid for h in result.history)
    dense = forward64(net, result.value(x))[0]
    assert result.value(z) == pytest.approx(abs(dense[0]), abs=1e-5)
    assert result.objective == pytest.approx(abs(dense[0]) + dense[1], abs=1e-5)
