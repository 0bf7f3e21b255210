"""What the report and the plots both read from a results frame: the baseline, the order of
the methods, the runs that ran, and pairs of methods on the same instances.

Kept apart so that ``report`` imports ``plots`` and neither imports the other back.
"""

from __future__ import annotations

import math

import pandas as pd

BASELINE = "gurobi-ml"
#: Statuses of runs that did not run (or crashed): left out of every comparison.
NOT_RUN = ("skipped", "error")


def method_order(frame: pd.DataFrame) -> list[str]:
    """Methods in the profile's order (``order`` field), then in order of appearance."""
    first = {name: i for i, name in enumerate(dict.fromkeys(frame["method"]))}
    if "order" in frame:
        rank = pd.to_numeric(frame["order"], errors="coerce").groupby(frame["method"]).min()
        return sorted(first, key=lambda m: (rank.get(m, math.inf), first[m]))
    return list(first)


def ran_only(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs that ran (not skipped, no error)."""
    return frame[~frame["status"].isin(NOT_RUN)]


def paired(frame: pd.DataFrame, method: str, reference: str) -> pd.DataFrame:
    """Instances both methods ran, with suffixed columns ``_m`` (method) and ``_r``."""
    ran = ran_only(frame)
    a = ran[ran["method"] == method].set_index(["suite", "instance"])
    b = ran[ran["method"] == reference].set_index(["suite", "instance"])
    return pd.merge(a, b, left_index=True, right_index=True, suffixes=("_m", "_r"))


__all__ = ["BASELINE", "NOT_RUN", "method_order", "paired", "ran_only"]
