"""SurrogateSwap: swap, judge on the dense network, repair, fall back, restore."""

from __future__ import annotations

import copy

import gurobipy as gp
import numpy as np
import pytest
import torch
from conftest import forward64, needs_size_limited_licence, random_network
from gurobi_ml import add_predictor_constr

from gurobi_sparse_surrogate import StaleEmbeddingError, add_sparse_predictor_constr
from gurobi_sparse_surrogate.network.pruning import prune_network
from gurobi_sparse_surrogate.surrogate.swap import SurrogateSwap

EMBEDDERS = {"gurobi-ml": add_predictor_constr, "sparse": add_sparse_predictor_constr}

#: Two solves of the same problem agree within Gurobi's default relative MIPGap (1e-4).
MIP_GAP = 1e-4
#: A solver's network output at its own input differs from torch by up to IntFeasTol (1e-5)
#: times the big-M of the ReLUs it crosses (below 10 for these small networks on [0, 1]^n).
INT_FEAS = 1e-5 * 10


def quiet_model() -> gp.Model:
    m = gp.Model()
    m.Params.OutputFlag = 0
    m.Params.Threads = 1
    return m


def sizes(m: gp.Model) -> tuple[int, int, int]:
    m.update()
    return m.NumVars, m.NumConstrs, m.NumGenConstrs


def shifted(net: torch.nn.Sequential, output: int, shift: float) -> torch.nn.Sequential:
    """A surrogate that is the dense network with one output shifted (a known, wrong model)."""
    surrogate = copy.deepcopy(net)
    with torch.no_grad():
        surrogate[-1].bias[output] += shift
    return surrogate


def solve(m: gp.Model) -> float:
    m.optimize()
    assert m.Status == gp.GRB.OPTIMAL
    return m.ObjVal


@pytest.mark.parametrize("embed", EMBEDDERS)
def test_restore_leaves_model_and_optimum_as_before(embed):
    net = random_network(3, 5, (12, 12), 2)
    m = quiet_model()
    x = m.addMVar(5, lb=0, ub=1)
    without_network = sizes(m)
    pc = EMBEDDERS[embed](m, net, x)
    y = pc.output  # created by the embedding: must survive the swap
    m.setObjective(y[0, 0] - y[0, 1], gp.GRB.MAXIMIZE)
    before, optimum = sizes(m), solve(m)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with SurrogateSwap(m, pc, surrogate=0.6) as swap:
        assert swap.surrogate_constr is not None
        swap.optimize(time_limit=30)
    assert sizes(m) == before
    assert solve(m) == pytest.approx(optimum, rel=MIP_GAP, abs=1e-6)
    assert pc.get_error().max() < 1e-5  # the user's handle reads the same variables
    assert swap.restored.get_error().max() < 1e-5  # the restored embedding
    assert all(torch.equal(state[k], net.state_dict()[k]) for k in state)
    if embed == "sparse":  # the old handle says it was replaced, instead of acting stale
        assert pc.replaced_by is swap.restored
        with pytest.raises(StaleEmbeddingError, match="replacement"):
            pc.remove()
    # a new swap given the old object swaps its replacement
    assert SurrogateSwap(m, pc, surrogate=0.6).dense_constr is swap.restored
    swap.restored.remove()  # removes what pc removed before the swap, outputs it created included
    assert sizes(m) == without_network


