"""Bounding options (validated at the boundary), typed stage records, domains' own LP rows."""

from __future__ import annotations

import dataclasses
import math

import gurobipy as gp
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import random_network
from gurobipy import GRB
from torch import nn

from gurobi_sparse_surrogate import (
    BoundOptions,
    InvalidOptionError,
    L1Ball,
    NetworkBounds,
    ShapeMismatchError,
    SparseSurrogateError,
    add_sparse_predictor_constr,
    compute_bounds,
)
from gurobi_sparse_surrogate.domains import Domain, LPRows, LPSize
from gurobi_sparse_surrogate.network.extraction import extract_layers, layers_forward

# ---------------------------------------------------------------- options at the boundary


def small_layers(seed=0):
    return extract_layers(random_network(seed, 3, (5, 5), 2))


def test_misspelled_option_through_compute_bounds_names_it_and_the_valid_ones():
    with pytest.raises(InvalidOptionError) as error:
        compute_bounds(small_layers(), np.zeros(3), np.ones(3), "auto", time_limit=1)
    message = str(error.value)
    assert "'time_limit'" in message and "did you mean 'time_budget'" in message
    for key in BoundOptions.keys():
        assert key in message
    assert isinstance(error.value, ValueError) and isinstance(error.value, SparseSurrogateError)


def test_misspelled_option_in_an_options_dict_and_close_matches():
    with pytest.raises(InvalidOptionError, match="'skip_decide'.*did you mean 'skip_decided'"):
        compute_bounds(small_layers(), np.zeros(3), np.ones(3), options={"skip_decide": False})


def test_the_removed_notes_option_points_to_the_result():
    with pytest.raises(InvalidOptionError, match="NetworkBounds.notes"):
        compute_bounds(small_layers(), np.zeros(3), np.ones(3), "lp", notes=[])


@pytest.mark.parametrize("bounds", ["interval", "precomputed"])
def test_misspelled_bound_option_through_add_sparse_predictor_constr(bounds):
    net = random_network(1, 3, (4,), 2)
    with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as m:
        x = m.addMVar(3, lb=0.0, ub=1.0)
        m.update()
        if bounds == "precomputed":
            layers = extract_layers(net)
            bounds = compute_bounds(layers, np.zeros(3), np.ones(3))
        with pytest.raises(InvalidOptionError, match="'time_limit'.*'time_budget'"):
            add_sparse_predictor_constr(m, net, x, bounds=bounds, bound_options={"time_limit": 1.0})
        m.update()
        assert m.NumVars == 3 and m.NumConstrs == 0  # failed before adding anything


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("time_budget", -1.0, "time_budget must be a number >= 0 or None, got -1.0"),
        ("time_budget", "5", "time_budget must be a number"),
        ("milp_time_limit", 0.0, "milp_time_limit must be a number > 0"),
        ("milp_max_binaries", 2.5, "milp_max_binaries must be an integer >= 0"),
        ("max_variables", 0, "max_variables must be an integer >= 1"),
        ("max_constraints", True, "max_constraints must be an integer"),
        ("skip_decided", "no", "skip_decided must be True or False, got 'no'"),
        ("abandon_after", -2, "abandon_after must be an integer >= 0 or None"),
        ("auto_min_unstable", float("nan"), "auto_min_unstable must be an integer"),
        ("points", [[0.5, np.nan, 0.5]], "points contain NaN"),
        ("points", np.zeros((2, 2, 3)), r"points must have shape \(p, n_in\)"),
    ],
)
def test_bad_values_fail_with_the_option_named(key, value, expected):
    with pytest.raises(InvalidOptionError, match=expected):
        compute_bounds(small_layers(), np.zeros(3), np.ones(3), "lp", **{key: value})
    with pytest.raises(InvalidOptionError, match=expected):
        BoundOptions(**{key: value})


def test_points_of_the_wrong_width_are_a_shape_error():
    with pytest.raises(ShapeMismatchError, match="2 coordinates.*3 inputs"):
        compute_bounds(small_layers(), np.zeros(3), np.ones(3), "lp", points=np.zeros((4, 2)))


