"""The ``gss-verify`` command (also ``python -m gurobi_sparse_surrogate``).

One instance::

    gss-verify NET.onnx PROP.vnnlib --timeout 120 --result result.txt

A VNN-COMP benchmark folder (``instances.csv`` rows: onnx path, vnnlib path, timeout; paths
relative to ``--root``, by default the folder of ``instances.csv``; ``.gz`` files accepted, also
under the name without ``.gz``; a row without timeout gets ``--timeout`` or 60 s)::

    gss-verify --instances instances.csv --root DIR --results results.csv

``results.csv`` gets one row per instance, written as soon as it is decided, in VNN-COMP's
format: ``benchmark,onnx,vnnlib,prepare_time,result,run_time`` with the paths as given in
``instances.csv`` (no header). A rerun skips the instances already there (resume).

Exit codes: 0 when every instance got a verdict (``sat``, ``unsat``, ``unknown`` or
``timeout``); 1 when an instance ended in ``error`` (a file that cannot be read, a network or
property that does not fit; the message goes to stderr); 2 for a usage error.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
VERDICTS = ("sat", "unsat", "timeout", "unknown", "error")

log = logging.getLogger("gurobi_sparse_surrogate.verify")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gss-verify",
        description=(
            "Verify ONNX networks against VNN-LIB properties with gurobi-sparse-surrogate "
            "(bounds, attacks and a sparsity-aware MILP), writing VNN-COMP result files."
        ),
        epilog=(
            "exit codes: 0 every instance got a verdict (sat, unsat, unknown, timeout); "
            "1 an instance ended in error; 2 usage error"
        ),
    )
    parser.add_argument("onnx", nargs="?", help="the network (.onnx or .onnx.gz)")
    parser.add_argument("vnnlib", nargs="?", help="the property (.vnnlib or .vnnlib.gz)")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per instance (default 60)"
    )
    parser.add_argument("--result", help="write the VNN-COMP result file of the instance here")
    parser.add_argument("--instances", help="a VNN-COMP instances.csv (benchmark mode)")
    parser.add_argument("--root", help="folder the instances' paths are relative to")
    parser.add_argument("--results", help="results CSV of the benchmark mode (appended to)")
    parser.add_argument(
        "--result-dir", help="benchmark mode: also write each instance's result file here"
    )
    parser.add_argument("--threads", type=int, default=1, help="Gurobi and torch threads")
    parser.add_argument("--verbose", action="store_true", help="Gurobi's log and tracebacks")
    return parser


class _Networks:
    """Loaded networks by path (a benchmark reuses each network for many properties)."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[Any, int, int]] = {}

    def get(self, path: Path) -> tuple[Any, int, int]:
        key = str(path.resolve())
        if key not in self.cache:
            from ..network.extraction import Float64Network, network_input_size
            from ..network.onnx import load_onnx

            net = load_onnx(path)
            n_in = network_input_size(net)
            if n_in is None:  # pragma: no cover - load_onnx always starts with one of those
                raise ValueError(f"{path}: cannot tell the network's input size")
            n_out = int(Float64Network(net)(np.zeros(n_in)).size)
            self.cache = {key: (net, n_in, n_out)}  # keep one: networks can be large
        return self.cache[key]


def _existing(path: Path) -> Path:
    """``path``, or ``path.gz`` when only the compressed file is there (VNN-COMP folders
    ship ``.onnx.gz`` and ``.vnnlib.gz`` files under the names without ``.gz``)."""
    if not path.exists():
        packed = path.with_name(path.name + ".gz")
        if packed.exists():
            return packed
    return path


def run_instance(
    onnx_path: Path,
    vnnlib_path: Path,
    timeout: float,
    *,
    threads: int = 1,
    verbose: bool = False,
    networks: _Networks | None = None,
) -> tuple[Any, float, float, str]:
    """Load and verify one instance.

    Returns ``(result or None, prepare seconds, run seconds, error message)``.
    """
    from .verification import verify
    from .vnnlib import load_vnnlib

    started = time.perf_counter()
    try:
        net, n_in, n_out = (networks or _Networks()).get(_existing(onnx_path))
        spec = load_vnnlib(_existing(vnnlib_path), n_in, n_out)
    except Exception as error:  # every failure becomes an "error" verdict
        if verbose:
            traceback.print_exc()
        return None, time.perf_counter() - started, 0.0, f"{type(error).__name__}: {error}"
    prepared = time.perf_counter()
    try:
        result = verify(net, spec, time_limit=timeout, threads=threads, verbose=verbose)
    except Exception as error:
        if verbose:
            traceback.print_exc()
        return (
            None,
            prepared - started,
            time.perf_counter() - prepared,
            (f"{type(error).__name__}: {error}"),
        )
    return result, prepared - started, time.perf_counter() - prepared, ""


