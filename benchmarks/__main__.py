"""Command line: ``python -m benchmarks {run,report,quick,list}``.

Examples
--------
::

    python -m benchmarks quick                 # quick profile + report + table on stdout
    python -m benchmarks run --profile quick --output results/quick.jsonl --jobs 2
    python -m benchmarks report results/quick.jsonl --out results/quick/
    python -m benchmarks run --profile paper --output results/paper.jsonl \\
        --scheduler tcp://scheduler:8786   # on a Dask cluster
    python -m benchmarks list --profile quick
    python -m benchmarks run --profile mnistfc --instances 'mnistfc-2x256*' \\
        --methods gurobi-ml-loop dense-loop   # a subset of a profile's instances
    python -m benchmarks make-hard --images 8  # regenerate benchmarks/data/hard_instances.json
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .suites import PROFILES, get_profile


def _positive(kind: type) -> Any:
    """An argparse type: a number of ``kind`` above zero, or an argparse error naming it."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _add_run_options(parser: argparse.ArgumentParser, profile_default: str | None) -> None:
    parser.add_argument(
        "--profile", choices=PROFILES, default=profile_default, required=profile_default is None
    )
    parser.add_argument("--output", type=Path, help="results file (JSON lines)")
    parser.add_argument(
        "--jobs",
        type=_positive(int),
        default=min(2, os.cpu_count() or 1),
        help="local worker processes (default: min(2, cpus)); 1 runs in this process",
    )
    parser.add_argument("--scheduler", help="Dask distributed scheduler address")
    parser.add_argument("--cache-dir", type=Path, help="trained networks (default: next to output)")
    parser.add_argument(
        "--time-limit", type=_positive(float), help="seconds per run (overrides the profile)"
    )
    parser.add_argument("--threads", type=_positive(int), help="solver threads per run (default 1)")
    parser.add_argument(
        "--methods", nargs="+", help="run only these methods (see `list` for a profile's)"
    )
    parser.add_argument("--suites", nargs="+", choices=("verification", "maximization"))
    parser.add_argument(
        "--instances",
        nargs="+",
        metavar="GLOB",
        help="run only the instances whose id matches one of these shell-style patterns "
        "(quote them: --instances 'mnistfc-2x256*'; see `list` for a profile's ids)",
    )
    parser.add_argument("--max-runs", type=_positive(int), help="stop after this many new runs")
    parser.add_argument("--retry-errors", action="store_true", help="rerun failed runs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m benchmarks``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Side-by-side benchmarks of gurobi-ml, the paper's pruned surrogate and "
        "this package, judged on the dense network.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a profile (resumes an existing results file)")
    _add_run_options(run, None)
    report = sub.add_parser("report", help="markdown tables and PNG plots of a results file")
    report.add_argument("results", type=Path)
    report.add_argument("--out", type=Path, help="output directory (default: next to results)")
    report.add_argument("--no-plots", action="store_true")
    quick = sub.add_parser("quick", help="run a profile, write its report, print the tables")
    _add_run_options(quick, "quick")
    hard = sub.add_parser(
        "make-hard",
        help="screen the paper's instances with the attack and record the attack-resistant "
        "ones with their ground truth (rewrites benchmarks/data/hard_instances.json)",
    )
    hard.add_argument("--images", type=int, default=8, help="images per network and radius band")
    hard.add_argument("--truth-time-limit", type=float, default=60.0, help="seconds per solve")
    hard.add_argument("--cache-dir", type=Path, default=Path("results/cache"))
    hard.add_argument("--output", type=Path, help="default: benchmarks/data/hard_instances.json")
    findings = sub.add_parser(
        "findings", help="the paper's findings (a)-(e) as tables, from one or more results files"
    )
    findings.add_argument("results", type=Path, nargs="+")
    findings.add_argument("--out", type=Path, required=True, help="output directory")
    listing = sub.add_parser("list", help="show a profile's instances and methods")
    listing.add_argument("--profile", choices=PROFILES, default="quick")
    return parser


def _run(args: argparse.Namespace) -> Path:
    from .runner import main_run_message, run_benchmark

    profile = get_profile(args.profile)
    output = args.output or Path("results") / f"{profile.name}.jsonl"
    summary = run_benchmark(
        profile,
        output,
        jobs=args.jobs,
        scheduler=args.scheduler,
        cache_dir=args.cache_dir,
        time_limit=args.time_limit,
        threads=args.threads,
        methods=args.methods,
        suites=args.suites,
        instances=args.instances,
        max_runs=args.max_runs,
        retry_errors=args.retry_errors,
        progress=not args.no_progress,
    )
    print(main_run_message(summary, output), file=sys.stderr)
    return output


#: Exit status after an interrupt (Ctrl-C, SIGINT or SIGTERM), as a shell reports SIGINT.
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (argparse exits with 2 on a bad argument; 130
    when interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("run", "quick") and args.methods:
        valid = [m.name for m in get_profile(args.profile).methods]
        unknown = [m for m in args.methods if m not in valid]
        if unknown:
            parser.error(
                f"unknown method(s) {', '.join(unknown)} for profile {args.profile!r}; "
                f"valid: {', '.join(valid)}"
            )
    if args.command in ("run", "quick") and args.instances:
        from fnmatch import fnmatchcase

        ids = [inst.id for inst in get_profile(args.profile).instances]
        unmatched = [p for p in args.instances if not any(fnmatchcase(i, p) for i in ids)]
        if unmatched:
            parser.error(
                f"instance pattern(s) {', '.join(unmatched)} match no instance of profile "
                f"{args.profile!r} (see `python -m benchmarks list --profile {args.profile}`)"
            )
    try:
        return _main(args)
    except KeyboardInterrupt:
        output = getattr(args, "output", None) or "the results file"
        print(
            f"interrupted: the runs that finished are kept in {output}; run the same command "
            "again to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _main(args: argparse.Namespace) -> int:
    if args.command == "list":
        profile = get_profile(args.profile)
        print(f"profile {profile.name}: {profile.description}")
        print(f"time limit {profile.time_limit:g} s, {profile.threads} thread(s) per run")
        print(f"{len(profile.instances)} instances x {len(profile.methods)} methods:")
        for inst in profile.instances:
            print(f"  {inst.suite:13} {inst.id}")
        print("methods: " + ", ".join(m.name for m in profile.methods))
        return 0
    if args.command == "run":
        _run(args)
        return 0
    if args.command == "findings":
        from .findings import write_findings

        missing = [str(p) for p in args.results if not p.is_file()]
        if missing:
            print(f"error: results file(s) {', '.join(missing)} do not exist", file=sys.stderr)
            return 2
        print(write_findings(args.results, args.out))
        return 0
    if args.command == "make-hard":
        from .hard import HARD_FILE, make_hard_set, summary

        content = make_hard_set(
            args.images,
            time_limit=args.truth_time_limit,
            cache_dir=str(args.cache_dir),
            output=args.output or HARD_FILE,
        )
        print(summary(content))
        return 0
    from .report import write_report

    if args.command == "report":
        results = args.results
        out = args.out or results.with_suffix("")
        if not results.is_file():
            print(f"error: results file {results} does not exist", file=sys.stderr)
            return 2
        markdown = write_report(results, out, plots=not args.no_plots)
        print(markdown)
        print(f"report written to {out / 'report.md'}", file=sys.stderr)
        return 0
    # quick
    output = _run(args)
    out = output.with_suffix("")
    markdown = write_report(output, out)
    print(markdown)
    print(f"report and plots written to {out}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
