"""The paper's findings as tables, computed from one or more results files.

Each table compares a method with a reference on the instances both ran (pairwise, as in
:mod:`benchmarks.report`): wins, losses and ties (time to the first dense-adversarial input for
verification, best dense value for maximization) and the median and geometric-mean time ratio
where both found one.

(a) surrogate against the dense MILP (gurobi-ml's, and the package's own), per pruning rate;
(b) finetuned against not finetuned, with the finetuning time counted and without it;
(c) unstructured (global) against neuron pruning;
(d) each pruning criterion against magnitude pruning (MP);
(e) function maximization: each surrogate against the dense models.

``python -m benchmarks findings RESULTS.jsonl [...] --out DIR`` writes ``findings.md`` and one
CSV per table into ``DIR``; the documentation includes those CSVs, never pasted numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .report import geometric_mean, load_results, paired, time_ratios, wins_losses
from .runner import read_results

#: Columns of every findings table.
COLUMNS = (
    "profile",
    "method",
    "reference",
    "instances",
    "wins",
    "losses",
    "ties",
    "median",
    "geomean",
    "n_ratio",
)


def compare(
    frame: pd.DataFrame, suite: str, method: str, reference: str, *, exclude_pruning: bool = False
) -> dict[str, Any] | None:
    """One row: ``method`` against ``reference`` on the instances of ``suite`` both ran.

    With ``exclude_pruning`` the time to the first dense-adversarial input of both runs is
    counted without their pruning (and finetuning) seconds.
    """
    data = frame[frame["suite"] == suite]
    pairs = paired(data, method, reference)
    if pairs.empty:
        return None
    if exclude_pruning:
        pairs = pairs.copy()
        for side in ("_m", "_r"):
            spent = pd.to_numeric(pairs.get(f"pruning_seconds{side}"), errors="coerce")
            spent = spent.fillna(0.0) if spent is not None else 0.0
            pairs[f"time_to_first{side}"] = pairs[f"time_to_first{side}"] - spent
    wins, losses, ties = wins_losses(pairs, suite)
    row: dict[str, Any] = {
        "method": method,
        "reference": reference,
        "instances": len(pairs),
        "wins": wins,
        "losses": losses,
        "ties": ties,
    }
    if suite == "verification":
        ratios = time_ratios(pairs)
        row["median"] = float(ratios.median()) if len(ratios) else math.nan
        row["geomean"] = geometric_mean(ratios)
        row["n_ratio"] = len(ratios)
    else:
        both = pairs[pairs["found_m"] & pairs["found_r"]]
        rel = (both["value_m"] - both["value_r"]) / both["value_r"].abs().clip(lower=1e-9)
        row["median"] = float(rel.median()) if len(rel) else math.nan
        row["geomean"] = math.nan
        row["n_ratio"] = len(rel)
    return row


def _rows(frame: pd.DataFrame, suite: str, pairs: Sequence[tuple[str, str]], **kw: Any) -> list:
    methods = set(frame.loc[frame["suite"] == suite, "method"])
    rows = []
    for method, reference in pairs:
        if method in methods and reference in methods:
            row = compare(frame, suite, method, reference, **kw)
            if row is not None:
                rows.append(row)
    return rows


def _rates(frame: pd.DataFrame) -> list[float]:
    return sorted({float(r) for r in frame["rate"].dropna()})


def tables(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The findings tables (a)-(e) of one results frame, keyed by letter."""
    out: dict[str, list] = {k: [] for k in "abcde"}
    for r in _rates(frame):
        s = f"surrogate-{r:g}"
        out["a"] += _rows(
            frame,
            "verification",
            [(s, "dense"), (s, "gurobi-ml"), (f"paper-{r:g}", "gurobi-ml"), (s, f"paper-{r:g}")],
        )
        out["b"] += [
            {**row, "reference": f"{row['reference']} (finetuning time counted)"}
            for row in _rows(frame, "verification", [(f"{s}-finetuned", s)])
        ]
        out["b"] += [
            {**row, "reference": f"{row['reference']} (pruning and finetuning time excluded)"}
            for row in _rows(frame, "verification", [(f"{s}-finetuned", s)], exclude_pruning=True)
        ]
        out["c"] += _rows(frame, "verification", [(f"{s}-neuron", s)])
        out["d"] += _rows(
            frame,
            "verification",
            [(f"{s}-{c}", s) for c in ("bound-aware", "activation-aware", "random-pruned")],
        )
        out["e"] += _rows(
            frame,
            "maximization",
            [
                (s, "dense"),
                (s, "gurobi-ml"),
                (f"{s}-max", "dense-max"),
                (f"{s}-max", "gurobi-ml"),
                (f"{s}-bound-aware", s),
                (f"{s}-neuron", s),
            ],
        )
    out["e"] += _rows(frame, "maximization", [("dense", "gurobi-ml"), ("dense-max", "gurobi-ml")])
    return {
        k: pd.DataFrame(v, columns=[c for c in COLUMNS if c != "profile"]) for k, v in out.items()
    }