def _write_result(path: Path, result: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if result is None:
        path.write_text("error\n", encoding="utf-8")
    else:
        result.write(path)


def _single(args: argparse.Namespace) -> int:
    timeout = 60.0 if args.timeout is None else args.timeout
    result, prepare, run, error = run_instance(
        Path(args.onnx), Path(args.vnnlib), timeout, threads=args.threads, verbose=args.verbose
    )
    if args.result:
        _write_result(Path(args.result), result)
    if result is None:
        print("error", flush=True)
        print(f"gss-verify: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(result.status, flush=True)
    print(f"{result.summary()} (loading {prepare:.2f} s)")
    return EXIT_OK


def read_instances(path: Path) -> list[tuple[str, str, float | None]]:
    """Rows of a VNN-COMP ``instances.csv``: onnx path, vnnlib path and (optionally) timeout."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            row = [cell.strip() for cell in row]
            if not row or not any(row):
                continue
            if len(row) < 2:
                raise ValueError(f"{path}, line {number}: expected onnx,vnnlib[,timeout]")
            timeout = None
            if len(row) > 2 and row[2]:
                try:
                    timeout = float(row[2])
                except ValueError:
                    raise ValueError(
                        f"{path}, line {number}: the timeout {row[2]!r} is not a number"
                    ) from None
            rows.append((row[0], row[1], timeout))
    return rows


def read_results(path: Path) -> list[list[str]]:
    """Rows already in a results CSV (none when it does not exist)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [row for row in csv.reader(f) if len(row) >= 6]


def summary_table(rows: Sequence[Sequence[str]]) -> str:
    """Verdict counts and times (total and mean run time per verdict)."""
    lines = [f"{'verdict':<9}{'count':>7}{'total s':>11}{'mean s':>10}"]
    for verdict in VERDICTS:
        times = [float(r[5]) for r in rows if r[4] == verdict]
        if times:
            lines.append(
                f"{verdict:<9}{len(times):>7}{sum(times):>11.2f}{sum(times) / len(times):>10.2f}"
            )
    lines.append(f"{'total':<9}{len(rows):>7}{sum(float(r[5]) for r in rows):>11.2f}")
    return "\n".join(lines)


def _benchmark(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tqdm import tqdm

    instances_path = Path(args.instances)
    if not instances_path.is_file():
        parser.error(f"no instances file at {instances_path}")
    if not args.results:
        parser.error("--instances needs --results (the CSV to append the results to)")
    try:
        instances = read_instances(instances_path)
    except ValueError as error:
        parser.error(str(error))
    root = Path(args.root) if args.root else instances_path.parent
    benchmark = root.resolve().name
    results_path = Path(args.results)
    rows = read_results(results_path)
    done = {(r[1], r[2]) for r in rows}
    todo = [i for i in instances if (i[0], i[1]) not in done]
    if len(todo) < len(instances):
        print(f"resuming: {len(instances) - len(todo)} of {len(instances)} instances done")
    networks = _Networks()
    counts = {v: sum(r[4] == v for r in rows) for v in VERDICTS}
    results_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(results_path, "a", newline="", encoding="utf-8") as out,
        tqdm(todo, desc=benchmark, unit="instance", disable=None) as bar,
    ):
        writer = csv.writer(out)
        for onnx_name, vnnlib_name, timeout in bar:
            if args.timeout is not None or timeout is None:
                timeout = 60.0 if args.timeout is None else args.timeout
            result, prepare, run, error = run_instance(
                root / onnx_name,
                root / vnnlib_name,
                timeout,
                threads=args.threads,
                verbose=args.verbose,
                networks=networks,
            )
            verdict = "error" if result is None else result.status
            if result is None:
                tqdm.write(f"error: {onnx_name} {vnnlib_name}: {error}", file=sys.stderr)
            if args.result_dir:
                name = (
                    f"{Path(onnx_name).name.split('.')[0]}_{Path(vnnlib_name).name.split('.')[0]}"
                )
                _write_result(Path(args.result_dir) / f"{name}.result", result)
            row = [benchmark, onnx_name, vnnlib_name, f"{prepare:.6f}", verdict, f"{run:.6f}"]
            writer.writerow(row)
            out.flush()
            rows.append(row)
            counts[verdict] += 1
            bar.set_postfix({k: v for k, v in counts.items() if v})
    ours = {(i[0], i[1]) for i in instances}
    mine = [r for r in rows if (r[1], r[2]) in ours]
    print(summary_table(mine))
    return EXIT_ERROR if any(r[4] == "error" for r in mine) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gss-verify`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.timeout is not None and not args.timeout > 0:
        parser.error("--timeout must be positive")
    import torch

    torch.set_num_threads(args.threads)
    if args.instances:
        if args.onnx or args.vnnlib:
            parser.error("give either NET.onnx PROP.vnnlib or --instances, not both")
        return _benchmark(args, parser)
    if not (args.onnx and args.vnnlib):
        parser.error("give NET.onnx PROP.vnnlib, or --instances instances.csv --results FILE")
    if args.root or args.results or args.result_dir:
        parser.error("--root, --results and --result-dir belong to the --instances mode")
    return _single(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
