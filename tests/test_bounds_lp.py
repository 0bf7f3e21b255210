"""LP / MILP / auto bounds: soundness, ordering of the methods, exactness, licence fallback."""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import random_network
from gurobipy import GRB
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bounds_linear import (
    box_points,
    check_method_on_box,
    check_method_on_domain,
    network_strategy,
    widths,
)

from gurobi_sparse_surrogate.bounds.lp import cones_of_influence, safe_lagrangian_bound
from gurobi_sparse_surrogate.bounds.problem import BoundingProblem, compute_bounds
from gurobi_sparse_surrogate.domains import L1Ball
from gurobi_sparse_surrogate.network.extraction import extract_layers, layers_forward

ORDER = ["interval", "linear", "lp", "milp"]


@settings(max_examples=15, deadline=None)
@given(**network_strategy)
def test_methods_sound_and_each_at_least_as_tight_as_the_previous(
    seed, n_in, hidden, density, masks
):
    results = {}
    for method in ORDER + ["auto"]:
        layers, lower, upper, results[method] = check_method_on_box(
            method, seed, n_in, hidden, density, masks, n_points=300
        )
    for weaker, stronger in zip(ORDER[:-1], ORDER[1:], strict=True):
        for w_weak, w_strong in zip(
            widths(results[weaker]), widths(results[stronger]), strict=True
        ):
            assert np.all(w_strong <= w_weak + 1e-12), (weaker, stronger)
    for w_lin, w_auto in zip(widths(results["linear"]), widths(results["auto"]), strict=True):
        assert np.all(w_auto <= w_lin + 1e-12)


@settings(max_examples=10, deadline=None)
@given(
    kind=st.sampled_from(["linf", "l1"]),
    method=st.sampled_from(["lp", "milp", "auto"]),
    **network_strategy,
)
def test_methods_sound_on_balls(kind, method, seed, n_in, hidden, density, masks):
    check_method_on_domain(method, kind, seed, n_in, hidden, density, masks)


def true_extremes(layers, lower, upper, index, domain=None):
    """Exact min and max of each neuron of layer ``index`` by a plain Gurobi MILP.

    Independent of the package: every ReLU is Gurobi's max general constraint, no bounds
    of ours are used.
    """
    with gp.Env(params={"OutputFlag": 0, "Threads": 1}) as env, gp.Model(env=env) as m:
        m.Params.MIPGap = 0
        m.Params.MIPGapAbs = 1e-9
        m.Params.FeasibilityTol = 1e-9
        m.Params.IntFeasTol = 1e-9
        h = m.addMVar(layers[0].n_in, lb=lower, ub=upper)
        if domain is not None:
            d = m.addMVar(layers[0].n_in)
            m.addConstr(d >= h - domain.center)
            m.addConstr(d >= domain.center - h)
            m.addConstr(d.sum() <= domain.radius)
        for j in range(index + 1):
            layer = layers[j]
            z = m.addMVar(layer.n_out, lb=-GRB.INFINITY)
            m.addConstr(z == layer.weight.toarray() @ h + layer.bias)
            if j < index:
                out = m.addMVar(layer.n_out)
                for k in range(layer.n_out):
                    m.addGenConstrMax(out[k].item(), [z[k].item()], constant=0.0)
                h = out
        lo, hi = [], []
        for k in range(layers[index].n_out):
            for sense, store in ((GRB.MINIMIZE, lo), (GRB.MAXIMIZE, hi)):
                m.setObjective(z[k], sense)
                m.optimize()
                assert m.Status == GRB.OPTIMAL
                store.append(m.ObjVal)
    return np.array(lo), np.array(hi)


@pytest.mark.parametrize("domain_kind", [None, "l1"])
def test_milp_bounds_are_the_true_extremes_and_lp_contains_them(domain_kind):
    layers = extract_layers(random_network(21, 3, (6, 6, 6), 2, density=0.8))
    lower, upper = np.zeros(3), np.ones(3)
    domain = L1Ball(np.full(3, 0.5), 0.6) if domain_kind else None
    lp = compute_bounds(layers, lower, upper, "lp", domain, skip_decided=False)
    milp = compute_bounds(layers, lower, upper, "milp", domain, skip_decided=False)
    checked = 0
    for index in (1, 2):
        t_lo, t_hi = true_extremes(layers, lower, upper, index, domain)
        assert np.all(lp.lower[index][0] <= t_lo + 1e-7) and np.all(
            lp.upper[index][0] >= t_hi - 1e-7
        )
        assert np.all(milp.lower[index][0] <= t_lo + 1e-7)
        assert np.all(milp.upper[index][0] >= t_hi - 1e-7)
        # Neurons the MILP stage had to decide (unstable after LP) get the exact extremes.
        solved = (lp.lower[index][0] < 0) & (lp.upper[index][0] > 0)
        np.testing.assert_allclose(milp.lower[index][0][solved], t_lo[solved], atol=1e-5)
        np.testing.assert_allclose(milp.upper[index][0][solved], t_hi[solved], atol=1e-5)
        checked += int(solved.sum())
    assert checked > 0


