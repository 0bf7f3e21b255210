"""Pre-activation bounds of every neuron, computed in a pass of their own.

A bounding *method* is a sequence of *stages* (:class:`BoundingStage`). Bounds are computed
layer by layer: for each layer every stage of the method is run in turn, each one given the
bounds already proven for the earlier layers and the best bounds so far for this layer, and
the results are intersected. Stronger stages (linear relaxations, LP or MILP on a neuron's
cone of influence) plug in by adding a stage; the formulation only ever sees the resulting
:class:`NetworkBounds`.

All arrays have a leading sample axis: the bounds of layer ``i`` are ``(k, n_i)`` arrays for
``k`` independent copies of the network (one per row of a 2-D input MVar).
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from ..exceptions import ShapeMismatchError, UnsupportedNetworkError
from ..network.extraction import Layer
from ..verbosity import progress_bar, verbose_logging

logger = logging.getLogger(__name__)

#: inside a bounding pass: ids of the notes logged so far (inner passes, such as the linear pass
#: that ``"auto"`` runs first, share the notes list, get no progress bar and log each note once)
_in_pass: contextvars.ContextVar[set | None] = contextvars.ContextVar("gss_pass", default=None)


@dataclass
class BoundingProblem:
    """What a bounding stage may read: the layers, the input domain and earlier bounds.

    Attributes
    ----------
    layers : list of Layer
    input_lower, input_upper : numpy.ndarray
        ``(k, n_in)`` bounds of the input variables (may hold infinities).
    domain : object or None
        An input domain (:class:`~gurobi_sparse_surrogate.domains.Box`, ``LinfBall`` or
        ``L1Ball``) known to hold for every input row, or None.
    lower, upper : list of numpy.ndarray
        Pre-activation bounds of the layers already bounded (filled as the pass proceeds).
    options : dict
        Method options (time budgets and the like) that stages may read.
    """

    layers: Sequence[Layer]
    input_lower: np.ndarray
    input_upper: np.ndarray
    domain: Any = None
    lower: list[np.ndarray] = field(default_factory=list)
    upper: list[np.ndarray] = field(default_factory=list)
    options: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        """Number of independent input rows."""
        return self.input_lower.shape[0]

    def layer_input_bounds(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the values that enter layer ``index`` (post-activation of the previous)."""
        if index == 0:
            return self.input_lower, self.input_upper
        previous = self.layers[index - 1]
        return post_activation(self.lower[index - 1], self.upper[index - 1], previous.relu)