@pytest.mark.parametrize("embed", EMBEDDERS)
@pytest.mark.parametrize("sense", [gp.GRB.MAXIMIZE, gp.GRB.MINIMIZE])
def test_fallback_reaches_the_dense_optimum_and_never_loses(embed, sense):
    net = random_network(5, 4, (10, 10), 3)
    m = quiet_model()
    x = m.addMVar(4, lb=0, ub=1)
    w = m.addVar(lb=0, ub=2)  # a user variable in the objective, beside the outputs
    pc = EMBEDDERS[embed](m, net, x)
    m.addConstr(x.sum() <= 2.5)
    m.setObjective(pc.output[0, 0] + 0.5 * pc.output[0, 2] - 0.3 * w, sense)
    optimum = solve(m)
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=60)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(optimum, rel=MIP_GAP, abs=1e-6)
    sign = 1 if sense == gp.GRB.MAXIMIZE else -1
    surrogate_best = [h.dense_objective for h in result.history if h.phase != "dense" and h.valid]
    if surrogate_best:
        assert sign * result.objective >= sign * max(surrogate_best, key=lambda v: sign * v) - 1e-6
    # the reported solution is the dense network's, and consistent with the objective
    xv = result.value(x)
    dense = forward64(net, xv)[0]
    np.testing.assert_allclose(result.value(pc.output)[0], dense, atol=1e-6)
    assert result.objective == pytest.approx(
        dense[0] + 0.5 * dense[2] - 0.3 * result.value(w), abs=1e-5
    )


def threshold_model(net, surrogate_shift):
    """max y0 - 10 s  s.t.  y1 - s <= t, s >= 0, with t just below y1 at the argmax of y0."""
    probe = quiet_model()
    xp = probe.addMVar(5, lb=0, ub=1)
    pcp = add_sparse_predictor_constr(probe, net, xp)
    probe.setObjective(pcp.output[0, 0], gp.GRB.MAXIMIZE)
    solve(probe)
    threshold = forward64(net, xp.X)[0, 1] - 0.25
    m = quiet_model()
    x = m.addMVar(5, lb=0, ub=1)
    s = m.addVar(lb=0.0, name="slack")
    pc = add_predictor_constr(m, net, x)
    m.addConstr(pc.output[0, 1] - s <= threshold, name="threshold")
    m.setObjective(pc.output[0, 0] - 10 * s, gp.GRB.MAXIMIZE)
    return m, x, s, pc, shifted(net, 1, surrogate_shift), threshold


def test_dense_infeasible_incumbent_is_reported_and_repaired():
    net = random_network(8, 5, (10, 10), 2)
    # The surrogate underestimates y1 by 1, so its optimum keeps s = 0 and breaks the threshold.
    m, x, s, pc, surrogate, threshold = threshold_model(net, -1.0)
    with SurrogateSwap(m, pc, surrogate=surrogate) as swap:
        result = swap.optimize(time_limit=30, fallback=False)
    surrogate_phase = [h for h in result.history if h.phase == "surrogate 0"]
    optimum = max(surrogate_phase, key=lambda h: h.surrogate_objective)
    assert not optimum.feasible  # the surrogate's optimum breaks the threshold: reported
    repaired = [h for h in result.history if h.repaired]
    assert repaired and all(h.valid for h in repaired)
    assert result.status == "feasible"
    # feasible for the dense model: fix the returned inputs and slack in the dense model
    xv, sv = result.value(x), result.value(s)
    assert forward64(net, xv)[0, 1] - sv <= threshold + 1e-6
    x.LB = x.UB = xv
    s.LB = s.UB = sv
    assert solve(m) == pytest.approx(result.objective, rel=MIP_GAP, abs=1e-5)


def test_fallback_after_a_misleading_surrogate_finds_the_dense_optimum():
    net = random_network(8, 5, (10, 10), 2)
    m, x, s, pc, surrogate, _ = threshold_model(net, -1.0)
    optimum = solve(m)
    with SurrogateSwap(m, pc, surrogate=surrogate) as swap:
        result = swap.optimize(time_limit=60)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(optimum, rel=MIP_GAP, abs=1e-6)
    assert [p["name"] for p in result.phases] == ["surrogate 0", "repair", "dense"]