def test_options_are_frozen_and_dicts_and_instances_are_equivalent():
    options = BoundOptions(time_budget=0.0, auto_min_unstable=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.time_budget = 3.0  # type: ignore[misc]
    assert BoundOptions.from_value({"time_budget": 0, "auto_min_unstable": 0}) == options
    assert options.explicit() == {"time_budget": 0.0, "auto_min_unstable": 0}
    assert options.replace(skip_decided=False).skip_decided is False
    with pytest.raises(InvalidOptionError, match="must be a dict or a BoundOptions"):
        BoundOptions.from_value([("time_budget", 1)])
    layers = small_layers(3)
    a = compute_bounds(layers, np.zeros(3), np.ones(3), "auto", options=options)
    b = compute_bounds(layers, np.zeros(3), np.ones(3), "auto", time_budget=0, auto_min_unstable=0)
    # keywords override the options given as an object
    c = compute_bounds(layers, np.zeros(3), np.ones(3), "auto", options=options, time_budget=0)
    for x, y, z in zip(a.lower + a.upper, b.lower + b.upper, c.lower + c.upper, strict=True):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)


def test_bound_options_object_through_add_sparse_predictor_constr():
    net = random_network(2, 3, (4,), 2)
    with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as m:
        x = m.addMVar(3, lb=0.0, ub=1.0)
        pc = add_sparse_predictor_constr(
            m, net, x, bounds="lp", bound_options=BoundOptions(skip_decided=False)
        )
        assert pc.bounds.method == "lp" and [r.stage for r in pc.bounds.stages][:2] == [
            "linear pass",
            "interval",
        ]


# ---------------------------------------------------------------- stage records


def hand_network() -> nn.Sequential:
    """x in [-1, 1]; z0 = (x, x + 2, x + 1.5); a = h0_1 - h0_2 (= 0.5 always), b = h0_0 - 0.5.

    Interval arithmetic leaves z0_0, a and b unstable (a in [-1.5, 2.5]); the linear
    relaxation proves a = 0.5 exactly (h0_1 and h0_2 are stable active), so it makes one
    neuron stable; b truly takes both signs.
    """
    net = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [1.0], [1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, 2.0, 1.5]))
        net[2].weight.copy_(torch.tensor([[0.0, 1.0, -1.0], [1.0, 0.0, 0.0]]))
        net[2].bias.copy_(torch.tensor([0.0, -0.5]))
        net[4].weight.copy_(torch.tensor([[1.0, 1.0]]))
        net[4].bias.zero_()
    return net


def records(bounds):
    return {(r.stage, r.layer): r for r in bounds.stages}


def test_stage_records_count_the_neurons_each_stage_made_stable():
    layers = extract_layers(hand_network())
    bounds = compute_bounds(layers, [-1.0], [1.0], "linear")
    rec = records(bounds)
    assert [(r.stage, r.layer) for r in bounds.stages] == [
        (s, i) for i in range(3) for s in ("interval", "linear")
    ]
    # before the first stage every ReLU neuron counts as unstable
    assert (rec["interval", 0].unstable_before, rec["interval", 0].unstable_after) == (3, 1)
    assert rec["interval", 0].neurons_made_stable == 2
    assert rec["linear", 0].neurons_made_stable == 0
    assert (rec["interval", 1].unstable_before, rec["interval", 1].unstable_after) == (2, 2)
    assert (rec["linear", 1].unstable_before, rec["linear", 1].unstable_after) == (2, 1)
    assert rec["linear", 1].neurons_made_stable == 1
    assert rec["linear", 2].unstable_after == 0  # no ReLU on the output layer
    assert all(r.ran and r.skipped_reason is None and r.seconds >= 0 for r in bounds.stages)
    assert bounds.lower[1][0, 0] >= 0.5 - 1e-8 and bounds.upper[1][0, 0] <= 0.5 + 1e-8
    assert bounds.report[3]["unstable"] == 1 and bounds.report[3]["stage"] == "linear"
    assert math.isclose(bounds.seconds, sum(r.seconds for r in bounds.stages))


