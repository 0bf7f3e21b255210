"""The ``mnistfc`` comparison: verdicts, solved counts and time ratios against gurobi-ml.

Reads the records of the ``mnistfc`` profiles (instances ``mnistfc-<arch>-...``) and reports,
per architecture and method: properties, solved (a verdict within the time limit), skipped
(too large for the licence), wrong verdicts, total time, bounding and solving time, and the
ratios of gurobi-ml's per-class loop to the method (above 1: faster than gurobi-ml): total
time, geometric mean over the properties both ran (an unsolved run counts its time limit),
separately on proofs (``robust``) and attacks (``adversarial``), and the smallest ratio.

A verdict is wrong when a ``adversarial`` answer's input is not misclassified by the torch
network (the runner then records it as not ``found``), or when ``robust`` is contradicted by
another method's adversarial input on the same property.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

REFERENCE = "gurobi-ml-loop"
SOLVED = ("adversarial", "robust")


def _arch(instance: str) -> str:
    return instance.split("-")[1]


def _geomean(values: list[float]) -> float | None:
    values = [v for v in values if v and v > 0 and math.isfinite(v)]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def mnistfc_summary(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (architecture, method) with the figures described in the module docstring.

    Examples
    --------
    >>> rows = mnistfc_summary([
    ...     {"instance": "mnistfc-2x256-s0-img1-r0.03", "method": "gurobi-ml-loop",
    ...      "status": "robust", "runtime": 10.0, "time_limit": 60},
    ...     {"instance": "mnistfc-2x256-s0-img1-r0.03", "method": "dense+attack",
    ...      "status": "robust", "runtime": 1.0, "time_limit": 60, "bounding_seconds": 0.5}])
    >>> [(r["method"], r["solved"], round(r["geomean_ratio"], 6)) for r in rows]
    [('dense+attack', 1, 10.0), ('gurobi-ml-loop', 1, 1.0)]
    """
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        if str(r.get("instance", "")).startswith("mnistfc-"):
            latest[(r["instance"], r["method"])] = r
    by_instance: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (instance, method), r in latest.items():
        by_instance[instance][method] = r
    adversarial_found = {
        inst for inst, runs in by_instance.items() if any(r.get("found") for r in runs.values())
    }
    rows = []
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for instance, method in latest:
        groups[(_arch(instance), method)].append(instance)
    for (arch, method), instances in sorted(groups.items()):
        row: dict[str, Any] = {"arch": arch, "method": method, "properties": len(instances)}
        ran = [latest[(i, method)] for i in instances]
        row["skipped"] = sum(r.get("status") == "skipped" for r in ran)
        row["errors"] = sum(r.get("status") == "error" for r in ran)
        row["solved"] = sum(r.get("status") in SOLVED for r in ran)
        row["adversarial"] = sum(r.get("status") == "adversarial" for r in ran)
        row["robust"] = sum(r.get("status") == "robust" for r in ran)
        row["wrong"] = sum(
            (r.get("status") == "adversarial" and not r.get("found"))
            or (r.get("status") == "robust" and r["instance"] in adversarial_found)
            for r in ran
        )

        def cost(r: dict[str, Any]) -> float:
            limit = float(r.get("time_limit") or 0.0)
            if r.get("status") in SOLVED:
                return float(r.get("runtime") or 0.0)
            return max(limit, float(r.get("runtime") or 0.0))

        measured = [r for r in ran if r.get("status") not in ("skipped", "error")]
        row["total_seconds"] = sum(cost(r) for r in measured)
        row["bounding_seconds"] = sum(float(r.get("bounding_seconds") or 0.0) for r in measured)
        row["solving_seconds"] = row["total_seconds"] - row["bounding_seconds"]
        ratios: dict[str, list[float]] = {"all": [], "robust": [], "adversarial": []}
        ref_total = own_total = 0.0
        for r in measured:
            ref = latest.get((r["instance"], REFERENCE))
            if ref is None or ref.get("status") in ("skipped", "error"):
                continue
            ratio = cost(ref) / max(cost(r), 1e-3)
            ref_total += cost(ref)
            own_total += cost(r)
            ratios["all"].append(ratio)
            verdicts = {ref.get("status"), r.get("status")} & set(SOLVED)
            if len(verdicts) == 1:
                ratios[verdicts.pop()].append(ratio)
        row["compared"] = len(ratios["all"])
        row["total_ratio"] = ref_total / own_total if own_total else None
        row["geomean_ratio"] = _geomean(ratios["all"])
        row["geomean_ratio_proofs"] = _geomean(ratios["robust"])
        row["geomean_ratio_attacks"] = _geomean(ratios["adversarial"])
        row["min_ratio"] = min(ratios["all"]) if ratios["all"] else None
        row["slower_than_reference"] = sum(x < 1.0 for x in ratios["all"])
        rows.append(row)
    return rows


def format_mnistfc(rows: list[dict[str, Any]]) -> str:
    """The summary as a markdown table."""
    if not rows:
        return ""

    def f(value: Any, digits: int = 2) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return str(value)

    head = (
        "| arch | method | properties | solved | adv. | robust | skipped | errors | wrong | "
        "total s | bounding s | solving s | total ratio | geomean | geomean proofs | "
        "geomean attacks | min ratio | slower than gurobi-ml |"
    )
    lines = [head, "|" + "---|" * 18]
    for r in rows:
        cells = [
            r["arch"],
            r["method"],
            r["properties"],
            r["solved"],
            r["adversarial"],
            r["robust"],
            r["skipped"],
            r["errors"],
            r["wrong"],
            f(r["total_seconds"], 1),
            f(r["bounding_seconds"], 1),
            f(r["solving_seconds"], 1),
            f(r["total_ratio"]),
            f(r["geomean_ratio"]),
            f(r["geomean_ratio_proofs"]),
            f(r["geomean_ratio_attacks"]),
            f(r["min_ratio"]),
            f"{r['slower_than_reference']} of {r['compared']}" if r["compared"] else "-",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
