"""Short, readable text for result objects (``summary()``, ``__str__`` and a compact ``repr``).

Every result type of the package (:class:`~gurobi_sparse_surrogate.SwapResult`,
:class:`~gurobi_sparse_surrogate.AdversarialResult`,
:class:`~gurobi_sparse_surrogate.MaximizationResult`) prints the same way: a title line with the
status, then the objective, the times (first valid answer, total, where the time went) and one
row per phase of the search.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gurobipy import GRB

_STATUS_NAMES = {getattr(GRB.Status, name): name for name in dir(GRB.Status) if name.isupper()}


def gurobi_status_name(code: Any) -> str:
    """``GRB.Status`` name of a status code (``"OPTIMAL"``, ``"TIME_LIMIT"``...)."""
    return _STATUS_NAMES.get(code, "" if code is None else str(code))


def number(value: float | None, digits: int = 6) -> str:
    """A float in ``digits`` significant digits, or ``-`` for None."""
    return "-" if value is None else f"{value:.{digits}g}"


def seconds(value: float | None) -> str:
    """Seconds with two decimals, or ``-`` for None."""
    return "-" if value is None else f"{value:.2f} s"


def phases_from_history(history: Iterable[Any]) -> list[dict]:
    """Phases in the order they first appear in ``history``, with incumbents and valid ones.

    ``history`` holds :class:`~gurobi_sparse_surrogate.solving.Incumbent` records.
    """
    phases: dict[str, dict] = {}
    for record in history:
        entry = phases.setdefault(record.phase, {"name": record.phase, "incumbents": 0, "valid": 0})
        entry["incumbents"] += 1
        entry["valid"] += int(bool(record.valid))
    return list(phases.values())


def phase_table(phases: Sequence[Mapping[str, Any]]) -> list[str]:
    """Rows of a phase table: name, seconds, incumbents, valid, Gurobi status or skip reason."""
    if not phases:
        return ["  no phase ran"]
    width = max(12, *(len(str(p["name"])) for p in phases))
    rows = [f"  {'phase':<{width}} {'seconds':>8} {'incumbents':>10} {'valid':>6}  status"]
    for p in phases:
        spent = "-" if p.get("seconds") is None else f"{p['seconds']:.2f}"
        if "skipped" in p:
            reason = str(p["skipped"]).split(";")[0].split(". ")[0]
            status = f"skipped: {reason[:70]}"
        else:
            status = gurobi_status_name(p.get("gurobi_status"))
        rows.append(
            f"  {str(p['name']):<{width}} {spent:>8} {p.get('incumbents', 0):>10} "
            f"{p.get('valid', 0):>6}  {status}".rstrip()
        )
    return rows


def compact_repr(name: str, fields: Mapping[str, Any]) -> str:
    """``Name(key=value, ...)`` with floats in 6 significant digits."""
    parts = []
    for key, value in fields.items():
        shown = number(value) if isinstance(value, float) else repr(value)
        parts.append(f"{key}={shown}")
    return f"{name}({', '.join(parts)})"


__all__ = [
    "compact_repr",
    "gurobi_status_name",
    "number",
    "phase_table",
    "phases_from_history",
    "seconds",
]