def test_auto_records_skipping_its_solves_when_few_neurons_are_unstable():
    layers = extract_layers(hand_network())
    auto = compute_bounds(layers, [-1.0], [1.0], "auto")
    linear = compute_bounds(layers, [-1.0], [1.0], "linear")
    for stage in ("lp", "milp"):
        for index in range(3):
            r = records(auto)[stage, index]
            assert not r.ran and r.solves == 0
            assert "only 2 unstable neurons after the linear bounds" in r.skipped_reason
            assert "auto_min_unstable=32" in r.skipped_reason
    assert records(auto)["linear pass", 0].ran
    for a, b in zip(auto.lower + auto.upper, linear.lower + linear.upper, strict=True):
        np.testing.assert_array_equal(a, b)
    skipped = [(n["stage"], n["reason"]) for n in auto.notes if n["kind"] == "skipped"]
    assert [stage for stage, _ in skipped] == ["interval", "linear", "lp", "milp"]
    # no solver stage tightened an earlier layer: interval and linear would redo the pass
    assert all("done in the linear pass already" in reason for _, reason in skipped[:2])


def test_auto_records_its_solves_when_it_runs():
    layers = extract_layers(hand_network())
    auto = compute_bounds(layers, [-1.0], [1.0], "auto", auto_min_unstable=0, time_budget=math.inf)
    rec = records(auto)
    assert not rec["lp", 0].ran and "first layer" in rec["lp", 0].skipped_reason
    assert not rec["lp", 2].ran and rec["lp", 2].skipped_reason == "not a ReLU layer"
    # Layer 1: only b is unstable. The input box centre x = 0 gives b = -0.5, which decides
    # its minimisation; its maximisation is one solve, and b stays unstable (max 0.5 at x=1).
    for stage in ("lp", "milp"):
        r = rec[stage, 1]
        assert r.ran and r.skipped_reason is None
        assert (r.solves, r.skipped_by_points, r.neurons_made_stable) == (1, 1, 0)
        assert (r.unstable_before, r.unstable_after) == (1, 1)
    np.testing.assert_allclose(auto.upper[1][0, 1], 0.5, atol=1e-6)
    summaries = [n for n in auto.notes if n["kind"] == "summary"]
    assert [(n["stage"], n["layer"], n["solves"]) for n in summaries] == [
        ("lp", 1, 1),
        ("milp", 1, 1),
    ]


def test_kept_bounds_say_why_and_how_many():
    layers = small_layers(5)
    bounds = compute_bounds(layers, np.zeros(3), np.ones(3), "lp", max_variables=4)
    kept = [k for r in bounds.stages if r.stage == "lp" for k in r.kept]
    assert kept and all("cone of influence too large" in k.reason for k in kept)
    unstable_lp = {r.layer: r.unstable_before for r in bounds.stages if r.stage == "lp"}
    for r in bounds.stages:
        if r.stage == "lp" and r.kept:
            assert sum(k.neurons for k in r.kept) <= unstable_lp[r.layer]


# ---------------------------------------------------------------- a domain of one's own


class CappedBox(Domain):
    """``[0, 1]^n`` intersected with ``sum(x) <= cap``, defined only here (in a test)."""

    def __init__(self, n: int, cap: float, rows: bool = True):
        self._lower = np.zeros(n)
        self._upper = np.ones(n)
        self.cap = cap
        self.rows = rows

    def _extra_contains(self, batch, tol):
        return batch.sum(axis=1) <= self.cap + tol

    def _sample(self, n_points, rng):
        x = rng.random((n_points, self.n)) ** 3
        x = x * np.minimum(1.0, self.cap / np.maximum(x.sum(axis=1, keepdims=True), 1e-12))
        vertices = np.zeros((self.n, self.n))
        vertices[np.arange(self.n), np.arange(self.n)] = min(1.0, self.cap)
        return np.vstack([x, vertices])[:n_points]

    def lp_rows(self, columns):
        columns = np.asarray(columns)
        if not self.rows:
            return super().lp_rows(columns)
        # The projection on any coordinates: the others can be 0.
        return LPRows(
            sp.csr_array(np.ones((1, columns.size))),
            np.array(["<"]),
            np.array([self.cap]),
            np.zeros(0),
            np.zeros(0),
        )

    def lp_size(self):
        return LPSize(np.zeros(self.n), np.zeros(self.n), 0, 1 if self.rows else 0)


