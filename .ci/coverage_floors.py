"""Print line and branch coverage of the package and of the benchmarks; fail under the floors.

Reads the coverage data that ``python -m pytest --cov ... --cov-branch`` left in ``.coverage``.
The floors sit a little below what main reaches; the project keeps raising them (never lower one
to make a change pass: test the new code instead). Issue #16 asked for at least 97% of lines and 93% of
branches for the package, 95% / 88% for the benchmarks.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import coverage

# part -> (source directory, floor for lines %, floor for branches %)
FLOORS = {
    "gurobi_sparse_surrogate": ("gurobi_sparse_surrogate", 98.0, 96.5),
    "benchmarks": ("benchmarks", 99.0, 96.0),
}


def measure(files: dict, directory: str) -> tuple[float, float]:
    """Line and branch coverage (in %) of the files under ``directory``.

    ``files`` is the ``files`` table of coverage's JSON report.
    """
    totals = {"num_statements": 0, "covered_lines": 0, "num_branches": 0, "covered_branches": 0}
    for path, entry in files.items():
        if Path(path).parts[0] != directory:
            continue
        for key in totals:
            totals[key] += entry["summary"].get(key, 0)
    lines = 100.0 * totals["covered_lines"] / max(totals["num_statements"], 1)
    branches = 100.0 * totals["covered_branches"] / max(totals["num_branches"], 1)
    return lines, branches


def main() -> int:
    if not Path(".coverage").is_file():
        print("coverage_floors: no coverage data (.coverage); run pytest with --cov first")
        return 2
    cov = coverage.Coverage()
    cov.load()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(report))
        files = json.loads(report.read_text())["files"]
    failed = False
    print(f"{'part':26} {'lines':>8} {'floor':>7} {'branches':>9} {'floor':>7}")
    for part, (directory, line_floor, branch_floor) in FLOORS.items():
        lines, branches = measure(files, directory)
        low = lines < line_floor or branches < branch_floor
        failed |= low
        mark = "  BELOW THE FLOOR" if low else ""
        print(
            f"{part:26} {lines:7.2f}% {line_floor:6.1f}% {branches:8.2f}% {branch_floor:6.1f}%{mark}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
