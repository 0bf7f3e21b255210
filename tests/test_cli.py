"""gss-verify: single instances, benchmark folders, resume, result files and exit codes."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from conftest import constant_margin_net

pytest.importorskip("onnx")

from gurobi_sparse_surrogate.applications.cli import main  # noqa: E402

HEADER = "".join(f"(declare-const X_{i} Real)\n" for i in range(2)) + (
    "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
    "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n"
)
UNSAT = HEADER + "(assert (>= Y_1 Y_0))\n"  # y1 = y0 - 1 everywhere
SAT = HEADER + "(assert (>= Y_0 2.5))\n"  # reached at |x0| = 1, x1 = 0.5 and beyond
BROKEN = HEADER + "(assert (>= Y_0 2.5)\n"


@pytest.fixture
def bench(tmp_path):
    root = tmp_path / "toy_benchmark"
    (root / "onnx").mkdir(parents=True)
    (root / "vnnlib").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            constant_margin_net(), torch.zeros(1, 2), str(root / "onnx" / "net.onnx"), dynamo=False
        )
    (root / "onnx" / "net.onnx.gz").write_bytes(
        gzip.compress((root / "onnx" / "net.onnx").read_bytes())
    )
    (root / "vnnlib" / "unsat.vnnlib").write_text(UNSAT)
    (root / "vnnlib" / "sat.vnnlib.gz").write_bytes(gzip.compress(SAT.encode()))
    (root / "vnnlib" / "broken.vnnlib").write_text(BROKEN)
    (root / "onnx" / "packed.onnx.gz").write_bytes((root / "onnx" / "net.onnx.gz").read_bytes())
    (root / "instances.csv").write_text(
        "onnx/net.onnx,vnnlib/unsat.vnnlib,20\n"
        "onnx/net.onnx.gz,vnnlib/sat.vnnlib.gz,20\n"
        "\n"
        "onnx/net.onnx,vnnlib/broken.vnnlib,20\n"
        "onnx/packed.onnx,vnnlib/sat.vnnlib\n"  # only .gz files there, no timeout
    )
    return root


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_single_instance_result_files_and_exit_codes(bench, tmp_path, capsys):
    result = tmp_path / "out" / "result.txt"
    code = main(
        [str(bench / "onnx/net.onnx"), str(bench / "vnnlib/sat.vnnlib.gz"), "--result", str(result)]
    )
    assert code == 0
    lines = result.read_text().splitlines()
    assert lines[0] == "sat" and lines[1].startswith("((X_0 ") and lines[-1].endswith("))")
    values = {line.strip("()").split()[0]: float(line.strip("()").split()[1]) for line in lines[1:]}
    x = np.array([values["X_0"], values["X_1"]])
    assert np.all(np.abs(x) <= 1.0)
    with torch.no_grad():
        y = constant_margin_net().double()(torch.from_numpy(x)[None]).numpy()[0]
    assert y[0] >= 2.5
    np.testing.assert_allclose([values["Y_0"], values["Y_1"]], y, rtol=1e-12)
    assert "sat" in capsys.readouterr().out

    assert (
        main(
            [
                str(bench / "onnx/net.onnx"),
                str(bench / "vnnlib/unsat.vnnlib"),
                "--result",
                str(result),
            ]
        )
        == 0
    )
    assert result.read_text() == "unsat\n"

    code = main(
        [str(bench / "onnx/net.onnx"), str(bench / "vnnlib/broken.vnnlib"), "--result", str(result)]
    )
    assert code == 1 and result.read_text() == "error\n"
    assert "line 9" in capsys.readouterr().err
    assert main([str(bench / "missing.onnx"), str(bench / "vnnlib/unsat.vnnlib")]) == 1

    for argv in (
        [],
        [str(bench / "onnx/net.onnx")],
        ["a", "b", "--threads", "0"],
        ["a", "b", "--results", "r.csv"],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2


def test_benchmark_folder_with_resume(bench, tmp_path, capsys):
    results = tmp_path / "results.csv"
    argv = [
        "--instances",
        str(bench / "instances.csv"),
        "--results",
        str(results),
        "--result-dir",
        str(tmp_path / "res"),
    ]
    assert main(argv) == 1  # the broken property is an error
    rows = read_rows(results)
    assert [r[1:3] + [r[4]] for r in rows] == [
        ["onnx/net.onnx", "vnnlib/unsat.vnnlib", "unsat"],
        ["onnx/net.onnx.gz", "vnnlib/sat.vnnlib.gz", "sat"],
        ["onnx/net.onnx", "vnnlib/broken.vnnlib", "error"],
        ["onnx/packed.onnx", "vnnlib/sat.vnnlib", "sat"],
    ]
    assert all(r[0] == "toy_benchmark" and len(r) == 6 for r in rows)
    assert all(float(r[3]) >= 0 and float(r[5]) >= 0 for r in rows)
    out = capsys.readouterr().out
    assert "unsat" in out and "total" in out  # the summary table
    assert (tmp_path / "res" / "net_sat.result").read_text().startswith("sat\n((X_0 ")
    assert (tmp_path / "res" / "net_broken.result").read_text() == "error\n"

    # a rerun resumes: nothing is run again
    assert main(argv) == 1
    assert read_rows(results) == rows
    assert "resuming: 4 of 4" in capsys.readouterr().out
    # an interrupted run (last row missing) runs only what is missing
    with open(results, "w", newline="") as f:
        csv.writer(f).writerows(rows[:1])
    assert main(argv) == 1
    again = read_rows(results)
    assert again[0] == rows[0] and [r[4] for r in again] == ["unsat", "sat", "error", "sat"]


def test_benchmark_usage_errors(bench, tmp_path):
    bad = tmp_path / "instances.csv"
    bad.write_text("onnx/net.onnx,vnnlib/unsat.vnnlib,soon\n")
    short = tmp_path / "short.csv"
    short.write_text("onnx/net.onnx\n")
    for argv in (
        ["--instances", str(tmp_path / "missing.csv"), "--results", "r.csv"],
        ["--instances", str(bench / "instances.csv")],
        ["--instances", str(bad), "--results", str(tmp_path / "r.csv")],
        ["--instances", str(short), "--results", str(tmp_path / "r.csv")],
        ["net.onnx", "p.vnnlib", "--instances", str(bench / "instances.csv"), "--results", "r"],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2


def test_python_dash_m_entry_point():
    completed = subprocess.run(
        [sys.executable, "-m", "gurobi_sparse_surrogate", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0
    assert "exit codes" in completed.stdout and "--instances" in completed.stdout


def test_console_script_is_declared():
    import importlib
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    module, name = project["project"]["scripts"]["gss-verify"].split(":")
    assert getattr(importlib.import_module(module), name) is main


def test_benchmark_loads_a_network_once_and_timeout_overrides_the_rows(
    bench, tmp_path, monkeypatch, capsys
):
    from gurobi_sparse_surrogate.applications import verification
    from gurobi_sparse_surrogate.network import onnx as onnx_module

    loads, limits = [], []
    real_load, real_verify = onnx_module.load_onnx, verification.verify

    def counting_load(path, *args, **kwargs):
        loads.append(path.name)
        return real_load(path, *args, **kwargs)

    def recording_verify(net, spec, **kwargs):
        limits.append(kwargs["time_limit"])
        return real_verify(net, spec, **kwargs)

    monkeypatch.setattr(onnx_module, "load_onnx", counting_load)
    monkeypatch.setattr(verification, "verify", recording_verify)
    instances = tmp_path / "two.csv"
    instances.write_text("onnx/net.onnx,vnnlib/unsat.vnnlib,20\nonnx/net.onnx,vnnlib/sat.vnnlib,\n")
    results = tmp_path / "results.csv"
    argv = ["--instances", str(instances), "--root", str(bench), "--results", str(results)]
    assert main([*argv, "--timeout", "15"]) == 0
    assert loads == ["net.onnx"]  # the second instance reuses the loaded network
    assert limits == [15.0, 15.0]  # --timeout wins over the rows' 20 s and their default
    rows = read_rows(results)
    assert [(r[0], r[2], r[4]) for r in rows] == [
        ("toy_benchmark", "vnnlib/unsat.vnnlib", "unsat"),
        ("toy_benchmark", "vnnlib/sat.vnnlib", "sat"),
    ]
    assert not list(tmp_path.glob("**/*.result"))  # no --result-dir: no result files
    assert "sat" in capsys.readouterr().out


def test_every_failure_is_an_error_verdict_with_its_message(bench, tmp_path, monkeypatch, capsys):
    result = tmp_path / "result.txt"
    net, unsat = str(bench / "onnx/net.onnx"), str(bench / "vnnlib/unsat.vnnlib")
    # a file that cannot be read; --verbose adds the traceback
    assert main([str(bench / "missing.onnx"), unsat, "--verbose", "--result", str(result)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "missing.onnx" in err
    assert result.read_text() == "error\n"

    # verify itself failing (whatever the cause) is an error verdict too, not a crash
    from gurobi_sparse_surrogate.applications import verification

    def broken_verify(net, spec, **kwargs):
        raise RuntimeError("the solver went away")

    monkeypatch.setattr(verification, "verify", broken_verify)
    assert main([net, unsat, "--result", str(result)]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "error"
    assert "gss-verify: RuntimeError: the solver went away" in captured.err
    assert "Traceback" not in captured.err  # only with --verbose
    assert result.read_text() == "error\n"
    assert main([net, unsat, "--verbose"]) == 1
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("timeout", ["0", "-5", "nan"])
def test_a_timeout_that_is_not_positive_is_a_usage_error(bench, timeout, capsys):
    argv = [str(bench / "onnx/net.onnx"), str(bench / "vnnlib/unsat.vnnlib"), "--timeout", timeout]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "--timeout must be positive" in capsys.readouterr().err


def test_python_dash_m_runs_the_command_and_exits_with_its_code(bench, tmp_path, monkeypatch):
    import runpy

    result = tmp_path / "result.txt"
    argv = [str(bench / "onnx/net.onnx"), str(bench / "vnnlib/unsat.vnnlib"), "--result"]
    monkeypatch.setattr(sys, "argv", ["gss-verify", *argv, str(result)])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("gurobi_sparse_surrogate", run_name="__main__")
    assert info.value.code == 0 and result.read_text() == "unsat\n"
    monkeypatch.setattr(sys, "argv", ["gss-verify", str(bench / "missing.onnx"), argv[1]])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("gurobi_sparse_surrogate", run_name="__main__")
    assert info.value.code == 1


def test_importing_the_main_module_does_not_run_the_command(monkeypatch):
    import importlib

    monkeypatch.setattr(sys, "argv", ["gss-verify"])  # would be a usage error (exit 2) if run
    monkeypatch.delitem(sys.modules, "gurobi_sparse_surrogate.__main__", raising=False)
    module = importlib.import_module("gurobi_sparse_surrogate.__main__")
    assert module.main is main