def true_extremes(layers, domain, index):
    """Exact range of each neuron of layer ``index`` over the capped box (plain Gurobi MILP)."""
    with gp.Env(params={"OutputFlag": 0, "Threads": 1}) as env, gp.Model(env=env) as m:
        m.Params.MIPGap = 0
        m.Params.MIPGapAbs = 1e-9
        h = m.addMVar(domain.n, lb=0.0, ub=1.0)
        m.addConstr(h.sum() <= domain.cap)
        for j in range(index + 1):
            z = m.addMVar(layers[j].n_out, lb=-GRB.INFINITY)
            m.addConstr(z == layers[j].weight.toarray() @ h + layers[j].bias)
            if j < index:
                out = m.addMVar(layers[j].n_out)
                for k in range(layers[j].n_out):
                    m.addGenConstrMax(out[k].item(), [z[k].item()], constant=0.0)
                h = out
        lo, hi = [], []
        for k in range(layers[index].n_out):
            for sense, store in ((GRB.MINIMIZE, lo), (GRB.MAXIMIZE, hi)):
                m.setObjective(z[k], sense)
                m.optimize()
                store.append(m.ObjVal)
    return np.array(lo), np.array(hi)


def test_a_custom_domain_gets_sound_lp_bounds_from_its_own_rows():
    layers = extract_layers(random_network(11, 4, (8, 8), 2))
    domain = CappedBox(4, 0.8)
    rowless = CappedBox(4, 0.8, rows=False)
    lower, upper = np.zeros(4), np.ones(4)
    for method in ("lp", "milp"):
        with_rows = compute_bounds(layers, lower, upper, method, domain, skip_decided=False)
        without = compute_bounds(layers, lower, upper, method, rowless, skip_decided=False)
        points = domain.sample(3000, np.random.default_rng(0))
        assert domain.contains(points).all()
        for index, z in enumerate(layers_forward(layers, points)):
            assert np.all(z >= with_rows.lower[index][0] - 1e-7)
            assert np.all(z <= with_rows.upper[index][0] + 1e-7)
        for index in (1, 2):
            t_lo, t_hi = true_extremes(layers, domain, index)
            assert np.all(with_rows.lower[index][0] <= t_lo + 1e-6)
            assert np.all(with_rows.upper[index][0] >= t_hi - 1e-6)
        # the rows were used: tighter than the same domain without them
        width = sum((u - lo).sum() for lo, u in zip(with_rows.lower, with_rows.upper, strict=True))
        loose = sum((u - lo).sum() for lo, u in zip(without.lower, without.upper, strict=True))
        assert width < loose - 1e-3


def test_bounds_over_a_custom_domain_are_refused_for_inputs_that_range_over_its_box():
    """A user's domain defaults to "not its bounding box": its LP bounds (from its own rows)
    cut off reachable values of inputs that range over the box, so reusing them there is
    refused, as for an L1 ball. They were accepted (Domain.is_box defaulted to True)."""
    net = random_network(11, 4, (8, 8), 2)
    domain = CappedBox(4, 0.8)
    with gp.Env(params={"OutputFlag": 0, "Threads": 1}) as env:
        m = gp.Model(env=env)
        x = m.addMVar(4, lb=0.0, ub=1.0)
        m.addConstr(x.sum() <= domain.cap)
        pc = add_sparse_predictor_constr(m, net, x, domain=domain, bounds="lp", bound_cache=False)
        # the independent truth: points of the box outside the cap break these bounds
        points = np.random.default_rng(0).random((2000, 4))
        z = layers_forward(extract_layers(net), points)[1]
        assert (z > pc.bounds.upper[1][0] + 1e-6).any()
        box_only = gp.Model(env=env)
        y = box_only.addMVar(4, lb=0.0, ub=1.0)
        with pytest.raises(InvalidOptionError, match="smaller than its bounding box"):
            add_sparse_predictor_constr(box_only, net, y, bounds=pc.bounds)
        # declared with the domain (the same object, or an equal one): accepted
        capped = gp.Model(env=env)
        y = capped.addMVar(4, lb=0.0, ub=1.0)
        capped.addConstr(y.sum() <= domain.cap)
        for declared in (domain, CappedBox(4, 0.8)):
            again = add_sparse_predictor_constr(capped, net, y, bounds=pc.bounds, domain=declared)
            assert again.bounds is pc.bounds
            again.remove()
        with pytest.raises(InvalidOptionError, match="smaller than its bounding box"):
            add_sparse_predictor_constr(capped, net, y, bounds=pc.bounds, domain=CappedBox(4, 0.9))