def test_lp_is_tighter_than_linear_on_a_small_dense_network():
    layers = extract_layers(random_network(8, 4, (10, 10, 10), 2))
    lower, upper = np.zeros(4), np.ones(4)
    lin = compute_bounds(layers, lower, upper, "linear")
    lp = compute_bounds(layers, lower, upper, "lp", skip_decided=False)
    assert widths(lp)[2].sum() < widths(lin)[2].sum() - 1e-3


def test_cone_too_large_for_the_licence_keeps_linear_bounds_with_a_note():
    # 1995 inputs: the LP of any second-layer neuron needs > 2000 variables.
    layers = extract_layers(random_network(4, 1995, (6, 6), 1))
    rng = np.random.default_rng(0)
    centre = rng.random(1995)
    lower, upper = np.clip(centre - 0.05, 0, 1), np.clip(centre + 0.05, 0, 1)
    lp = compute_bounds(layers, lower, upper, "lp")
    notes = lp.notes
    lin = compute_bounds(layers, lower, upper, "linear")
    fallbacks = [n for n in notes if n["kind"] == "fallback" and n["layer"] == 1]
    assert fallbacks and "too large" in fallbacks[0]["reason"] and "2000" in fallbacks[0]["reason"]
    for a, b in zip(lp.lower + lp.upper, lin.lower + lin.upper, strict=True):
        np.testing.assert_array_equal(a, b)


def test_small_size_limit_falls_back_and_is_still_sound():
    layers = extract_layers(random_network(5, 4, (8, 8), 2))
    lower, upper = np.zeros(4), np.ones(4)
    small = compute_bounds(layers, lower, upper, "lp", max_variables=10)
    notes = small.notes
    lin = compute_bounds(layers, lower, upper, "linear")
    assert any(n["kind"] == "fallback" for n in notes)
    for a, b in zip(small.upper, lin.upper, strict=True):
        np.testing.assert_array_equal(a, b)