TITLES = {
    "a": "(a) Surrogate against the dense MILP: time to the first dense-adversarial input",
    "b": "(b) Finetuned against not finetuned",
    "c": "(c) Neuron (structured) against unstructured pruning",
    "d": "(d) Pruning criteria against magnitude pruning",
    "e": "(e) Function maximization: best dense value (median relative difference)",
}


def _sentence(row: pd.Series, suite: str) -> str:
    what = "faster to a dense-adversarial input" if suite == "verification" else "better value"
    ratio = ""
    if suite == "verification" and row["n_ratio"]:
        ratio = f"; median time ratio {row['median']:.2f}x over {row['n_ratio']} pairs"
    return (
        f"{row['method']} vs {row['reference']}: {row['wins']} wins ({what}), "
        f"{row['losses']} losses, {row['ties']} ties on {row['instances']} instances{ratio}"
    )


def reading(all_tables: dict[str, dict[str, pd.DataFrame]]) -> str:
    """Plain sentences, one per comparison, generated from the numbers."""
    lines = []
    for profile, tabs in all_tables.items():
        for key, table in tabs.items():
            suite = "maximization" if key == "e" else "verification"
            for _, row in table.iterrows():
                lines.append(f"- [{profile}] {_sentence(row, suite)}")
    return "\n".join(lines) or "- no comparison could be made from these results"


def _markdown(table: pd.DataFrame) -> str:
    if table.empty:
        return "_no pairs in these results_"
    header = "| " + " | ".join(table.columns) + " |"
    sep = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join([header, sep, *body])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def describe_runs(path: str | Path) -> str:
    """One paragraph on what a results file holds: runs, statuses, limits, environment."""
    records = read_results(path)
    statuses = pd.Series([r.get("status") for r in records]).value_counts().to_dict()
    limits = sorted({r.get("time_limit") for r in records if r.get("time_limit") is not None})
    env = next((r["env"] for r in records if r.get("env")), {})
    versions = ", ".join(
        f"{k} {env[k]}"
        for k in ("gurobi_sparse_surrogate", "gurobi_ml", "gurobi", "torch")
        if k in env
    )
    return (
        f"{Path(path).name}: {len(records)} runs "
        f"({', '.join(f'{v} {k}' for k, v in sorted(statuses.items()))}); "
        f"time limit {', '.join(f'{x:g}' for x in limits)} s per run; "
        f"{env.get('threads', '?')} solver thread(s), {env.get('cpus', '?')} cpus, "
        f"{env.get('licence', '?')} licence; {versions}"
    )


def write_findings(results: Sequence[str | Path], out: str | Path) -> str:
    """Write ``findings.md``, ``findings_<letter>.csv`` (all profiles stacked, a ``profile``
    column first), ``reading.rst`` and ``RUNS.txt`` into ``out``; return the markdown."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    all_tables: dict[str, dict[str, pd.DataFrame]] = {}
    from .plots import scatter_verification

    for path in results:
        profile = re.sub(r"\.jsonl$", "", Path(path).name)
        frame = load_results(path)
        all_tables[profile] = tables(frame)
        scatter_verification(frame, out / f"scatter_{profile}.png")
    (out / "RUNS.txt").write_text("\n".join(describe_runs(p) for p in results) + "\n")
    (out / "reading.rst").write_text(
        "What the runs say, one generated sentence per comparison:\n\n"
        + reading(all_tables).replace("- [", "* [")
        + "\n"
    )
    parts = ["# The paper's findings, from the benchmark runs", ""]
    for key, title in TITLES.items():
        stacked = [
            t[key].assign(profile=profile) for profile, t in all_tables.items() if not t[key].empty
        ]
        table = (
            pd.concat(stacked, ignore_index=True)[list(COLUMNS)]
            if stacked
            else pd.DataFrame(columns=list(COLUMNS))
        )
        table.round(3).to_csv(out / f"findings_{key}.csv", index=False)
        parts += [f"## {title}", "", _markdown(table), ""]
    parts += ["## Reading", "", reading(all_tables), ""]
    from .hard import HARD_FILE, load_hard_set, summary, summary_table

    if HARD_FILE.is_file():
        content = load_hard_set()
        pd.DataFrame(summary_table(content)).to_csv(out / "hard_set.csv", index=False)
        parts += ["## The hard set: where the attack fails", "", summary(content), ""]
    text = "\n".join(parts)
    (out / "findings.md").write_text(text)
    return text