class BoundingStage(Protocol):
    """One way of bounding the pre-activations of a layer.

    ``layer_bounds`` returns valid (sound) bounds for layer ``index``; it may use
    ``problem.lower[:index]`` and ``problem.upper[:index]`` and the current ``lower``/``upper``
    of the layer (the best found by earlier stages). The driver intersects the result with
    the current bounds, so a stage never has to re-check what it did not improve.
    """

    name: str

    def layer_bounds(
        self, problem: BoundingProblem, index: int, lower: np.ndarray, upper: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


def post_activation(
    lower: np.ndarray, upper: np.ndarray, relu: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds after the layer's activation."""
    if relu:
        return np.maximum(lower, 0.0), np.maximum(upper, 0.0)
    return lower, upper


def interval_affine(
    weight: sp.csr_array, bias: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Interval arithmetic for ``W x + b`` with ``lower <= x <= upper`` (rows are samples).

    Only stored nonzeros take part, so an infinite input bound read by a zero weight does not
    turn into NaN.
    """
    positive = weight.maximum(0)
    negative = weight.minimum(0)
    lo = (positive @ lower.T + negative @ upper.T).T + bias
    hi = (positive @ upper.T + negative @ lower.T).T + bias
    return np.asarray(lo), np.asarray(hi)


class IntervalStage:
    """Interval arithmetic; on the first layer the domain's exact bounds when a domain is given."""

    name = "interval"

    def layer_bounds(self, problem, index, lower, upper):
        layer = problem.layers[index]
        in_lo, in_hi = problem.layer_input_bounds(index)
        lo, hi = interval_affine(layer.weight, layer.bias, in_lo, in_hi)
        if index == 0 and problem.domain is not None:
            d_lo, d_hi = problem.domain.first_layer_bounds(layer.weight, layer.bias)
            lo = np.maximum(lo, np.asarray(d_lo)[None, :])
            hi = np.minimum(hi, np.asarray(d_hi)[None, :])
        return lo, hi


#: Bounding methods by name: the stages run, in order, on every layer.
METHODS: dict[str, tuple[BoundingStage, ...]] = {"interval": (IntervalStage(),)}


def register_method(name: str, stages: Sequence[BoundingStage]) -> None:
    """Make a bounding method available under ``name`` (for ``bounds=name``)."""
    METHODS[name] = tuple(stages)


@dataclass
class NetworkBounds:
    """Pre-activation bounds of every layer.

    Attributes
    ----------
    lower, upper : list of numpy.ndarray
        One ``(k, n_i)`` array per layer.
    method : str
        The method that computed them (``"user"`` for bounds given by the caller).
    report : list of dict
        Per layer and stage: ``layer``, ``stage``, ``unstable`` (ReLU neurons whose bounds
        straddle 0, summed over samples) and ``seconds`` (for a stage that runs a whole pass
        of another method, that pass's time on this layer), plus ``skipped`` (the reason)
        when the stage decided not to run.
    notes : list of dict
        What the stages chose to tell: fallbacks (a cone too large for the licence, a time
        budget spent) with their reasons, and per-stage summaries.
    """

    lower: list[np.ndarray]
    upper: list[np.ndarray]
    method: str = "user"
    report: list[dict] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Total time spent computing the bounds."""
        return float(sum(row["seconds"] for row in self.report))

    def check_shapes(self, layers: Sequence[Layer], n_samples: int) -> None:
        """Raise :class:`ShapeMismatchError` unless these bounds fit ``layers``."""
        if len(self.lower) != len(layers) or len(self.upper) != len(layers):
            raise ShapeMismatchError(
                f"bounds are given for {len(self.lower)} layers, the network has {len(layers)}"
            )
        for i, layer in enumerate(layers):
            for side in (self.lower[i], self.upper[i]):
                if side.shape != (n_samples, layer.n_out):
                    raise ShapeMismatchError(
                        f"bounds of {layer.name} have shape {side.shape}, expected "
                        f"({n_samples}, {layer.n_out})"
                    )

    @classmethod
    def from_arrays(
        cls, lower: Sequence[np.ndarray], upper: Sequence[np.ndarray], n_samples: int = 1
    ) -> NetworkBounds:
        """Bounds given per layer as ``(n_i,)`` or ``(k, n_i)`` arrays."""

        def rows(a):
            a = np.asarray(a, dtype=np.float64)
            return np.broadcast_to(a, (n_samples, a.shape[-1])).copy() if a.ndim == 1 else a

        return cls([rows(a) for a in lower], [rows(a) for a in upper], "user")


def count_unstable(layer: Layer, lower: np.ndarray, upper: np.ndarray) -> int:
    """Number of ReLU neurons of ``layer`` whose bounds straddle zero (over all samples)."""
    if not layer.relu:
        return 0
    return int(np.count_nonzero((lower < 0) & (upper > 0)))


def compute_bounds(
    layers: Sequence[Layer],
    input_lower: np.ndarray,
    input_upper: np.ndarray,
    method: str = "interval",
    domain: Any = None,
    verbose: bool = False,
    **options: Any,
) -> NetworkBounds:
    """Compute pre-activation bounds of every layer.

    Parameters
    ----------
    layers : list of Layer
        From :func:`~gurobi_sparse_surrogate.network.extract_layers`.
    input_lower, input_upper : array_like
        Bounds of the inputs, ``(n_in,)`` or ``(k, n_in)``; infinities are allowed.
    method : str
        A key of :data:`METHODS` (``"interval"`` and any registered method).
    domain : Box, LinfBall or L1Ball, optional
        A domain that every input row lies in; gives tighter first-layer bounds.
    verbose : bool
        Print one line per layer and stage (the ``gurobi_sparse_surrogate`` logger's ``INFO``
        lines, see :mod:`gurobi_sparse_surrogate.verbosity`) and a progress bar when the pass
        lasts more than a couple of seconds.
    **options
        Passed to the stages through :attr:`BoundingProblem.options`.

    Returns
    -------
    NetworkBounds

    Examples
    --------
    >>> import torch, numpy as np
    >>> from gurobi_sparse_surrogate.network import extract_layers
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    >>> b = compute_bounds(extract_layers(net), np.zeros(2), np.ones(2))
    >>> len(b.lower), b.lower[0].shape
    (2, (1, 3))
    """
    if method not in METHODS:
        raise ValueError(f"unknown bounding method {method!r}; choose one of {sorted(METHODS)}")
    lo = np.atleast_2d(np.asarray(input_lower, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(input_upper, dtype=np.float64))
    if lo.shape != hi.shape or lo.shape[1] != layers[0].n_in:
        raise ShapeMismatchError(
            f"input bounds have shapes {lo.shape} and {hi.shape}; the network has "
            f"{layers[0].n_in} inputs"
        )
    if np.any(lo > hi):
        bad = np.flatnonzero((lo > hi).any(axis=0))[:10].tolist()
        raise ValueError(f"input lower bounds exceed upper bounds at inputs {bad}")
    pools = [layer.name for layer in layers if getattr(layer, "kind", "affine") != "affine"]
    if pools:
        raise UnsupportedNetworkError(
            f"bounding method {method!r} does not support max pooling ({pools[0]})"
        )
    options.setdefault("notes", [])
    problem = BoundingProblem(layers, lo, hi, domain=domain, options=options)
    outer = _in_pass.get() is None
    token = _in_pass.set(set()) if outer else None
    try:
        with verbose_logging(verbose):
            report = _run_pass(problem, method, outer)
    finally:
        if token is not None:
            _in_pass.reset(token)
    return NetworkBounds(problem.lower, problem.upper, method, report, options["notes"])


def _run_pass(problem: BoundingProblem, method: str, show_progress: bool) -> list[dict]:
    """Run every stage of ``method`` on every layer, logging each step; the report rows.

    ``DEBUG`` lines: one per layer and stage. ``INFO`` lines: one per stage (neurons it made
    stable and its time over all layers, or that it was skipped and why), one per note a
    stage leaves (neurons left with earlier bounds and why), and a total.
    """
    layers, notes = problem.layers, problem.options["notes"]
    stages = METHODS[method]
    report: list[dict] = []
    k = problem.n_samples
    made_stable = dict.fromkeys(range(len(stages)), 0)
    seconds_by_stage = dict.fromkeys(range(len(stages)), 0.0)
    skipped: dict[str, str] = {}
    bar = progress_bar(len(layers) * len(stages), f"bounds ({method})") if show_progress else None
    try:
        for index, layer in enumerate(layers):
            lower = np.full((k, layer.n_out), -np.inf)
            upper = np.full((k, layer.n_out), np.inf)
            unstable = count_unstable(layer, lower, upper)
            for position, stage in enumerate(stages):
                if bar is not None:
                    bar.set_postfix_str(f"layer {index} {stage.name}", refresh=False)
                seen = len(notes)
                start = time.perf_counter()
                new_lo, new_hi = stage.layer_bounds(problem, index, lower, upper)
                lower = np.maximum(lower, new_lo)
                upper = np.minimum(upper, new_hi)
                # Intersecting two sound bounds can cross by rounding only; keep them ordered.
                lower = np.minimum(lower, upper)
                seconds = time.perf_counter() - start
                if hasattr(stage, "layer_seconds"):
                    # a stage that works for all layers at once says what each layer cost
                    seconds = stage.layer_seconds(problem, index)
                left = count_unstable(layer, lower, upper)
                row = {"layer": index, "stage": stage.name, "unstable": left, "seconds": seconds}
                made_stable[position] += max(unstable - left, 0) if position else 0
                seconds_by_stage[position] += seconds
                logger.debug(
                    "bounds %s: layer %d, %s: %d unstable left in %.3f s",
                    method,
                    index,
                    stage.name,
                    left,
                    seconds,
                )
                logged = _in_pass.get()
                for note in notes[seen:]:
                    if note.get("kind") == "skipped":
                        skipped.setdefault(str(note.get("stage")), str(note.get("reason")))
                    elif id(note) not in logged:
                        _log_note(method, note)
                    logged.add(id(note))
                if stage.name in skipped:
                    row["skipped"] = skipped[stage.name]
                report.append(row)
                unstable = left
                if bar is not None:
                    bar.update()
            problem.lower.append(lower)
            problem.upper.append(upper)
    finally:
        if bar is not None:
            bar.close()
    # an inner pass (the linear pass that "auto" starts with) summarises at DEBUG level only
    level = logging.INFO if show_progress else logging.DEBUG
    for position, stage in enumerate(stages):
        if stage.name in skipped:
            logger.log(level, "bounds %s: %s skipped: %s", method, stage.name, skipped[stage.name])
        elif position == 0:
            logger.log(
                level,
                "bounds %s: %s: %d unstable neurons in %.3f s",
                method,
                stage.name,
                sum(row["unstable"] for row in report if row["stage"] == stage.name),
                seconds_by_stage[position],
            )
        else:
            logger.log(
                level,
                "bounds %s: %s made %d neurons stable in %.3f s",
                method,
                stage.name,
                made_stable[position],
                seconds_by_stage[position],
            )
    relu = [i for i, layer in enumerate(layers) if layer.relu]
    logger.log(
        level,
        "bounds %s: %d of %d ReLU neurons unstable, per layer %s, in %.3f s",
        method,
        sum(count_unstable(layers[i], problem.lower[i], problem.upper[i]) for i in relu),
        k * sum(layers[i].n_out for i in relu),
        [count_unstable(layers[i], problem.lower[i], problem.upper[i]) for i in relu],
        sum(seconds_by_stage.values()),
    )
    return report


def _log_note(method: str, note: dict) -> None:
    """One line for what a stage chose to tell (a stage skipped, neurons left as they were)."""
    where = f", layer {note['layer']}" if "layer" in note else ""
    neurons = f" ({note['neurons']} neurons)" if "neurons" in note else ""
    if "reason" in note:
        logger.info(
            "bounds %s%s, %s%s: %s", method, where, note.get("stage"), neurons, note["reason"]
        )
