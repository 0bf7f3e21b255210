"""Reports, findings, plots and the CLI of the benchmarks on hand-made records: empty inputs,
fallbacks, the maximization comparison and the mnistfc section, checked by hand."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import benchmarks.__main__ as cli
from benchmarks import hard, plots
from benchmarks.findings import compare
from benchmarks.mnistfc import format_mnistfc, mnistfc_summary
from benchmarks.report import (
    format_table,
    load_results,
    paper_reference,
    wins_losses,
    write_report,
)


def _max_record(instance, name, value, status="feasible"):
    kind = name.partition("-")[0] if name != "gurobi-ml" else "gurobi-ml"
    return {
        "suite": "maximization",
        "instance": instance,
        "method": name,
        "kind": kind,
        "family": name,
        "rate": None,
        "status": status,
        "found": value is not None and status not in ("skipped", "error"),
        "value": value,
        "runtime": 1.0,
        "time_limit": 5.0,
    }


def test_paper_reference_falls_back_to_a_paper_run_without_attack():
    papers = ["paper-0.5+attack", "paper-0.7"]
    # no paper run at the method's rate, nor at 0.8: the first one without an attack stage
    assert paper_reference("surrogate-0.9", 0.9, True, ["dense", *papers]) == "paper-0.7"
    assert paper_reference("surrogate-0.5", 0.5, True, papers) == "paper-0.5+attack"
    only_attack = ["paper-0.3+attack", "paper-0.6+attack"]
    assert paper_reference("dense", None, False, only_attack) == "paper-0.3+attack"
    assert paper_reference("dense", None, False, ["dense"]) is None


def test_empty_results_give_the_columns_and_no_table():
    frame = load_results([])
    assert frame.empty and {"suite", "method", "found", "time_to_first"} <= set(frame.columns)
    assert wins_losses(pd.DataFrame(), "verification") == (0, 0, 0)
    assert format_table(pd.DataFrame(), "verification") == "_no results_\n"


def test_findings_compare_maximization_values_by_hand():
    frame = load_results(
        [
            _max_record("a", "gurobi-ml", 2.0),
            _max_record("a", "dense", 3.0),  # +50%
            _max_record("b", "gurobi-ml", -4.0),
            _max_record("b", "dense", -5.0),  # -25% (relative to |-4|)
            _max_record("c", "gurobi-ml", 1.0),
            _max_record("c", "dense", None, status="unknown"),  # no value: a loss, no ratio
        ]
    )
    row = compare(frame, "maximization", "dense", "gurobi-ml")
    assert (row["wins"], row["losses"], row["instances"], row["n_ratio"]) == (1, 2, 3, 2)
    assert row["median"] == pytest.approx((0.5 - 0.25) / 2)
    assert row["geomean"] != row["geomean"]  # NaN: no time ratio in maximization
    assert compare(frame, "maximization", "dense", "attack") is None  # never ran together
    assert compare(frame, "verification", "dense", "gurobi-ml") is None


def test_maximization_plot_needs_pairs_that_both_solved(tmp_path):
    path = tmp_path / "max.png"
    unsolved = load_results(
        [_max_record("a", "gurobi-ml", 1.0), _max_record("a", "dense", None, status="unknown")]
    )
    assert plots.maximization_values(unsolved, path) is False and not path.exists()
    assert plots.success_vs_rate(unsolved, tmp_path / "rate.png") is False  # no verification
    assert plots.make_plots(unsolved, tmp_path) == {"verification": [], "maximization": []}


def test_methods_of_unknown_kinds_get_colours_of_their_own():
    assert plots._kind("milp-custom+attack") == "milp-custom"
    style = plots.method_style(["gurobi-ml", "milp-custom", "other"])
    colours = [style[m]["color"] for m in ("gurobi-ml", "milp-custom", "other")]
    assert len(set(colours)) == 3
    assert colours[1] not in plots._KIND_COLOURS.values()


def test_report_has_the_mnistfc_section(tmp_path):
    records = [
        {"instance": "mnistfc-2x256-a", "method": "gurobi-ml-loop", "status": "robust",
         "runtime": 8.0, "time_limit": 60},
        {"instance": "mnistfc-2x256-a", "method": "dense-loop", "status": "robust",
         "runtime": 2.0, "time_limit": 60, "bounding_seconds": 0.5},
        {"instance": "mnistfc-2x256-b", "method": "gurobi-ml-loop", "status": "skipped",
         "runtime": 0.0, "time_limit": 60},
        {"instance": "mnistfc-2x256-b", "method": "dense-loop", "status": "robust",
         "runtime": 3.0, "time_limit": 60},
    ]  # fmt: skip
    for r in records:
        r.update(suite="verification", found=False, kind=r["method"], family=r["method"])
    rows = {r["method"]: r for r in mnistfc_summary(records)}
    dense = rows["dense-loop"]
    # property b has no gurobi-ml reference (skipped): only a is compared, 8 s against 2 s
    assert dense["compared"] == 1 and dense["total_ratio"] == pytest.approx(4.0)
    assert dense["geomean_ratio_attacks"] is None and dense["solved"] == 2
    results = tmp_path / "mnistfc.jsonl"
    results.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    markdown = write_report(results, tmp_path / "out", plots=False)
    assert "## mnistfc: per-class loops and find_adversarial" in markdown
    line = next(x for x in markdown.splitlines() if x.startswith("| 2x256 | dense-loop |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[2:9] == ["2", "2", "0", "2", "0", "0", "0"]  # properties ... wrong
    assert cells[12] == "4.00" and cells[15] == "-"  # total ratio; no attack to compare
    assert (tmp_path / "out" / "report.md").read_text() == markdown
    assert format_mnistfc([]) == ""


def test_cli_reports_an_interrupt_and_the_exit_status(monkeypatch, capsys):
    name = cli.get_profile("smoke").methods[0].name

    def interrupted(args):
        assert args.methods == [name]  # a valid method passes the check
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_main", interrupted)
    status = cli.main(["run", "--profile", "smoke", "--methods", name, "--output", "r.jsonl"])
    assert status == cli.EXIT_INTERRUPTED == 130
    err = capsys.readouterr().err
    assert "interrupted: the runs that finished are kept in r.jsonl" in err


def test_cli_make_hard_writes_and_summarises_the_set(monkeypatch, capsys, tmp_path):
    calls = []
    content = {
        "attack_budget": hard.SCREEN_ATTACK,
        "screened": 4,
        "screened_cells": [{"network": "mnist18-2x64", "radius": "U[4.5,5.5]", "screened": 4}],
        "radii": [[4.5, 5.5]],
        "instances": [
            {"id": "mnist18-2x64-s0-img0001-r5", "params": {"radius": 5.0}, "truth": "sat"}
        ],
    }

    def make_hard_set(images, **kwargs):
        calls.append((images, kwargs))
        return content

    monkeypatch.setattr(hard, "make_hard_set", make_hard_set)
    out = tmp_path / "hard.json"
    argv = ["make-hard", "--images", "2", "--truth-time-limit", "7", "--output", str(out)]
    assert cli.main([*argv, "--cache-dir", str(tmp_path)]) == 0
    assert calls == [(2, {"time_limit": 7.0, "cache_dir": str(tmp_path), "output": out})]
    printed = capsys.readouterr().out
    assert "1 of 4 screened instances resist the attack" in printed
    assert "| mnist18-2x64 | U[4.5,5.5] | 4 | 1 | 1 | 0 | 0 |" in printed
