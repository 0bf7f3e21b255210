"""The ``gurobi_sparse_surrogate`` logger: silent by default, one line per stage, build and phase."""

from __future__ import annotations

import logging
import re

import gurobipy as gp
import numpy as np
from conftest import random_network

import gurobi_sparse_surrogate
from gurobi_sparse_surrogate import SurrogateSwap, add_sparse_predictor_constr, verbosity
from gurobi_sparse_surrogate.bounds import compute_bounds
from gurobi_sparse_surrogate.bounds.problem import count_unstable
from gurobi_sparse_surrogate.network import extract_layers

LOGGER = "gurobi_sparse_surrogate"


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith(LOGGER)]


def test_package_logger_is_silent_by_default(capfd, model):
    package = logging.getLogger(LOGGER)
    assert any(isinstance(h, logging.NullHandler) for h in package.handlers)
    assert package.level == logging.NOTSET  # the application decides
    net = random_network(0, 4, (8,), 2)
    x = model.addMVar(4, lb=0.0, ub=1.0)
    add_sparse_predictor_constr(model, net, x, bounds="lp")
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_one_line_per_bounding_stage_with_skips_and_reasons(caplog):
    layers = extract_layers(random_network(1, 5, (20, 20), 1))
    caplog.set_level(logging.INFO, logger=LOGGER)
    bounds = compute_bounds(
        layers, -np.ones(5), np.ones(5), method="auto", auto_min_unstable=10_000
    )
    lines = messages(caplog)
    for stage in ("linear pass", "interval", "linear"):
        assert any(line.startswith(f"bounds auto: {stage}") for line in lines), lines
    for stage in ("lp", "milp"):
        skipped = [line for line in lines if line.startswith(f"bounds auto: {stage} skipped:")]
        assert len(skipped) == 1, lines
        assert "auto_min_unstable=10000" in skipped[0]
    unstable = [
        count_unstable(layer, lo, hi)
        for layer, lo, hi in zip(layers, bounds.lower, bounds.upper, strict=True)
        if layer.relu
    ]
    total = [
        line
        for line in lines
        if line.startswith("bounds auto:") and "ReLU neurons unstable" in line
    ]
    assert total == [
        line for line in total if f"{sum(unstable)} of 40 ReLU neurons unstable" in line
    ]
    assert len(total) == 1 and str(unstable) in total[0]
    # the inner linear pass logs its own summary at DEBUG only
    assert not any(line.startswith("bounds linear:") for line in lines)


def test_stages_that_run_report_neurons_made_stable(caplog):
    layers = extract_layers(random_network(2, 4, (16, 16), 1))
    lo, hi = -0.2 * np.ones(4), 0.2 * np.ones(4)
    interval = compute_bounds(layers, lo, hi, method="interval")
    caplog.set_level(logging.INFO, logger=LOGGER)
    linear = compute_bounds(layers, lo, hi, method="linear")

    def unstable(b):
        return sum(count_unstable(layer, b.lower[i], b.upper[i]) for i, layer in enumerate(layers))

    lines = messages(caplog)
    made = [re.search(r"linear made (\d+) neurons stable", line) for line in lines]
    made = [int(m.group(1)) for m in made if m]
    assert len(made) == 1
    # the linear stage is intersected with interval bounds layer by layer: it stabilises at
    # least what separates a pure interval pass from the linear pass
    assert made[0] >= unstable(interval) - unstable(linear) >= 0


def test_build_line_reports_the_models_own_counts(caplog, model):
    net = random_network(3, 4, (10, 10), 2, density=0.6)
    x = model.addMVar(4, lb=0.0, ub=1.0)
    model.update()
    caplog.set_level(logging.INFO, logger=LOGGER)
    pc = add_sparse_predictor_constr(model, net, x, bounds="interval")
    model.update()
    line = next(m for m in messages(caplog) if m.startswith("embedded "))
    found = re.search(
        r"(\d+) variables \((\d+) binary\), (\d+) linear and (\d+) general constraints, "
        r"(\d+) nonzeros",
        line,
    )
    assert found, line
    variables, binaries, constraints, general, nonzeros = map(int, found.groups())
    assert variables == model.NumVars - 4
    assert binaries == model.NumBinVars
    assert constraints == model.NumConstrs
    assert general == model.NumGenConstrs
    assert nonzeros == model.NumNZs
    assert pc.stats["variables"] == variables