def test_l1_lp_rows_stay_within_their_declared_size_and_hold_on_the_ball():
    rng = np.random.default_rng(0)
    ball = L1Ball(rng.random(6), 0.7)
    size = ball.lp_size()
    for columns in ([0], [1, 4], [0, 2, 3, 5], list(range(6))):
        rows = ball.lp_rows(columns)
        columns = np.asarray(columns)
        assert rows.n_aux <= size.variables[columns].sum() + size.fixed_variables
        assert rows.n_rows <= size.constraints[columns].sum() + size.fixed_constraints
        # every point of the ball satisfies the rows with aux = |x - c|
        for x in ball.sample(50, rng):
            v = np.concatenate([x[columns], np.abs(x[columns] - ball.center[columns])])
            lhs = rows.matrix @ v
            ok = np.where(rows.sense == "<", lhs <= rows.rhs + 1e-9, lhs >= rows.rhs - 1e-9)
            assert ok.all()


def test_precomputed_bounds_carry_no_records():
    bounds = NetworkBounds.from_arrays([np.zeros(2)], [np.ones(2)])
    assert bounds.stages == [] and bounds.notes == [] and bounds.seconds == 0.0


def test_misspelled_bound_option_through_an_application_fails_before_solving():
    from gurobi_sparse_surrogate import Box, maximize_output

    net = random_network(4, 3, (4,), 1)
    with pytest.raises(InvalidOptionError, match="'time_limit'.*'time_budget'"):
        maximize_output(net, Box(np.zeros(3), np.ones(3)), bound_options={"time_limit": 1.0})


def test_print_stats_gives_a_reason_only_for_stages_that_ran_on_no_layer():
    import io

    for options, expected in (({}, True), ({"auto_min_unstable": 0}, False)):
        with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as m:
            x = m.addMVar(1, lb=-1.0, ub=1.0)
            pc = add_sparse_predictor_constr(
                m, hand_network(), x, bound_options=options, bound_cache=False
            )
            out = io.StringIO()
            pc.print_stats(file=out)
        text = out.getvalue()
        assert ("lp skipped: only 2 unstable neurons" in text) is expected, text
        assert "skipped: not a ReLU layer" not in text and "skipped: first layer" not in text
        skipped_notes = [
            n for n in pc.bounds.notes if n["kind"] == "skipped" and n["stage"] in ("lp", "milp")
        ]
        assert [n["stage"] for n in skipped_notes] == (["lp", "milp"] if expected else [])


def test_abandoning_a_layer_is_recorded_with_its_reason():
    # Layer 1 of the hand network: b's maximisation is one solve that leaves b unstable, so
    # with abandon_after=1 the LP stage gives up on the layer after it and says why.
    layers = extract_layers(hand_network())
    bounds = compute_bounds(layers, [-1.0], [1.0], "lp", abandon_after=1, time_budget=math.inf)
    record = records(bounds)["lp", 1]
    assert record.ran and record.solves == 1 and record.neurons_made_stable == 0
    assert [(k.sample, k.neurons, k.kind) for k in record.kept] == [(0, 1, "fallback")]
    assert "no neuron became stable in the first 1 solves" in record.kept[0].reason
    fallback = [n for n in bounds.notes if n["kind"] == "fallback"]
    assert fallback == [
        {
            "stage": "lp",
            "layer": 1,
            "sample": 0,
            "neurons": 1,
            "reason": record.kept[0].reason,
            "kind": "fallback",
        }
    ]


def test_unknown_method_suggests_the_close_one():
    with pytest.raises(InvalidOptionError, match="'lienar' \\(did you mean 'linear'\\?\\)"):
        compute_bounds(small_layers(), np.zeros(3), np.ones(3), method="lienar")


def test_options_read_by_key_and_points_refused_by_name():
    options = BoundOptions(time_budget=2.5, points=[0.25, 0.75])
    assert options["time_budget"] == 2.5 == options.time_budget
    # one point given as a flat list is one row
    np.testing.assert_array_equal(options["points"], [[0.25, 0.75]])
    with pytest.raises(InvalidOptionError, match="'time_budgte'; did you mean 'time_budget'"):
        options["time_budgte"]  # noqa: B018
    with pytest.raises(InvalidOptionError, match="points must be a numeric array, got 'abc'"):
        BoundOptions(points="abc")
    with pytest.raises(InvalidOptionError, match="points must be a numeric array"):
        BoundOptions(points=[[0.1, 0.2], [0.3]])  # ragged
