"""The solver stages go on while they pay: ``min_yield`` (neurons made stable per second).

Every assertion is on the stage records (how many solves ran, whether and why a stage
stopped), never on time: the extreme settings decide the same way on any machine.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from conftest import random_network

from gurobi_sparse_surrogate.bounds import BoundOptions, compute_bounds
from gurobi_sparse_surrogate.bounds.lp import LPStage, MILPStage, yield_allowance
from gurobi_sparse_surrogate.bounds.problem import METHODS, BoundingProblem
from gurobi_sparse_surrogate.exceptions import InvalidOptionError
from gurobi_sparse_surrogate.network.extraction import extract_layers, layers_forward

BOX = (np.zeros(4), np.ones(4))
#: Seed 0, 4 inputs, 8x8: the LP solves of layer 1 make no neuron stable (10 solves).
BARREN = (0, 4, (8, 8), 2)
#: Seed 3, 4 inputs, 12x12x12: the LP solves make neurons stable on layers 1 and 2.
FERTILE = (3, 4, (12, 12, 12), 2)


def lp_records(bounds, stage="lp"):
    return {r.layer: r for r in bounds.stages if r.stage == stage and r.ran}


def assert_sound(layers, bounds, seed=0):
    points = np.random.default_rng(seed).uniform(*BOX, size=(2000, 4))
    for values, lo, hi in zip(
        layers_forward(layers, points), bounds.lower, bounds.upper, strict=True
    ):
        assert np.all(values >= lo - 1e-7) and np.all(values <= hi + 1e-7)


def test_yield_allowance_earns_time_per_neuron_made_stable():
    assert yield_allowance(0, 0.0, 4.0) == pytest.approx(0.25)
    assert yield_allowance(0, 0.25, 4.0) == pytest.approx(0.0)  # spent its one credit: stop
    assert yield_allowance(2, 0.5, 4.0) == pytest.approx(0.25)  # 3 credits of 0.25 s
    assert yield_allowance(10, 2.0, 4.0) > yield_allowance(0, 2.0, 4.0)
    assert yield_allowance(0, 1e9, 0.0) == math.inf  # 0: never stop for yield


def test_a_stage_that_does_not_pay_stops_with_its_reason(caplog):
    layers = extract_layers(random_network(*BARREN))
    common = {"time_budget": math.inf, "skip_decided": False}
    full = lp_records(compute_bounds(layers, *BOX, "lp", **common))
    assert full[1].solves > 2 and full[1].neurons_made_stable == 0 and full[1].stopped is None
    with caplog.at_level(logging.INFO, logger="gurobi_sparse_surrogate"):
        bounds = compute_bounds(layers, *BOX, "lp", min_yield=1e9, **common)
    record = lp_records(bounds)[1]
    # the first solve always runs (nothing is measured before it); it earns nothing, and a
    # yield of 1e9 neurons per second cannot be kept up: the stage stops for the layer
    assert record.solves == 1
    assert record.stopped.startswith("stopped for yield: 0 neurons made stable in 1 solves")
    assert "below min_yield=1e+09 per second" in record.stopped
    assert [k.reason for k in record.kept] == [record.stopped]
    assert record.kept[0].neurons >= 1
    fallback = [n for n in bounds.notes if n["kind"] == "fallback" and n["stage"] == "lp"]
    assert [n["reason"] for n in fallback] == [record.stopped]
    assert any("stopped for yield" in m and "lp on layer 1" in m for m in caplog.messages)
    assert_sound(layers, bounds)
    linear = compute_bounds(layers, *BOX, "linear")
    for lo, hi, lin_lo, lin_hi in zip(
        bounds.lower, bounds.upper, linear.lower, linear.upper, strict=True
    ):
        assert np.all(lo >= lin_lo) and np.all(hi <= lin_hi)  # never looser than linear


def test_a_stage_that_pays_runs_every_solve():
    layers = extract_layers(random_network(*FERTILE))
    common = {"time_budget": math.inf, "skip_decided": False}
    unlimited = lp_records(compute_bounds(layers, *BOX, "lp", **common))
    # one neuron per 1000 s is far below what these solves yield: nothing stops them
    paying = compute_bounds(layers, *BOX, "lp", min_yield=1e-3, **common)
    records = lp_records(paying)
    assert sum(r.neurons_made_stable for r in unlimited.values()) >= 2
    for layer, record in unlimited.items():
        assert records[layer].stopped is None and not records[layer].kept
        assert records[layer].solves == record.solves
        assert records[layer].neurons_made_stable == record.neurons_made_stable
    assert_sound(layers, paying)


def test_auto_decides_by_yield_and_lp_and_milp_do_not_by_default():
    layers = extract_layers(random_network(*BARREN))
    problem = BoundingProblem(layers, BOX[0][None, :], BOX[1][None, :])
    auto_stages = [getattr(s, "stage", s) for s in METHODS["auto"]]
    auto_solvers = [s for s in auto_stages if isinstance(s, LPStage)]
    assert [type(s) for s in auto_solvers] == [LPStage, MILPStage]
    assert all(s.settings(problem).min_yield == 4.0 for s in auto_solvers)
    assert all(s.settings(problem).abandon_after == 0 for s in auto_solvers)  # no fixed count
    for method in ("lp", "milp"):
        solvers = [getattr(s, "stage", s) for s in METHODS[method]]
        solvers = [s for s in solvers if isinstance(s, LPStage)]
        assert solvers and all(s.settings(problem).min_yield == 0.0 for s in solvers)
    given = BoundingProblem(layers, BOX[0][None, :], BOX[1][None, :], options={"min_yield": 2})
    assert all(s.settings(given).min_yield == 2.0 for s in auto_solvers)
    bounds = compute_bounds(layers, *BOX, "auto", auto_min_unstable=0, min_yield=1e9)
    record = lp_records(bounds)[1]
    assert record.solves == 1 and "stopped for yield" in record.stopped


@pytest.mark.parametrize(
    "options, message",
    [
        ({"min_yield": -1.0}, "min_yield must be"),
        ({"min_yield": math.inf}, "min_yield must be"),
        ({"auto_min_yield": 2.0}, "did you mean 'min_yield'"),
    ],
)
def test_min_yield_is_validated(options, message):
    with pytest.raises(InvalidOptionError, match=message):
        BoundOptions.from_value(options)


def test_milp_stage_skips_a_layer_whose_neurons_all_read_too_many_binaries():
    # With milp_max_binaries=0, every neuron with an unstable ReLU feeding it directly is
    # refused before its cone is computed; nothing is solved and the bounds are the LP's.
    layers = extract_layers(random_network(*FERTILE))
    common = {"time_budget": math.inf, "milp_max_binaries": 0}
    milp = compute_bounds(layers, *BOX, "milp", **common)
    lp = compute_bounds(layers, *BOX, "lp", **common)
    records = lp_records(milp, "milp")
    assert records and all(r.solves == 0 for r in records.values())
    reasons = [k.reason for r in records.values() for k in r.kept]
    assert any("in the layer before" in reason for reason in reasons)
    for a, b in zip(milp.lower + milp.upper, lp.lower + lp.upper, strict=True):
        np.testing.assert_array_equal(a, b)
    assert_sound(layers, milp)