def test_swap_logs_every_phase_and_the_fallback(caplog, model):
    net = random_network(4, 4, (10, 10), 2)
    x = model.addMVar(4, lb=0.0, ub=1.0)
    pc = add_sparse_predictor_constr(model, net, x)
    model.setObjective(pc.output[0, 0] - pc.output[0, 1], gp.GRB.MAXIMIZE)
    caplog.set_level(logging.INFO, logger=LOGGER)
    with SurrogateSwap(model, pc, surrogate=0.6) as swap:
        result = swap.optimize(time_limit=30)
    lines = messages(caplog)
    for phase in result.phases:
        if "skipped" in phase:
            continue
        assert any(line.startswith(f"swap: {phase['name']} phase:") for line in lines), lines
    assert any(line.startswith("swap: falling back to the dense model") for line in lines)


def test_verbose_prints_bounding_and_build_lines(capfd, model, monkeypatch):
    monkeypatch.setattr(verbosity, "PROGRESS_DELAY", 0.0)
    monkeypatch.setattr(verbosity, "PROGRESS_INTERVAL", 0.0)  # every note is drawn
    net = random_network(5, 4, (12, 12), 2)
    x = model.addMVar(4, lb=0.0, ub=1.0)
    add_sparse_predictor_constr(model, net, x, bounds="lp", verbose=True)
    err = capfd.readouterr().err
    assert "gurobi_sparse_surrogate: bounds lp: lp made" in err
    assert "gurobi_sparse_surrogate: embedded " in err
    assert "bounds (lp)" in err  # the progress bar, shown at once with no delay
    assert re.search(r"layer 1 lp: \d+ solves", err)  # a long stage shows its solves
    # the handler is detached afterwards
    assert not any(
        isinstance(h, verbosity._VerboseHandler) for h in logging.getLogger(LOGGER).handlers
    )
    add_sparse_predictor_constr(model, net, x, bounds="lp")
    assert capfd.readouterr().err == ""


def test_verbose_application_call_prints_its_lines(capfd):
    net = random_network(6, 4, (8,), 3)
    x0 = np.full(4, 0.5)
    domain = gurobi_sparse_surrogate.LinfBall(x0, 0.1, lower=0.0, upper=1.0)
    gurobi_sparse_surrogate.find_adversarial(
        net, x0, domain, attack=False, time_limit=20, verbose=True, proof_steps=None
    )
    err = capfd.readouterr().err
    assert "gurobi_sparse_surrogate: embedded " in err


def test_verbose_keeps_a_users_debug_level_and_restores_it():
    """A user who set the package logger to DEBUG keeps it inside verbose_logging (it only
    lowers a level above INFO) and finds it unchanged afterwards; the handler is removed."""
    import io

    logger = logging.getLogger("gurobi_sparse_surrogate")
    before, handlers = logger.level, list(logger.handlers)
    out = io.StringIO()
    try:
        logger.setLevel(logging.DEBUG)
        with verbosity.verbose_logging(stream=out):
            assert logger.level == logging.DEBUG
            logging.getLogger("gurobi_sparse_surrogate.demo").debug("fine detail")
        assert logger.level == logging.DEBUG and logger.handlers == handlers
        logger.setLevel(logging.WARNING)
        with verbosity.verbose_logging(stream=out):
            assert logger.level == logging.INFO
            logging.getLogger("gurobi_sparse_surrogate.demo").debug("hidden")
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(before)
    assert out.getvalue() == "gurobi_sparse_surrogate: fine detail\n"