def test_schedule_runs_each_surrogate_then_dense():
    net = random_network(2, 4, (10, 10), 2)
    m = quiet_model()
    x = m.addMVar(4, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    m.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
    with SurrogateSwap(m, pc, surrogate=[0.9, 0.5]) as swap:
        result = swap.optimize(time_limit=60)
    assert [p["name"] for p in result.phases] == ["surrogate 0", "surrogate 1", "dense"]
    assert result.pruning_seconds > 0


def test_validity_predicate_and_stop_at_first_valid():
    net = random_network(6, 4, (10,), 2)  # class 0 wins on about 13% of the box
    samples = forward64(net, np.random.default_rng(0).random((5000, 4)))
    assert (samples[:, 0] > samples[:, 1]).any() and (samples[:, 0] < samples[:, 1]).any()
    m = quiet_model()
    x = m.addMVar(4, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    m.setObjective(pc.output[0, 1] - pc.output[0, 0], gp.GRB.MINIMIZE)

    def valid(inputs, outputs):  # "class 0 wins"
        return bool(outputs[0, 0] > outputs[0, 1])

    with SurrogateSwap(m, pc, surrogate=0.5, valid=valid) as swap:
        result = swap.optimize(time_limit=30, stop_at_first_valid=True)
    dense = forward64(net, result.inputs)[0]
    assert dense[0] > dense[1]
    assert sum(h.valid for h in result.history) == 1
    assert result.status == "feasible"  # a predicate outside the model proves nothing


def test_predicate_never_true_is_no_solution_not_optimal():
    net = random_network(4, 4, (10,), 2)
    m = quiet_model()
    x = m.addMVar(4, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    m.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
    with SurrogateSwap(m, pc, surrogate=0.5, valid=lambda i, o: False) as swap:
        result = swap.optimize(time_limit=30)
    assert result.status == "no_solution" and result.objective is None
    assert result.bound is not None  # the dense model was still solved


def test_general_constraint_on_the_outputs_is_judged_by_repair():
    # z = max(y0, y1): its value cannot be recomputed from the dense outputs, only re-solved
    net = random_network(5, 3, (8,), 2)
    m = quiet_model()
    x = m.addMVar(3, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    z = m.addVar(lb=-gp.GRB.INFINITY)
    m.addGenConstrMax(z, [pc.output[0, 0].item(), pc.output[0, 1].item()])
    m.setObjective(z, gp.GRB.MINIMIZE)
    with SurrogateSwap(m, pc, surrogate=shifted(net, 0, 5.0)) as swap:
        result = swap.optimize(time_limit=30, fallback=False)
    assert not any(h.feasible for h in result.history if h.phase == "surrogate 0")
    dense = forward64(net, result.value(x))[0]
    assert result.value(z) == pytest.approx(max(dense), abs=1e-5)
    assert result.objective == pytest.approx(max(dense), abs=1e-5)


def test_optimize_outside_a_with_block_leaves_the_dense_model_in_place():
    net = random_network(2, 4, (8, 8), 2)
    m = quiet_model()
    x = m.addMVar(4, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    m.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
    before, optimum = sizes(m), solve(m)
    swap = SurrogateSwap(m, pc, surrogate=0.5)
    result = swap.optimize(time_limit=30)
    assert result.objective == pytest.approx(optimum, rel=MIP_GAP, abs=1e-6)
    assert swap.surrogate_constr is None and sizes(m) == before
    assert solve(m) == pytest.approx(optimum, rel=MIP_GAP, abs=1e-6)


@needs_size_limited_licence
def test_dense_fallback_too_large_for_the_licence_keeps_the_surrogate_answer():
    net = random_network(0, 20, (600, 600), 1)
    m = quiet_model()
    x = m.addMVar(20, lb=0, ub=1)
    placeholder = add_sparse_predictor_constr(
        m, net, x, relu_formulation="max", bounds="interval", check_size=False
    )
    m.setObjective(placeholder.output[0, 0], gp.GRB.MAXIMIZE)
    swap = SurrogateSwap(m, placeholder, surrogate=0.99, dense_options={"bounds": "interval"})
    result = swap.optimize(time_limit=30, restore=False)
    assert result.phases[-1]["name"] == "dense" and "licence" in result.phases[-1]["skipped"]
    assert result.objective is not None
    assert result.objective == pytest.approx(forward64(net, result.inputs)[0, 0], abs=1e-6)


def test_two_networks_swap_one_keep_the_other():
    first, second = random_network(1, 3, (8,), 2), random_network(2, 3, (8,), 1)
    m = quiet_model()
    x = m.addMVar(3, lb=0, ub=1)
    pc1 = add_predictor_constr(m, first, x)
    pc2 = add_predictor_constr(m, second, x)
    m.setObjective(pc1.output[0, 0] + pc2.output[0, 0], gp.GRB.MAXIMIZE)
    optimum = solve(m)
    with SurrogateSwap(m, pc1, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=60)
    assert result.objective == pytest.approx(optimum, rel=MIP_GAP, abs=1e-6)
    xv = result.value(x)
    assert result.value(pc2.output)[0, 0] == pytest.approx(
        forward64(second, xv)[0, 0], abs=INT_FEAS
    )
    assert solve(m) == pytest.approx(optimum, rel=MIP_GAP, abs=1e-6)


def test_errors():
    net = random_network(0, 3, (4,), 2)
    m = quiet_model()
    x = m.addMVar(3, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    with pytest.raises(TypeError, match="embedding of a torch nn.Sequential"):
        SurrogateSwap(m, object(), surrogate=0.5)
    with pytest.raises(ValueError, match="maps 3 inputs to 3 outputs"):
        SurrogateSwap(m, pc, surrogate=random_network(0, 3, (4,), 3))
    with pytest.raises(TypeError, match="sparsity in"):
        SurrogateSwap(m, pc, surrogate="dense")
    with pytest.raises(ValueError, match="sparsity"):
        SurrogateSwap(m, pc, surrogate=1.5)
    with SurrogateSwap(m, pc, surrogate=prune_network(net, 0.5)) as swap:
        with pytest.raises(ValueError, match="time_limit"):
            swap.optimize(time_limit=0)


def test_dense_options_rebuild_a_placeholder_as_asked_and_restore_false_leaves_it():
    net = random_network(6, 4, (8, 8), 2)
    m = quiet_model()
    x = m.addMVar(4, lb=0, ub=1)
    placeholder = add_sparse_predictor_constr(
        m, net, x, relu_formulation="max", bounds="interval", check_size=False
    )
    m.setObjective(placeholder.output[0, 0], gp.GRB.MAXIMIZE)
    swap = SurrogateSwap(m, placeholder, surrogate=0.5, dense_options={"bounds": "linear"})
    result = swap.optimize(time_limit=30, restore=False)
    assert [p["name"] for p in result.phases] == ["surrogate 0", "dense"]
    dense = swap.dense_constr  # the rebuilt dense embedding, left in the model
    assert dense.relu_formulation == "bigm" and dense.bounds.method == "linear"
    assert placeholder.relu_formulation == "max"  # the user's object is not rewritten
    assert result.phases[1]["model_stats"]["relu_formulation"] == "bigm"
    assert swap.surrogate_constr is None  # not put back: the model holds the dense embedding
    assert result.status == "optimal"


def test_pruning_time_is_counted_by_the_first_optimize_only():
    net = random_network(2, 4, (10, 10), 2)
    m = quiet_model()
    x = m.addMVar(4, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    m.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        first = swap.optimize(time_limit=30)
        second = swap.optimize(time_limit=30)
    assert first.pruning_seconds == swap.pruning_seconds > 0
    assert second.pruning_seconds == 0.0
    assert first.time_to_first_valid >= first.pruning_seconds
    assert second.objective == pytest.approx(first.objective, rel=MIP_GAP, abs=1e-6)


def model_state(m: gp.Model, x: gp.MVar, y: gp.MVar, w: gp.Var) -> dict:
    """Everything of the user's model that a swap touches, read after an update."""
    m.update()
    user = [*x.tolist(), *y.reshape(-1).tolist(), w]
    return {
        "sizes": (m.NumVars, m.NumConstrs, m.NumGenConstrs, m.NumQConstrs, m.NumSOS),
        "bounds": (m.getAttr("LB", user), m.getAttr("UB", user)),
        "start": m.getAttr("Start", user),
        "params": {
            name: m.getParamInfo(name)[2]
            for name in ("TimeLimit", "MIPFocus", "Presolve", "SolutionNumber")
        },
        "objective": (str(m.getObjective()), m.ModelSense),
    }


@pytest.mark.parametrize("embed", EMBEDDERS)
@pytest.mark.parametrize("outputs", ["created", "given"])
def test_restore_puts_back_every_attribute_the_swap_touches(embed, outputs):
    net = random_network(7, 4, (8, 8), 2)
    m = quiet_model()
    x = m.addMVar(4, lb=0, ub=1, name="x")
    w = m.addVar(lb=-1, ub=3, name="w")
    if outputs == "given":
        y = m.addMVar((1, 2), lb=[[-50.0, -40.0]], ub=[[60.0, 70.0]], name="y")
        pc = EMBEDDERS[embed](m, net, x, y)
    else:
        pc = EMBEDDERS[embed](m, net, x)
        y = pc.output
    m.addConstr(y[0, 0] + w <= 5)
    m.setObjective(y[0, 0] - 2 * y[0, 1] + w, gp.GRB.MAXIMIZE)
    m.Params.MIPFocus = 2
    m.update()
    # the user's own MIP start, on inputs, outputs and another variable
    m.setAttr("Start", [*x.tolist(), w], [0.5, 0.25, 0.0, 1.0, 2.0])
    y[0, 0].Start = 1.5
    before = model_state(m, x, y, w)
    optimum = solve(m)
    if embed == "sparse" and outputs == "created":
        # the embedding created its outputs with the bounds it computed: finite
        assert np.all(np.isfinite(before["bounds"][0][5:7]))
    with SurrogateSwap(m, pc, surrogate=[0.5, 0.7]) as swap:
        inside = model_state(m, x, y, w)
        result = swap.optimize(
            time_limit=30,
            params={"MIPFocus": 1, "SolutionNumber": 0},
            dense_params={"Presolve": 1},
        )
        assert result.status == "optimal"
        assert result.objective == pytest.approx(optimum, rel=1e-4, abs=1e-6)
        # inside the block: the surrogate in place again and the user's model as it was
        assert model_state(m, x, y, w) == inside
    after = model_state(m, x, y, w)
    assert after == before
    assert solve(m) == pytest.approx(optimum, rel=1e-4, abs=1e-6)
    assert pc.get_error().max() < 1e-5


@pytest.mark.parametrize("embed", EMBEDDERS)
def test_nested_swap_on_the_same_embedding_is_refused_and_leaves_the_model(embed):
    from gurobi_sparse_surrogate import NestedSwapError

    net = random_network(8, 4, (8, 8), 2)
    m = quiet_model()
    x = m.addMVar(4, lb=0, ub=1)
    without_network = sizes(m)
    pc = EMBEDDERS[embed](m, net, x)
    m.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
    before = sizes(m)
    with SurrogateSwap(m, pc, surrogate=0.5) as outer:
        inside = sizes(m)
        inner = SurrogateSwap(m, pc, surrogate=0.7)
        with pytest.raises(NestedSwapError, match="already swapped out"):
            with inner:
                pass  # pragma: no cover - refused on entry
        with pytest.raises(NestedSwapError):
            inner.optimize(time_limit=5)
        assert sizes(m) == inside
        outer.optimize(time_limit=10)
    assert sizes(m) == before
    # once the outer block is over, a new one works (on the restored embedding)
    with SurrogateSwap(m, outer.restored, surrogate=0.7) as again:
        pass
    assert sizes(m) == before
    again.restored.remove()
    assert sizes(m) == without_network


def test_infeasible_dense_model_is_reported_infeasible():
    net = random_network(4, 3, (8,), 2)
    m = quiet_model()
    x = m.addMVar(3, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    # far above anything the network outputs on the box (|y| <= sum |W| + |b| per layer)
    m.addConstr(pc.output[0, 0] >= 1e3)
    m.setObjective(pc.output[0, 1], gp.GRB.MAXIMIZE)
    m.Params.DualReductions = 0  # a definite answer: infeasible, not "infeasible or unbounded"
    m.optimize()
    assert m.Status == gp.GRB.INFEASIBLE  # the independent truth: the dense model itself
    m.resetParams()
    m.Params.OutputFlag = 0
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=30)
    assert result.status == "infeasible" and result.objective is None
    assert [p["name"] for p in result.phases] == ["surrogate 0", "dense"]
    with pytest.raises(LookupError, match="no dense-valid solution"):
        result.value(x)


def test_quadratic_constraint_and_objective_on_the_outputs():
    # z >= y0^2 (a quadratic constraint on the outputs), min z + (y1 - 0.3)^2
    net = random_network(9, 3, (8,), 2)
    m = quiet_model()
    x = m.addMVar(3, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    y0, y1 = pc.output[0, 0].item(), pc.output[0, 1].item()
    z = m.addVar(lb=0.0, name="z")
    m.addQConstr(z >= y0 * y0)
    m.setObjective(z + (y1 - 0.3) * (y1 - 0.3), gp.GRB.MINIMIZE)
    optimum = solve(m)
    with SurrogateSwap(m, pc, surrogate=shifted(net, 0, 2.0)) as swap:
        result = swap.optimize(time_limit=60)
    # z cannot be recomputed from the dense outputs: no surrogate incumbent is taken as is
    assert not any(h.feasible for h in result.history if h.phase == "surrogate 0")
    assert result.status == "optimal"
    dense = forward64(net, result.value(x))[0]
    zv = result.value(z)
    assert zv >= dense[0] ** 2 - 1e-5
    # the objective is the user's, evaluated with the dense outputs
    assert result.objective == pytest.approx(zv + (dense[1] - 0.3) ** 2, abs=1e-6)
    assert result.objective == pytest.approx(optimum, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("kind", ["abs", "min", "indicator", "and-elsewhere"])
def test_general_constraints_are_repaired_only_when_they_read_the_outputs(kind):
    net = random_network(5, 3, (8,), 2)
    m = quiet_model()
    x = m.addMVar(3, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    y0, y1 = pc.output[0, 0].item(), pc.output[0, 1].item()
    a = m.addVar(lb=-gp.GRB.INFINITY, name="a")
    b, c, d = (m.addVar(vtype=gp.GRB.BINARY) for _ in range(3))
    if kind == "abs":
        m.addGenConstrAbs(a, y0)  # a = |y0|
    elif kind == "min":
        m.addGenConstrMin(a, [y0, y1])
    elif kind == "indicator":
        m.addGenConstrIndicator(b, True, y1 - a <= -0.5)  # b = 1  =>  y1 <= a - 0.5
        m.addConstr(a == 0)
    else:  # a general constraint the outputs do not enter: judged without a repair
        m.addGenConstrAnd(b, [c, d])
        m.addConstr(a == 0)
    m.setObjective(y0 + y1 - a + 0.1 * b, gp.GRB.MAXIMIZE)
    optimum = solve(m)
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        result = swap.optimize(time_limit=60)
    surrogate_incumbents = [h for h in result.history if h.phase == "surrogate 0"]
    assert surrogate_incumbents
    if kind == "and-elsewhere":
        assert any(h.feasible for h in surrogate_incumbents)
    else:
        assert not any(h.feasible for h in surrogate_incumbents)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(optimum, rel=1e-4, abs=1e-5)
    dense = forward64(net, result.value(x))[0]
    av = result.value(a)
    expected = {"abs": abs(dense[0]), "min": min(dense)}.get(kind, 0.0)
    assert av == pytest.approx(expected, abs=1e-5)
    if kind == "indicator" and result.value(b) > 0.5:
        assert dense[1] <= av - 0.5 + 1e-5


@pytest.mark.parametrize("embed", EMBEDDERS)
@pytest.mark.parametrize("outputs", ["created", "given"])
def test_restored_embedding_is_new_and_removes_exactly_what_the_original_added(embed, outputs):
    net = random_network(9, 4, (8,), 2)
    m = quiet_model()
    x = m.addMVar(4, lb=0, ub=1)
    y = m.addMVar((1, 2), lb=-gp.GRB.INFINITY) if outputs == "given" else None
    without_network = sizes(m)
    pc = EMBEDDERS[embed](m, net, x, y)
    m.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
    optimum = solve(m)
    with SurrogateSwap(m, pc, surrogate=0.5) as swap:
        assert swap.restored is None and swap.dense_constr is pc
        swap.optimize(time_limit=30, fallback=False)
    restored = swap.restored
    assert restored is not None and restored is not pc and swap.dense_constr is restored
    assert "remove" not in vars(pc)  # nothing patched onto the user's object
    assert restored.predictor is net
    assert solve(m) == pytest.approx(optimum, rel=MIP_GAP, abs=1e-6)
    assert restored.get_error().max() < 1e-5
    restored.remove()
    assert sizes(m) == without_network


def test_misspelled_dense_or_embed_options_fail_before_the_swap():
    from gurobi_sparse_surrogate import InvalidOptionError

    net = random_network(2, 3, (6,), 2)
    m = quiet_model()
    x = m.addMVar(3, lb=0, ub=1)
    pc = add_sparse_predictor_constr(m, net, x)
    before = sizes(m)
    with pytest.raises(InvalidOptionError, match=r"'bonds'; did you mean 'bounds'"):
        SurrogateSwap(m, pc, surrogate=0.5, dense_options={"bonds": "interval"})
    with pytest.raises(InvalidOptionError, match=r"unknown embedding option 'relu'\."):
        with SurrogateSwap(m, pc, surrogate=0.5, embed_options={"relu": "max"}):
            pass  # pragma: no cover - refused before entering
    assert sizes(m) == before


def test_a_spent_surrogate_budget_skips_the_rest_of_the_schedule(monkeypatch):
    import time as real_time
    import types

    import gurobi_sparse_surrogate.surrogate.swap as swap_module

    # a clock that jumps 60 s while the first surrogate is solved: more than the surrogates'
    # budget (0.5 x 100 s), less than the time limit, so the dense fallback still runs
    clock = {"offset": 0.0}
    monkeypatch.setattr(
        swap_module,
        "time",
        types.SimpleNamespace(perf_counter=lambda: real_time.perf_counter() + clock["offset"]),
    )
    net = random_network(2, 4, (8, 8), 2)
    m = quiet_model()
    x = m.addMVar(4, lb=0, ub=1)
    pc = add_predictor_constr(m, net, x)
    m.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
    optimum = solve(m)
    swap = SurrogateSwap(m, pc, surrogate=[0.9, 0.5, 0.3])
    install = swap.install_surrogate
    installed = []

    def install_and_spend(index=0):
        installed.append(index)
        constr = install(index)
        if index == 0 and len(installed) == 1:
            clock["offset"] += 60.0
        return constr

    monkeypatch.setattr(swap, "install_surrogate", install_and_spend)
    result = swap.optimize(time_limit=100, surrogate_share=0.5)
    names = [p["name"] for p in result.phases]
    assert "surrogate 1" not in names and "surrogate 2" not in names
    assert names[0] == "surrogate 0" and names[-1] == "dense"
    assert installed == [0]  # no other surrogate was embedded
    assert result.status == "optimal"
    assert result.objective == pytest.approx(optimum, rel=MIP_GAP, abs=1e-6)
