"""PNG plots of a results DataFrame (matplotlib, Agg backend).

- ``scatter_verification.png``: the paper's log-log scatter of the dense method's time against
  the surrogate's time to the first dense-adversarial input, one panel per pruning rate, points
  coloured by the surrogate's accuracy, with the shares below (surrogate faster) and above the
  diagonal. Pairs: ``gurobi-ml`` vs ``paper-R``, and ``dense`` vs ``surrogate-R``. A run that
  found nothing is drawn at the time limit (hollow marker).
- ``success_vs_rate.png``: share of verification instances solved against the pruning rate, one
  line per family, with the unpruned methods as horizontal lines.
- ``maximization_values.png``: gurobi-ml's best dense value against each method's.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .report import BASELINE, _ran, method_order, paired  # noqa: E402

_PAIRS = (("gurobi-ml", "paper-{r:g}"), ("dense", "surrogate-{r:g}"))


def _times(pairs: pd.DataFrame, limit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tr = np.where(pairs["found_r"], pairs["time_to_first_r"].astype(float), limit)
    tm = np.where(pairs["found_m"], pairs["time_to_first_m"].astype(float), limit)
    censored = ~(pairs["found_r"].to_numpy(bool) & pairs["found_m"].to_numpy(bool))
    return np.maximum(tr, 1e-3), np.maximum(tm, 1e-3), censored


def scatter_verification(frame: pd.DataFrame, path: Path) -> bool:
    """The dense-vs-surrogate time scatter per pruning rate; False when there is nothing."""
    data = frame[frame["suite"] == "verification"]
    rates = sorted(set(data["rate"].dropna()))
    methods = set(data["method"])
    panels = [
        (r, ref, name.format(r=r))
        for r in rates
        for ref, name in _PAIRS
        if ref in methods and name.format(r=r) in methods
    ]
    panels = [p for p in panels if not paired(data, p[2], p[1]).empty]
    if not panels:
        return False
    limit = float(data["time_limit"].max()) if data["time_limit"].notna().any() else 1.0
    cols = min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.6 * cols + 1.0, 4.2 * rows), squeeze=False, layout="constrained"
    )
    norm = matplotlib.colors.Normalize(0.0, 1.0)
    mappable = None
    for ax, (rate, ref, name) in zip(axes.flat, panels, strict=False):
        pairs = paired(data, name, ref)
        tr, tm, censored = _times(pairs, limit)
        acc = pd.to_numeric(pairs["surrogate_accuracy_m"], errors="coerce").to_numpy(float)
        colors = np.where(np.isnan(acc), 0.5, acc)
        mappable = ax.scatter(
            tr[~censored], tm[~censored], c=colors[~censored], cmap="viridis", norm=norm, s=30
        )
        ax.scatter(
            tr[censored],
            tm[censored],
            facecolors="none",
            edgecolors=plt.cm.viridis(norm(colors[censored])),
            s=30,
        )
        lo = min(tr.min(), tm.min(), 1e-2) / 1.5
        hi = max(limit, tr.max(), tm.max()) * 1.5
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        n = len(tr)
        below, above = int(np.sum(tm < tr)), int(np.sum(tm > tr))
        ax.set_title(f"rate {rate:g}: {name} vs {ref}", fontsize=9)
        ax.text(
            0.03,
            0.97,
            f"above: {above / n:.0%}\nbelow: {below / n:.0%}\n(n={n})",
            transform=ax.transAxes,
            va="top",
            fontsize=8,
        )
        ax.set_xlabel(f"{ref} time to first (s)")
        ax.set_ylabel(f"{name} time (s)")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, label="surrogate accuracy", shrink=0.8)
    fig.suptitle("Time to the first dense-adversarial input (hollow: not found, at the limit)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def success_vs_rate(frame: pd.DataFrame, path: Path) -> bool:
    """Share of verification instances solved against the pruning rate."""
    data = _ran(frame[frame["suite"] == "verification"])
    if data.empty:
        return False
    share = data.groupby("method")["found"].mean()
    pruned = data.dropna(subset=["rate"])
    fig, ax = plt.subplots(figsize=(8.5, 4.4), layout="constrained")
    for family, group in pruned.groupby("family"):
        curve = group.groupby("rate")["found"].mean().sort_index()
        ax.plot(curve.index, curve.to_numpy(), marker="o", label=str(family))
    unpruned = [m for m in share.index if m not in set(pruned["method"])]
    for i, name in enumerate(unpruned):
        ax.axhline(share[name], ls=":", color=f"C{(i + 5) % 10}", label=name)
    ax.set_xlabel("pruning rate")
    ax.set_ylabel("share of instances with a dense-adversarial input")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("Success rate vs pruning rate")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def maximization_values(frame: pd.DataFrame, path: Path) -> bool:
    """gurobi-ml's best dense value against every other method's."""
    data = frame[frame["suite"] == "maximization"]
    if BASELINE not in set(data["method"]):
        return False
    fig, ax = plt.subplots(figsize=(8.5, 5.0), layout="constrained")
    drawn = False
    values = []
    for i, name in enumerate(m for m in method_order(data) if m != BASELINE):
        pairs = paired(data, name, BASELINE)
        pairs = pairs[pairs["found_m"] & pairs["found_r"]]
        if pairs.empty:
            continue
        x, y = pairs["value_r"].to_numpy(float), pairs["value_m"].to_numpy(float)
        ax.scatter(x, y, s=25, color=f"C{i % 10}", marker="os^vD<>"[i // 10 % 7], label=name)
        values += [*x, *y]
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    lo, hi = min(values), max(values)
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
    ax.set_xlabel("gurobi-ml best dense value")
    ax.set_ylabel("method's best dense value (above the diagonal: better)")
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("Function maximization")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def make_plots(frame: pd.DataFrame, out_dir: Path) -> dict[str, list[str]]:
    """Write every plot that has data; return the file names per suite."""
    out_dir = Path(out_dir)
    images: dict[str, list[str]] = {"verification": [], "maximization": []}
    if scatter_verification(frame, out_dir / "scatter_verification.png"):
        images["verification"].append("scatter_verification.png")
    if success_vs_rate(frame, out_dir / "success_vs_rate.png"):
        images["verification"].append("success_vs_rate.png")
    if maximization_values(frame, out_dir / "maximization_values.png"):
        images["maximization"].append("maximization_values.png")
    return images
