"""Tables, plots and a short generated reading of a results file.

Every comparison is pairwise on the same instances: the time ratio of a method against a
reference (``gurobi-ml``, and the ``paper`` pipeline) is computed on the instances where both
found a dense-valid solution; wins and losses count every instance both ran:

- verification: a method wins when it finds a dense-adversarial input and the reference does
  not, or both do and it is faster; it loses in the mirror cases; otherwise a tie.
- maximization: a method wins when its best dense value is higher than the reference's by more
  than a relative ``1e-6`` (no value counts as minus infinity); it loses in the mirror case.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .frames import BASELINE, method_order, paired, ran_only
from .runner import read_results

TIME_FLOOR = 1e-3  # seconds; times below are floored before taking ratios
VALUE_RTOL = 1e-6


# ------------------------------------------------------------------------------ loading


def load_results(records: str | os.PathLike | Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Records (a file or dicts) as a DataFrame, one row per key (the last line wins).

    Columns always present: ``suite, instance, method, kind, family, rate, status, found,
    time_to_first, runtime, dense_margin, value, time_limit, attack``.
    """
    if isinstance(records, str | os.PathLike):
        records = read_results(records)
    rows = []
    for record in records:
        row = {k: v for k, v in record.items() if k not in ("history", "env", "traceback")}
        options = record.get("options") or {}
        row["attack"] = bool(options.get("attack", "+attack" in str(record.get("method"))))
        row["licence"] = (record.get("env") or {}).get("licence")
        rows.append(row)
    columns = [
        "suite",
        "instance",
        "method",
        "kind",
        "family",
        "rate",
        "status",
        "found",
        "time_to_first",
        "runtime",
        "dense_margin",
        "value",
        "time_limit",
        "attack",
        "binaries",
        "disjunctions",
        "stable",
        "surrogate_accuracy",
        "surrogate_mse",
        "optimal",
        "bounding_seconds",
        "unstable",
        "unstable_per_layer",
    ]
    frame = pd.DataFrame(rows)
    for column in columns:
        if column not in frame:
            frame[column] = None
    if frame.empty:
        return frame[columns]
    frame = frame.drop_duplicates(["suite", "instance", "method"], keep="last")
    frame["found"] = frame["found"].fillna(False).astype(bool)
    for column in ("time_to_first", "runtime", "value", "dense_margin", "rate", "time_limit"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame.reset_index(drop=True)


# ------------------------------------------------------------------------------ comparisons


def time_ratios(pairs: pd.DataFrame) -> pd.Series:
    """Time to first dense-valid solution, method / reference, where both found one."""
    both = pairs[pairs["found_m"] & pairs["found_r"]]
    tm = both["time_to_first_m"].astype(float).clip(lower=TIME_FLOOR)
    tr = both["time_to_first_r"].astype(float).clip(lower=TIME_FLOOR)
    return tm / tr


def wins_losses(pairs: pd.DataFrame, suite: str) -> tuple[int, int, int]:
    """(wins, losses, ties) of the method against the reference (see the module docstring)."""
    if pairs.empty:
        return 0, 0, 0
    if suite == "verification":
        inf = math.inf
        tm = np.where(pairs["found_m"], pairs["time_to_first_m"].astype(float), inf)
        tr = np.where(pairs["found_r"], pairs["time_to_first_r"].astype(float), inf)
        tm, tr = np.maximum(tm, TIME_FLOOR), np.maximum(tr, TIME_FLOOR)
        wins = int(np.sum(tm < tr))
        losses = int(np.sum(tm > tr))
    else:
        vm = np.where(pairs["found_m"], pairs["value_m"].astype(float), -math.inf)
        vr = np.where(pairs["found_r"], pairs["value_r"].astype(float), -math.inf)
        finite = np.isfinite(vm) & np.isfinite(vr)
        tol = np.where(finite, VALUE_RTOL * np.maximum(np.abs(vr), 1.0), 0.0)
        wins = int(np.sum((vm > vr + tol) | (np.isfinite(vm) & ~np.isfinite(vr))))
        losses = int(np.sum((vr > vm + tol) | (np.isfinite(vr) & ~np.isfinite(vm))))
    return wins, losses, len(pairs) - wins - losses


def geometric_mean(values: Iterable[float]) -> float:
    """Geometric mean of positive numbers (NaN when empty)."""
    arr = np.asarray(list(values), dtype=float)
    return float(np.exp(np.mean(np.log(arr)))) if arr.size else math.nan


def paper_reference(
    method: str, rate: float | None, attack: bool, methods: list[str]
) -> str | None:
    """The paper pipeline a method is compared with: same rate (and attack stage) if run."""
    papers = [m for m in methods if m.startswith("paper-")]
    if not papers or method.startswith("paper-"):
        return None
    suffix = "+attack" if attack else ""
    candidates = []
    if rate is not None and not math.isnan(rate):
        candidates += [f"paper-{rate:g}{suffix}", f"paper-{rate:g}"]
    candidates += [f"paper-0.8{suffix}", "paper-0.8"]
    for candidate in candidates:
        if candidate in papers:
            return candidate
    plain = [m for m in papers if "+attack" not in m]
    return (plain or papers)[0]


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def suite_table(frame: pd.DataFrame, suite: str) -> pd.DataFrame:
    """The per-method metrics of one suite (numbers; see :func:`format_table` for markdown).

    Columns: ``method, runs, skipped, errors, found, robust`` (verification) or ``optimal``
    (maximization), ``median_ratio``, ``geomean_ratio`` and ``n_ratio`` (time to first
    dense-valid solution against gurobi-ml, where both found one) for verification, or
    ``median_rel_value`` (``(v - v_gurobi-ml) / max(|v_gurobi-ml|, 1e-9)``) for maximization,
    ``wins_gml, losses_gml, ties_gml``, ``paper_ref, wins_paper, losses_paper``,
    ``binaries``, ``disjunctions``, ``stable``, ``unstable``, ``bounding_seconds`` (medians; the
    bounding time is also inside the time to first solution), ``accuracy`` / ``mse`` (median surrogate
    accuracy on held-out images, or mean squared error against the dense network on uniform
    samples).
    """
    data = frame[frame["suite"] == suite]
    methods = method_order(data)
    rows = []
    for name in methods:
        sub = data[data["method"] == name]
        ran = ran_only(sub)
        first = sub.iloc[0]
        rate = first["rate"]
        row: dict[str, Any] = {
            "method": name,
            "runs": len(ran),
            "skipped": int((sub["status"] == "skipped").sum()),
            "errors": int((sub["status"] == "error").sum()),
            "found": int(ran["found"].sum()),
        }
        if suite == "verification":
            row["robust"] = int((ran["status"] == "robust").sum())
        else:
            row["optimal"] = int((ran["status"] == "optimal").sum())
        if name != BASELINE and BASELINE in methods:
            pairs = paired(data, name, BASELINE)
            if suite == "verification":
                ratios = time_ratios(pairs)
                row["median_ratio"] = float(ratios.median()) if len(ratios) else math.nan
                row["geomean_ratio"] = geometric_mean(ratios)
                row["n_ratio"] = len(ratios)
            else:
                both = pairs[pairs["found_m"] & pairs["found_r"]]
                rel = (both["value_m"] - both["value_r"]) / both["value_r"].abs().clip(lower=1e-9)
                row["median_rel_value"] = float(rel.median()) if len(rel) else math.nan
            row["wins_gml"], row["losses_gml"], row["ties_gml"] = wins_losses(pairs, suite)
        ref = paper_reference(name, rate, bool(first["attack"]), methods)
        row["paper_ref"] = ref
        if ref is not None:
            row["wins_paper"], row["losses_paper"], _ = wins_losses(paired(data, name, ref), suite)
        names = {"surrogate_accuracy": "accuracy", "surrogate_mse": "mse"}
        columns = ("binaries", "disjunctions", "stable", "unstable", "bounding_seconds")
        for column in (*columns, "surrogate_accuracy", "surrogate_mse"):
            values = pd.to_numeric(ran[column], errors="coerce").dropna()
            row[names.get(column, column)] = float(values.median()) if len(values) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def unstable_by_layer(frame: pd.DataFrame, suite: str) -> pd.DataFrame:
    """Median unstable neurons per layer, for each method and network depth.

    Columns: ``method``, ``layers`` (number of Linear layers), ``runs`` and ``median`` (a
    list, one entry per layer). Methods that report no formulation statistics are left out.
    """
    data = ran_only(frame[frame["suite"] == suite])
    rows = []
    for name in method_order(data):
        lists = [
            v
            for v in data.loc[data["method"] == name, "unstable_per_layer"]
            if isinstance(v, list) and v
        ]
        by_depth: dict[int, list[list[int]]] = {}
        for values in lists:
            by_depth.setdefault(len(values), []).append(values)
        for depth, group in sorted(by_depth.items()):
            median = np.median(np.array(group, dtype=float), axis=0)
            rows.append(
                {"method": name, "layers": depth, "runs": len(group), "median": median.tolist()}
            )
    return pd.DataFrame(rows, columns=["method", "layers", "runs", "median"])


def format_unstable(table: pd.DataFrame) -> str:
    """Markdown of :func:`unstable_by_layer`."""
    if table.empty:
        return ""
    lines = [
        "Unstable ReLU neurons per layer (median over instances; what the bounds left to the "
        "solver, by network depth):\n",
        "| method | layers | runs | unstable per layer |",
        "|---|---|---|---|",
    ]
    for row in table.itertuples():
        per_layer = " / ".join(f"{v:g}" for v in row.median)
        lines.append(f"| {row.method} | {row.layers} | {row.runs} | {per_layer} |")
    return "\n".join(lines) + "\n"


#: the columns of the main markdown table; the CSV next to the report has all of them
MAIN_COLUMNS = {
    "verification": (
        "method",
        "found / runs",
        "robust",
        "median ratio vs gurobi-ml",
        "W/L vs gurobi-ml",
        "W/L vs paper",
        "binaries",
        "surrogate acc.",
    ),
    "maximization": (
        "method",
        "found / runs",
        "optimal",
        "median rel. value vs gurobi-ml",
        "W/L vs gurobi-ml",
        "W/L vs paper",
        "binaries",
        "surrogate MSE",
    ),
}


def format_table(table: pd.DataFrame, suite: str, full: bool = False) -> str:
    """Markdown of :func:`suite_table`: the :data:`MAIN_COLUMNS` (``full``: every column)."""
    if table.empty:
        return "_no results_\n"
    out = pd.DataFrame({"method": table["method"]})
    out["found / runs"] = [f"{f}/{r}" for f, r in zip(table["found"], table["runs"], strict=True)]
    if suite == "verification":
        out["robust"] = table["robust"]
        out["median ratio vs gurobi-ml"] = table.get("median_ratio", pd.Series(dtype=float)).map(
            _fmt
        )
        out["geo-mean ratio"] = table.get("geomean_ratio", pd.Series(dtype=float)).map(_fmt)
        out["pairs"] = table.get("n_ratio", pd.Series(dtype=float)).map(
            lambda v: _fmt(None if pd.isna(v) else int(v))
        )
    else:
        out["optimal"] = table["optimal"]
        out["median rel. value vs gurobi-ml"] = table.get(
            "median_rel_value", pd.Series(dtype=float)
        ).map(lambda v: _fmt(v, 3))
    for col, label in (("gml", "gurobi-ml"), ("paper", "paper")):
        w, lo = table.get(f"wins_{col}"), table.get(f"losses_{col}")
        if w is None:
            out[f"W/L vs {label}"] = "-"
            continue
        out[f"W/L vs {label}"] = [
            "-" if pd.isna(a) else f"{int(a)}/{int(b)}" for a, b in zip(w, lo, strict=True)
        ]
    out["paper ref"] = table["paper_ref"].map(lambda v: v if isinstance(v, str) else "-")
    out["binaries"] = table["binaries"].map(lambda v: _fmt(v, 0))
    out["ReLU disjunctions"] = table["disjunctions"].map(lambda v: _fmt(v, 0))
    out["stable neurons"] = table["stable"].map(lambda v: _fmt(v, 0))
    out["unstable neurons"] = table["unstable"].map(lambda v: _fmt(v, 0))
    out["bounding s"] = table["bounding_seconds"].map(lambda v: _fmt(v, 2))
    if suite == "verification":
        out["surrogate acc."] = table["accuracy"].map(lambda v: _fmt(v, 3))
    else:
        out["surrogate MSE"] = table["mse"].map(lambda v: "-" if pd.isna(v) else f"{v:.3g}")
    notes = table["skipped"] + table["errors"]
    if notes.any():
        out["skipped/errors"] = [
            f"{s}/{e}" for s, e in zip(table["skipped"], table["errors"], strict=True)
        ]
    if not full:
        keep = [c for c in MAIN_COLUMNS[suite] if c in out] + (
            ["skipped/errors"] if "skipped/errors" in out else []
        )
        out = out[keep]
    return markdown_table(out)


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub markdown table of a DataFrame (without needing ``tabulate``).

    Examples
    --------
    >>> print(markdown_table(pd.DataFrame({"a": [1], "b": ["x"]})), end="")
    | a | b |
    |---|---|
    | 1 | x |
    """
    cells = [[str(c) for c in table.columns]]
    cells += [[str(v).replace("|", "\\|") for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("---" for _ in table.columns) + "|")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ reading


def _diagonal_shares(frame: pd.DataFrame, method: str, reference: str) -> tuple[int, int, int]:
    """Points below / above / on the diagonal of the scatter (method faster / slower / tie)."""
    pairs = paired(frame[frame["suite"] == "verification"], method, reference)
    w, lo, t = wins_losses(pairs, "verification")
    return w, lo, t


def reading(frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    """A short text written from this run's numbers (no canned claims)."""
    lines: list[str] = []
    for suite, table in tables.items():
        if table.empty:
            continue
        data = frame[frame["suite"] == suite]
        n_inst = data["instance"].nunique()
        limits = sorted(set(data["time_limit"].dropna()))
        limit = "/".join(f"{t:g}" for t in limits) or "?"
        t = table.set_index("method")
        head = f"**{suite.capitalize()}** ({n_inst} instances, {limit} s per run):"
        parts = []
        if BASELINE in t.index:
            b = t.loc[BASELINE]
            what = "dense-adversarial inputs" if suite == "verification" else "a solution"
            extra = (
                f", proved {int(b['robust'])} robust"
                if suite == "verification"
                else f", proved {int(b['optimal'])} optimal"
            )
            parts.append(f"gurobi-ml found {what} on {int(b['found'])}/{int(b['runs'])}{extra}.")
        ran = t[t["runs"] > 0]
        if not ran.empty:
            share = ran["found"] / ran["runs"]
            best = share.max()
            leaders = [m for m in ran.index if share[m] == best]
            if best > 0:
                parts.append(
                    f"Most instances solved: {', '.join(leaders[:4])}"
                    f"{' and others' if len(leaders) > 4 else ''} ({best:.0%})."
                )
            else:
                what = "a dense-adversarial input" if suite == "verification" else "a solution"
                parts.append(f"No method found {what} on any instance.")
        if suite == "verification" and "median_ratio" in t:
            cand = t[(t.get("n_ratio", 0) > 0)].dropna(subset=["median_ratio"])
            if not cand.empty:
                fastest = cand["median_ratio"].idxmin()
                r = cand.loc[fastest]
                detail = (
                    f"(median {r['median_ratio']:.2f}x, geometric mean {r['geomean_ratio']:.2f}x "
                    f"over {int(r['n_ratio'])} instances both solved; "
                    f"{int(r['wins_gml'])} wins, {int(r['losses_gml'])} losses)"
                )
                if r["median_ratio"] < 1:
                    parts.append(
                        f"Fastest against gurobi-ml by median time ratio: {fastest} {detail}."
                    )
                else:
                    parts.append(
                        f"No method was faster than gurobi-ml by median time ratio; the "
                        f"closest: {fastest} {detail}."
                    )
                milp = cand[~cand.index.str.contains(r"\+attack") & (cand.index != "attack")]
                if not milp.empty and milp["median_ratio"].idxmin() != fastest:
                    best = milp["median_ratio"].idxmin()
                    parts.append(
                        f"Best without an attack stage: {best} (median "
                        f"{milp.loc[best, 'median_ratio']:.2f}x, "
                        f"{int(milp.loc[best, 'wins_gml'])} wins, "
                        f"{int(milp.loc[best, 'losses_gml'])} losses)."
                    )
                # "slower" only for a ratio above 1, which is slower than gurobi-ml
                slower = cand[cand["median_ratio"] > 1]
                if len(slower) and slower["median_ratio"].idxmax() != fastest:
                    slowest = slower["median_ratio"].idxmax()
                    parts.append(
                        f"Slowest, slower than gurobi-ml: {slowest} (median "
                        f"{slower.loc[slowest, 'median_ratio']:.2f}x)."
                    )
                elif cand["median_ratio"].max() < 1 and len(cand) > 1:
                    parts.append(
                        f"Every method with pairs was faster than gurobi-ml by median time "
                        f"ratio ({len(cand)} methods)."
                    )
        if suite == "maximization" and "wins_gml" in t:
            cand = t.dropna(subset=["wins_gml"])
            if not cand.empty:
                net = cand["wins_gml"] - cand["losses_gml"]
                top = net.idxmax()
                parts.append(
                    f"Best dense values against gurobi-ml: {top} "
                    f"({int(cand.loc[top, 'wins_gml'])} better, "
                    f"{int(cand.loc[top, 'losses_gml'])} worse)."
                )
        # the same surrogates with and without fallback
        partners = {
            m: m.replace("-nofallback", "")
            for m in t.index
            if m.endswith("-nofallback") and m.replace("-nofallback", "") in t.index
        }
        fallback, nofallback = t.loc[list(partners.values())], t.loc[list(partners)]
        if (
            len(fallback)
            and len(nofallback)
            and fallback["runs"].sum()
            and nofallback["runs"].sum()
        ):
            parts.append(
                f"The same surrogates with fallback solved {fallback['found'].sum()}/"
                f"{fallback['runs'].sum()} runs, without fallback "
                f"{nofallback['found'].sum()}/{nofallback['runs'].sum()}."
            )
        if "attack" in t.index and t.loc["attack", "runs"]:
            parts.append(
                f"The attack alone solved {int(t.loc['attack', 'found'])}/"
                f"{int(t.loc['attack', 'runs'])}."
            )
        if suite == "verification":
            for rate in sorted(set(data["rate"].dropna())):
                for name, ref in ((f"paper-{rate:g}", BASELINE), (f"surrogate-{rate:g}", "dense")):
                    if name in t.index and ref in t.index:
                        below, above, tie = _diagonal_shares(frame, name, ref)
                        total = below + above + tie
                        if total:
                            parts.append(
                                f"{name} beat {ref} on {below}/{total} instances "
                                f"and lost on {above}."
                            )
        errors = int(t["errors"].sum())
        skipped = int(t["skipped"].sum())
        if errors or skipped:
            parts.append(f"{skipped} runs skipped and {errors} failed (see the tables).")
        lines.append(head + " " + " ".join(parts))
    return "\n\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ report


def write_report(
    results: str | os.PathLike | pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    plots: bool = True,
) -> str:
    """Write ``report.md``, one CSV per suite and the PNG plots; return the markdown.

    Parameters
    ----------
    results : path or DataFrame
        A results file (JSON lines) or :func:`load_results` output.
    out_dir : path
        Created if needed.
    plots : bool
        Write the PNG plots.

    Returns
    -------
    str
        The markdown of the report.
    """
    frame = results if isinstance(results, pd.DataFrame) else load_results(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suites = [s for s in ("verification", "maximization") if s in set(frame["suite"])]
    tables = {s: suite_table(frame, s) for s in suites}
    images: dict[str, list[str]] = {s: [] for s in suites}
    if plots and not frame.empty:
        from .plots import make_plots

        images = make_plots(frame, out)
    parts = ["# Benchmark report\n"]
    licences = sorted(set(frame["licence"].dropna())) if "licence" in frame else []
    if licences:
        parts.append(f"Gurobi licence: {', '.join(licences)}.\n")
    parts.append("## Reading\n")
    parts.append(reading(frame, tables) if suites else "No results.\n")
    for suite in suites:
        parts.append(f"## {suite.capitalize()}\n")
        if suite == "verification":
            parts.append(
                "Time ratio: time to the first input adversarial for the dense network "
                "(pruning, finetuning, bounding and attack included), method / gurobi-ml, on the "
                "instances both solved (below 1: faster). W/L: instances won/lost against "
                "gurobi-ml and against the paper pipeline (`paper ref`).\n"
            )
        else:
            parts.append(
                "Relative value: (best dense value - gurobi-ml's) / |gurobi-ml's| on the "
                "instances both solved (above 0: better). W/L: higher/lower best dense value.\n"
            )
        parts.append(format_table(tables[suite], suite))
        parts.append(
            f"Every column (geometric-mean ratios, pairs, paper reference, disjunctions, "
            f"stable and unstable neurons, bounding time) is in `{suite}.csv`.\n"
        )
        parts.append(format_unstable(unstable_by_layer(frame, suite)))
        tables[suite].to_csv(out / f"{suite}.csv", index=False)
        for image in images.get(suite, []):
            parts.append(f"![{image}]({image})\n")
    from .mnistfc import format_mnistfc, mnistfc_summary

    mnistfc = mnistfc_summary(frame.to_dict("records")) if "instance" in frame else []
    if mnistfc:
        parts.append("## mnistfc: per-class loops and find_adversarial\n")
        parts.append(
            "Ratios: gurobi-ml's per-class loop time / the method's (above 1: faster), an "
            "unsolved run counting its time limit; geometric means over the properties both "
            "ran, on proofs and on attacks. Wrong: adversarial inputs torch does not "
            "misclassify, or robust answers contradicted by another method's input.\n"
        )
        parts.append(format_mnistfc(mnistfc))
    markdown = "\n".join(parts)
    (out / "report.md").write_text(markdown, encoding="utf-8")
    return markdown