def test_zero_time_budget_auto_equals_linear_and_says_why():
    layers = extract_layers(random_network(6, 4, (8, 8, 8), 2))
    lower, upper = np.zeros(4), np.ones(4) * 2
    auto = compute_bounds(layers, lower, upper, "auto", time_budget=0.0, auto_min_unstable=0)
    notes = auto.notes
    lin = compute_bounds(layers, lower, upper, "linear")
    for a, b in zip(auto.lower + auto.upper, lin.lower + lin.upper, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any("time budget" in n.get("reason", "") for n in notes if n["kind"] == "fallback")


def test_auto_skips_solves_when_few_neurons_are_unstable():
    layers = extract_layers(random_network(6, 4, (8, 8), 2))
    lower, upper = np.zeros(4), np.ones(4)
    auto = compute_bounds(layers, lower, upper, "auto", auto_min_unstable=10_000)
    lin = compute_bounds(layers, lower, upper, "linear")
    for a, b in zip(auto.lower + auto.upper, lin.lower + lin.upper, strict=True):
        np.testing.assert_array_equal(a, b)
    skipped = {n["stage"]: n["reason"] for n in auto.notes if n["kind"] == "skipped"}
    assert sorted(skipped) == ["interval", "linear", "lp", "milp"]
    assert "auto_min_unstable=10000" in skipped["lp"]
    # nothing tightened an earlier layer: interval and linear would redo the linear pass
    assert "done in the linear pass already" in skipped["linear"]
    full = compute_bounds(layers, lower, upper, "auto", auto_min_unstable=0)
    assert any(row["stage"] == "lp" and row["seconds"] > 0 for row in full.report)


def test_points_that_decide_every_neuron_skip_every_solve():
    layers = extract_layers(random_network(9, 3, (8, 8), 2))
    lower, upper = np.zeros(3), np.ones(3)
    rng = np.random.default_rng(1)
    points = box_points(rng, lower, upper, 500)
    with_points = compute_bounds(layers, lower, upper, "lp", points=points)
    notes = with_points.notes
    summary = [n for n in notes if n["kind"] == "summary" and n["stage"] == "lp"]
    z = layers_forward(layers, points)[1]
    truly_unstable = (z < 0).any(axis=0) & (z > 0).any(axis=0)
    assert truly_unstable.any()
    # Every neuron the points show on both sides of zero is never solved for.
    assert sum(n["skipped_by_points"] for n in summary) >= 2 * truly_unstable.sum()
    assert np.all(with_points.lower[1][0] <= z.min(axis=0)) and np.all(
        with_points.upper[1][0] >= z.max(axis=0)
    )


def test_cones_follow_the_sparsity_and_skip_dead_neurons():
    net = random_network(2, 4, (5, 5), 3, density=0.4)
    layers = extract_layers(net)
    problem = BoundingProblem(layers, np.zeros((1, 4)), np.ones((1, 4)))
    lo0, hi0 = np.full((1, 5), -1.0), np.full((1, 5), 1.0)
    hi0[0, 2] = -0.5  # neuron 2 of layer 0 is dead
    problem.lower += [lo0, np.full((1, 5), -1.0)]
    problem.upper += [hi0, np.full((1, 5), 1.0)]
    cone = cones_of_influence(problem, 2, 0).toarray()
    # Independent: dense reachability with the dead neuron's column removed.
    w0 = layers[0].weight.toarray() != 0
    w1 = (layers[1].weight.toarray() != 0) & (np.arange(5) != 2)[None, :]
    w2 = layers[2].weight.toarray() != 0
    reach1 = w2
    reach0 = (reach1.astype(int) @ w1.astype(int)) > 0
    reach0[:, 2] = False
    reach_in = (reach0.astype(int) @ w0.astype(int)) > 0
    np.testing.assert_array_equal(cone, np.hstack([reach_in, reach0, reach1]))


def test_safe_lagrangian_bound_is_valid_for_any_multipliers():
    rng = np.random.default_rng(0)
    A = sp.csr_array(rng.normal(size=(4, 3)))
    sense = np.array(["<", ">", "=", "<"])
    x0 = rng.random(3)
    rhs = A @ x0 + np.array([0.5, -0.5, 0.0, 0.1])  # x0 is feasible
    obj = rng.normal(size=3)
    for _ in range(20):
        bound = safe_lagrangian_bound(
            A, sense, rhs, obj, np.zeros(3), np.ones(3), rng.normal(size=4)
        )
        assert bound <= obj @ x0 + 1e-12


def test_mnist_784_256x4_linf_003_fits_the_licence_with_auto_but_not_with_interval():
    import gurobipy as gp

    from gurobi_sparse_surrogate import LinfBall, ModelTooLargeError, add_sparse_predictor_constr
    from gurobi_sparse_surrogate.datasets import mnist_classifier

    trained = mnist_classifier(size=28, hidden=(256,) * 4, seed=0, epochs=3)
    x0 = trained.X_test[0].astype(np.float64)
    domain = LinfBall(x0, 0.03)
    sizes = {}
    for method in ("interval", "auto"):
        with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as m:
            x = m.addMVar(784, lb=domain.lower, ub=domain.upper)
            try:
                pc = add_sparse_predictor_constr(
                    m,
                    trained.network,
                    x,
                    bounds=method,
                    domain=domain,
                    bound_options={"time_budget": 3.0},
                )
            except ModelTooLargeError:
                sizes[method] = None
                continue
            sizes[method] = pc.stats["binaries"]
            m.setObjective(pc.output[0].sum(), gp.GRB.MAXIMIZE)
            m.Params.TimeLimit = 1  # solvable by the size-limited licence: no size error
            m.optimize()
    assert sizes["auto"] is not None
    assert sizes["interval"] is None or sizes["interval"] > 2 * sizes["auto"]


@settings(max_examples=8, deadline=None)
@given(**network_strategy)
def test_auto_abandons_a_layer_that_stabilises_nothing_and_stays_sound(
    seed, n_in, hidden, density, masks
):
    _, _, _, bounds = check_method_on_box(
        "auto",
        seed,
        n_in,
        hidden,
        density,
        masks,
        n_points=300,
        auto_min_unstable=0,
        abandon_after=1,
    )
    notes = bounds.notes
    summaries = {(n["stage"], n["layer"]): n for n in notes if n["kind"] == "summary"}
    for note in notes:
        if "no neuron became stable" in note.get("reason", ""):
            summary = summaries[(note["stage"], note["layer"])]
            assert summary["solves"] == 1
            assert summary["unstable_after"] == summary["unstable_before"]
