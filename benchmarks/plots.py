"""PNG plots of a results DataFrame (matplotlib, Agg backend).

- ``scatter_verification.png``: the paper's log-log scatter of the dense method's time against
  the surrogate's time to the first dense-adversarial input, one panel per pruning rate, points
  coloured by the surrogate's accuracy, with the shares below (surrogate faster) and above the
  diagonal. Pairs: ``gurobi-ml`` vs ``paper-R``, and ``dense`` vs ``surrogate-R``. A run that
  found nothing is drawn beyond the time limit (dotted lines), as a hollow marker jittered so
  that several timeouts do not hide each other.
- ``success_vs_rate.png``: share of verification instances solved against the pruning rate, one
  line per family, with the unpruned methods as horizontal lines.
- ``maximization_values.png``: gurobi-ml's best dense value against each method's.

Each method family has its own colour and each method within a family its own marker
(:func:`method_style`), so that no two methods of a plot look alike. ``*_figure`` functions
return the matplotlib figure (for the documentation's gallery); the others write PNG files.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .frames import BASELINE, method_order, paired, ran_only  # noqa: E402

_PAIRS = (("gurobi-ml", "paper-{r:g}"), ("dense", "surrogate-{r:g}"))

#: one colour per method kind (tab10), one marker per method within a kind
_KIND_COLOURS = {
    "gurobi-ml": "tab:gray",
    "paper": "tab:orange",
    "dense": "tab:blue",
    "surrogate": "tab:green",
    "attack": "tab:red",
}
_MARKERS = "osD^v<>pPX*h"
_SPARE_COLOURS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
#: timeouts are drawn this factor beyond the time limit, with a multiplicative jitter
_TIMEOUT_FACTOR = 1.6
_JITTER = 0.12


def _kind(name: str) -> str:
    base = name.partition("+")[0]
    for kind in ("gurobi-ml", "paper", "dense", "surrogate", "attack"):
        if base == kind or base.startswith(kind + "-"):
            return kind
    return base


def method_style(methods: list[str]) -> dict[str, dict]:
    """Colour, marker and line style per method: colour by kind, marker by method in a kind,
    dashed lines for the ``+attack`` variants.

    Examples
    --------
    >>> style = method_style(["gurobi-ml", "surrogate-0.8", "surrogate-0.9", "paper-0.8"])
    >>> style["surrogate-0.8"]["color"] == style["surrogate-0.9"]["color"]
    True
    >>> style["surrogate-0.8"]["marker"] != style["surrogate-0.9"]["marker"]
    True
    >>> len({(s["color"], s["marker"]) for s in style.values()})
    4
    """
    styles: dict[str, dict] = {}
    per_kind: dict[str, int] = {}
    spare = iter(_SPARE_COLOURS * 4)
    colours = dict(_KIND_COLOURS)
    for name in methods:
        kind = _kind(name)
        if kind not in colours:
            colours[kind] = next(spare)
        k = per_kind.get(kind, 0)
        per_kind[kind] = k + 1
        styles[name] = {
            "color": colours[kind],
            "marker": _MARKERS[k % len(_MARKERS)],
            "linestyle": "--" if "+attack" in name else "-",
        }
    return styles


def _jitter(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """Spread points that sit on one value (timeouts) by a seeded multiplicative jitter."""
    rng = np.random.default_rng(seed)
    return values * np.exp(rng.uniform(-_JITTER, _JITTER, values.shape))


def _times(pairs: pd.DataFrame, limit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times of reference and method; a run that found nothing sits beyond the limit, jittered."""
    found_r = pairs["found_r"].to_numpy(bool)
    found_m = pairs["found_m"].to_numpy(bool)
    beyond = limit * _TIMEOUT_FACTOR
    tr = np.where(found_r, pairs["time_to_first_r"].astype(float), beyond)
    tm = np.where(found_m, pairs["time_to_first_m"].astype(float), beyond)
    tr = np.where(found_r, tr, _jitter(tr, 1))
    tm = np.where(found_m, tm, _jitter(tm, 2))
    censored = ~(found_r & found_m)
    return np.maximum(tr, 1e-3), np.maximum(tm, 1e-3), censored


def scatter_verification(frame: pd.DataFrame, path: Path) -> bool:
    """Write the dense-vs-surrogate time scatter; False when there is nothing to draw."""
    fig = scatter_verification_figure(frame)
    if fig is None:
        return False
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def scatter_verification_figure(frame: pd.DataFrame) -> plt.Figure | None:
    """The dense-vs-surrogate time scatter per pruning rate (None when there is nothing)."""
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
        return None
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
        hi = max(limit * _TIMEOUT_FACTOR, tr.max(), tm.max()) * 1.3
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.axvline(limit, color="0.5", ls=":", lw=0.8)
        ax.axhline(limit, color="0.5", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        n = len(tr)
        # shares from the runs themselves, not from the jittered positions of the timeouts
        found_m, found_r = pairs["found_m"].to_numpy(bool), pairs["found_r"].to_numpy(bool)
        t_m = pairs["time_to_first_m"].to_numpy(float)
        t_r = pairs["time_to_first_r"].to_numpy(float)
        faster = found_m & (~found_r | (t_m < t_r))
        slower = found_r & (~found_m | (t_r < t_m))
        below, above = int(faster.sum()), int(slower.sum())
        ax.set_title(f"rate {rate:g}: {name} vs {ref}", fontsize=9)
        ax.text(
            0.03,
            0.97,
            f"below (pruned first): {below / n:.0%}\nabove (reference first): {above / n:.0%}\n"
            f"ties or neither: {(n - below - above) / n:.0%}\n(n={n})",
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
    fig.suptitle(
        "Time to the first dense-adversarial input\n(hollow: not found, drawn beyond the "
        "time limit, dotted)",
        fontsize=10,
    )
    return fig


def success_vs_rate(frame: pd.DataFrame, path: Path) -> bool:
    """Share of verification instances solved against the pruning rate."""
    data = ran_only(frame[frame["suite"] == "verification"])
    if data.empty:
        return False
    share = data.groupby("method")["found"].mean()
    pruned = data.dropna(subset=["rate"])
    fig, ax = plt.subplots(figsize=(8.5, 4.4), layout="constrained")
    families = [str(f) for f in dict.fromkeys(pruned["family"])]
    unpruned = [m for m in share.index if m not in set(pruned["method"])]
    style = method_style(families + unpruned)
    for family, group in pruned.groupby("family"):
        curve = group.groupby("rate")["found"].mean().sort_index()
        st = style[str(family)]
        ax.plot(
            curve.index,
            curve.to_numpy(),
            marker=st["marker"],
            color=st["color"],
            ls=st["linestyle"],
            label=str(family),
        )
    for name in unpruned:
        st = style[name]
        ax.axhline(
            share[name], ls=":" if "+attack" not in name else "-.", color=st["color"], label=name
        )
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
    others = [m for m in method_order(data) if m != BASELINE]
    style = method_style(others)
    for name in others:
        pairs = paired(data, name, BASELINE)
        pairs = pairs[pairs["found_m"] & pairs["found_r"]]
        if pairs.empty:
            continue
        x, y = pairs["value_r"].to_numpy(float), pairs["value_m"].to_numpy(float)
        st = style[name]
        ax.scatter(x, y, s=25, color=st["color"], marker=st["marker"], label=name)
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
