"""Pre-activation bounds of every neuron, computed in a pass of their own.

A bounding *method* is a sequence of *stages* (:class:`BoundingStage`). Bounds are computed
layer by layer: for each layer every stage of the method is run in turn, each one given the
bounds already proven for the earlier layers and the best bounds so far for this layer, and
the results are intersected. Stronger stages (linear relaxations, LP or MILP on a neuron's
cone of influence) plug in by adding a stage; the formulation only ever sees the resulting
:class:`NetworkBounds`, whose :attr:`~NetworkBounds.stages` record what every stage did.

All arrays have a leading sample axis: the bounds of layer ``i`` are ``(k, n_i)`` arrays for
``k`` independent copies of the network (one per row of a 2-D input MVar).
"""

from __future__ import annotations

import collections
import contextvars
import difflib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..domains import Domain
from ..exceptions import InvalidOptionError, ShapeMismatchError, UnsupportedNetworkError
from ..network.extraction import Layer
from ..verbosity import progress_bar, verbose_logging
from .interval import IntervalStage, interval_affine, max_pool_bounds, post_activation
from .options import BoundOptions
from .records import StageRecord, notes_view

logger = logging.getLogger(__name__)

#: True inside a bounding pass: inner passes (the linear pass that ``"auto"`` runs first) get
#: no progress bar and summarise at DEBUG level only.
_in_pass: contextvars.ContextVar[bool] = contextvars.ContextVar("gss_pass", default=False)

__all__ = [
    "METHODS",
    "BoundingProblem",
    "BoundingStage",
    "NetworkBounds",
    "PassState",
    "compute_bounds",
    "count_unstable",
    "interval_affine",
    "post_activation",
    "register_method",
]


@dataclass
class PassState:
    """Scratch state of one bounding pass, shared by its stages (never an option).

    Attributes
    ----------
    start : float
        ``time.perf_counter()`` at the start of the pass (time budgets count from here).
    points : dict
        Known feasible inputs per sample (for the solver stages' skip test).
    deadlines : dict
        End of each layer's share of the time budget.
    passes : dict
        Complete passes of other methods run for this one, by method name.
    """

    start: float = field(default_factory=time.perf_counter)
    points: dict[int, np.ndarray] = field(default_factory=dict)
    deadlines: dict[int, float] = field(default_factory=dict)
    passes: dict[str, NetworkBounds] = field(default_factory=dict)


@dataclass
class BoundingProblem:
    """What a bounding stage may read: the layers, the input domain and earlier bounds.

    Attributes
    ----------
    layers : list of Layer
    input_lower, input_upper : numpy.ndarray
        ``(k, n_in)`` bounds of the input variables (may hold infinities).
    domain : Domain or None
        An input domain known to hold for every input row.
    lower, upper : list of numpy.ndarray
        Pre-activation bounds of the layers already bounded (filled as the pass proceeds).
    options : BoundOptions
        The pass's settings (a dict given here is validated into one).
    state : PassState
        Scratch state shared by the stages of this pass.
    record : StageRecord or None
        The record of the stage now running, which the stage may annotate
        (:meth:`StageRecord.skip`, :meth:`StageRecord.keep`, solver counts).
    """

    layers: Sequence[Layer]
    input_lower: np.ndarray
    input_upper: np.ndarray
    domain: Domain | None = None
    lower: list[np.ndarray] = field(default_factory=list)
    upper: list[np.ndarray] = field(default_factory=list)
    options: BoundOptions = field(default_factory=BoundOptions)
    state: PassState = field(default_factory=PassState)
    record: StageRecord | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.options, BoundOptions):
            self.options = BoundOptions.from_value(self.options)

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

    def current_record(self) -> StageRecord:
        """The running stage's record (a detached one when a stage is called directly)."""
        if self.record is None:
            self.record = StageRecord("", -1)
        return self.record


class BoundingStage(Protocol):
    """One way of bounding the pre-activations of a layer.

    ``layer_bounds`` returns valid (sound) bounds for layer ``index``; it may use
    ``problem.lower[:index]`` and ``problem.upper[:index]`` and the current ``lower``/``upper``
    of the layer (the best found by earlier stages). The driver intersects the result with
    the current bounds, so a stage never has to re-check what it did not improve. It reads
    its settings from ``problem.options`` and may annotate ``problem.record``.
    """

    name: str

    def layer_bounds(
        self, problem: BoundingProblem, index: int, lower: np.ndarray, upper: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


#: A stage declares ``supports_max_pool = True`` when it bounds the layers after a max-pooling
#: layer soundly (max-pooling layers themselves are bounded by the driver, never by a stage);
#: a method with any stage that does not is refused on networks with max pooling, with an
#: error naming the stage, rather than risking wrong bounds.

#: Bounding methods by name: the stages run, in order, on every layer. The recipes of the
#: methods beyond ``"interval"`` are declared in :mod:`gurobi_sparse_surrogate.bounds.recipes`.
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
    stages : list of StageRecord
        Per layer and stage, in the order run: whether it ran (or why not), its time, the
        unstable neurons before and after it, its solver counts and the neurons it left with
        earlier bounds.
    passes : dict
        Complete passes of other methods that this one ran first (``"auto"`` and ``"lp"``
        run ``"linear"``, ``"milp"`` runs ``"lp"``), by method name.
    cache_hit : bool
        True when these bounds were answered from a
        :class:`~gurobi_sparse_surrogate.bounds.cache.BoundsCache` (``seconds`` is then 0
        and ``saved_seconds`` what computing them took).
    input_lower, input_upper : numpy.ndarray or None
        ``(k, n_in)``: the input box the bounds hold over (the input bounds intersected with
        the domain's box); None for bounds given by the caller.
    domain : Domain or None
        The input domain the bounds hold over, when it is smaller than its bounding box
        (an :class:`~gurobi_sparse_surrogate.L1Ball`): reusing the bounds then needs a model
        whose inputs are constrained to it (checked when they are passed as ``bounds=``).
    """

    lower: list[np.ndarray]
    upper: list[np.ndarray]
    method: str = "user"
    stages: list[StageRecord] = field(default_factory=list)
    passes: dict[str, NetworkBounds] = field(default_factory=dict)
    cache_hit: bool = False
    saved_seconds: float = 0.0
    input_lower: np.ndarray | None = None
    input_upper: np.ndarray | None = None
    domain: Any = None

    @property
    def report(self) -> list[dict]:
        """The stage records as dicts (``layer``, ``stage``, ``unstable``, ``seconds``, ...,
        ``skipped`` with the reason when the stage did not run, ``cached`` on a cache hit)."""
        rows = [record.as_dict() for record in self.stages]
        if self.cache_hit:
            for row in rows:
                row["seconds"] = 0.0
                row["cached"] = True
        return rows

    @property
    def notes(self) -> list[dict]:
        """Readable notes derived from the records of the inner passes and of :attr:`stages`:
        neurons left with earlier bounds, solver summaries, skipped stages, cache hits."""
        notes = [note for inner in self.passes.values() for note in inner.notes]
        notes += notes_view(self.stages)
        if self.cache_hit:
            notes.append({"kind": "cache", "reason": "hit", "saved_seconds": self.saved_seconds})
        return notes

    @property
    def seconds(self) -> float:
        """Total time spent computing the bounds (0 for a cache hit)."""
        if self.cache_hit:
            return 0.0
        return float(sum(record.seconds for record in self.stages))

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
    domain: Domain | None = None,
    verbose: bool = False,
    *,
    options: BoundOptions | Mapping[str, Any] | None = None,
    **option_values: Any,
) -> NetworkBounds:
    """Compute pre-activation bounds of every layer.

    Parameters
    ----------
    layers : list of Layer
        From :func:`~gurobi_sparse_surrogate.network.extract_layers`.
    input_lower, input_upper : array_like
        Bounds of the inputs, ``(n_in,)`` or ``(k, n_in)``; infinities are allowed.
    method : str
        A key of :data:`METHODS` (``"interval"``, ``"linear"``, ``"lp"``, ``"milp"``,
        ``"auto"`` and any registered method).
    domain : Domain, optional
        A domain that every input row lies in (:class:`~gurobi_sparse_surrogate.Box`,
        ``LinfBall``, ``L1Ball`` or your own); gives tighter bounds.
    verbose : bool
        Print one line per stage (the ``gurobi_sparse_surrogate`` logger's ``INFO`` lines,
        see :mod:`gurobi_sparse_surrogate.verbosity`) and a progress bar when the pass lasts
        more than a couple of seconds.
    options : BoundOptions or dict, optional
        Settings of the stages (:class:`~gurobi_sparse_surrogate.bounds.BoundOptions`).
    **option_values
        The same settings as keywords (``time_budget=2``); they override ``options``.

    Returns
    -------
    NetworkBounds

    Raises
    ------
    InvalidOptionError
        For an unknown option (named, with the valid ones) or a bad value.
    ShapeMismatchError
        When the input bounds, the domain or the known points do not fit the network.

    Examples
    --------
    >>> import torch, numpy as np
    >>> from gurobi_sparse_surrogate.network import extract_layers
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    >>> b = compute_bounds(extract_layers(net), np.zeros(2), np.ones(2))
    >>> len(b.lower), b.lower[0].shape
    (2, (1, 3))
    >>> [(r.stage, r.layer, r.ran) for r in b.stages]
    [('interval', 0, True), ('interval', 1, True)]
    """
    settings = BoundOptions.from_value(options, **option_values)
    if method not in METHODS:
        close = difflib.get_close_matches(str(method), list(METHODS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidOptionError(
            f"unknown bounding method {method!r}{hint}; choose one of {sorted(METHODS)}"
        )
    lo, hi = _check_inputs(layers, input_lower, input_upper, domain, settings)
    pools = [layer.name for layer in layers if getattr(layer, "kind", "affine") != "affine"]
    blind = [s.name for s in METHODS[method] if not getattr(s, "supports_max_pool", False)]
    if pools and blind:
        able = sorted(
            name
            for name, stages in METHODS.items()
            if all(getattr(s, "supports_max_pool", False) for s in stages)
        )
        raise UnsupportedNetworkError(
            f"bounding method {method!r} cannot bound through max pooling ({pools[0]}): its "
            f"stages {blind} do not support it; methods that do: {able}"
        )
    problem = BoundingProblem(layers, lo, hi, domain=domain, options=settings)
    outer = not _in_pass.get()
    token = _in_pass.set(True)
    try:
        with verbose_logging(verbose):
            records = _run_pass(problem, method, outer)
    finally:
        _in_pass.reset(token)
    box_lo, box_hi = lo, hi
    if domain is not None:
        box_lo, box_hi = np.maximum(lo, domain.lower), np.minimum(hi, domain.upper)
    return NetworkBounds(
        problem.lower,
        problem.upper,
        method,
        records,
        dict(problem.state.passes),
        input_lower=box_lo,
        input_upper=box_hi,
        domain=domain if domain is not None and not domain.is_box else None,
    )


def _run_pass(problem: BoundingProblem, method: str, outer: bool) -> list[StageRecord]:
    """Run every stage of ``method`` on every layer; the records, logged.

    ``DEBUG`` lines: one per layer and stage. ``INFO`` lines (``DEBUG`` for an inner pass):
    one per stage (neurons it made stable and its time, or that it was skipped and why) and a
    total; ``INFO`` lines for neurons a stage left with their earlier bounds, and why.
    """
    layers, stages = problem.layers, METHODS[method]
    records: list[StageRecord] = []
    bar = progress_bar(len(layers) * len(stages), f"bounds ({method})") if outer else None
    try:
        for index, layer in enumerate(layers):
            if layer.is_maxpool:
                # the pooled bounds are the max of the inputs' bounds whatever the method: no
                # stage could raise the upper one, and stages never see a max-pooling layer
                start = time.perf_counter()
                lower, upper = max_pool_bounds(layer, *problem.layer_input_bounds(index))
                record = StageRecord("max pool", index)
                record.seconds = time.perf_counter() - start
                records.append(record)
                problem.lower.append(lower)
                problem.upper.append(upper)
                if bar is not None:
                    bar.update(len(stages))
                continue
            lower = np.full((problem.n_samples, layer.n_out), -np.inf)
            upper = np.full((problem.n_samples, layer.n_out), np.inf)
            for stage in stages:
                if bar is not None:
                    bar.set_postfix_str(f"layer {index} {stage.name}", refresh=False)
                lower, upper, record = _run_stage(stage, problem, index, lower, upper)
                records.append(record)
                _log_record(method, record)
                if bar is not None:
                    bar.update()
            problem.lower.append(lower)
            problem.upper.append(upper)
    finally:
        if bar is not None:
            bar.close()
    _log_summary(problem, method, records, logging.INFO if outer else logging.DEBUG)
    return records


def _run_stage(stage, problem, index, lower, upper):
    """Run one stage on one layer and intersect its bounds with ``lower``/``upper``."""
    layer = problem.layers[index]
    record = StageRecord(stage.name, index, unstable_before=count_unstable(layer, lower, upper))
    problem.record = record
    start = time.perf_counter()
    try:
        new_lo, new_hi = stage.layer_bounds(problem, index, lower, upper)
    finally:
        problem.record = None
    lower = np.maximum(lower, new_lo)
    upper = np.minimum(upper, new_hi)
    # Intersecting two sound bounds can cross by rounding only; keep the pair ordered.
    lower = np.minimum(lower, upper)
    record.seconds = time.perf_counter() - start
    if hasattr(stage, "layer_seconds"):
        # a stage that works for all layers at once says what each layer cost
        record.seconds = stage.layer_seconds(problem, index)
    record.unstable_after = count_unstable(layer, lower, upper)
    return lower, upper, record


def _log_record(method: str, record: StageRecord) -> None:
    logger.debug(
        "bounds %s: layer %d, %s: %d unstable left in %.3f s",
        method,
        record.layer,
        record.stage,
        record.unstable_after,
        record.seconds,
    )
    for kept in record.kept:
        logger.info(
            "bounds %s, layer %d, %s (%d neurons): %s",
            method,
            record.layer,
            record.stage,
            kept.neurons,
            kept.reason,
        )


def _log_summary(problem, method: str, records: list[StageRecord], level: int) -> None:
    """One line per stage of the method, and a total."""
    by_stage: dict[str, list[StageRecord]] = {}
    for record in records:
        by_stage.setdefault(record.stage, []).append(record)
    for position, (name, rows) in enumerate(by_stage.items()):
        seconds = sum(r.seconds for r in rows)
        if not any(r.ran for r in rows):
            reasons = [r.skipped_reason for r in rows if r.layer > 0] or [rows[0].skipped_reason]
            reason = collections.Counter(reasons).most_common(1)[0][0]
            logger.log(level, "bounds %s: %s skipped: %s", method, name, reason)
        elif position == 0:
            unstable = sum(r.unstable_after for r in rows)
            logger.log(
                level,
                "bounds %s: %s: %d unstable neurons in %.3f s",
                method,
                name,
                unstable,
                seconds,
            )
        else:
            made = sum(max(r.neurons_made_stable, 0) for r in rows)
            logger.log(
                level,
                "bounds %s: %s made %d neurons stable in %.3f s",
                method,
                name,
                made,
                seconds,
            )
    layers = problem.layers
    relu = [i for i, layer in enumerate(layers) if layer.relu]
    per_layer = [count_unstable(layers[i], problem.lower[i], problem.upper[i]) for i in relu]
    logger.log(
        level,
        "bounds %s: %d of %d ReLU neurons unstable, per layer %s, in %.3f s",
        method,
        sum(per_layer),
        problem.n_samples * sum(layers[i].n_out for i in relu),
        per_layer,
        sum(r.seconds for r in records),
    )


def _check_inputs(layers, input_lower, input_upper, domain, settings):
    """The input bounds as ``(k, n_in)`` arrays, after checking them, the domain and points."""
    lo = np.atleast_2d(np.asarray(input_lower, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(input_upper, dtype=np.float64))
    n_in = layers[0].n_in
    if lo.shape != hi.shape or lo.shape[1] != n_in:
        raise ShapeMismatchError(
            f"input bounds have shapes {lo.shape} and {hi.shape}; the network has {n_in} inputs"
        )
    if np.any(lo > hi):
        bad = np.flatnonzero((lo > hi).any(axis=0))[:10].tolist()
        raise ValueError(f"input lower bounds exceed upper bounds at inputs {bad}")
    if domain is not None:
        if not isinstance(domain, Domain):
            raise TypeError(
                "domain must be a gurobi_sparse_surrogate Domain (Box, LinfBall, L1Ball or a "
                f"subclass), got {type(domain).__name__}"
            )
        if domain.n != n_in:
            raise ShapeMismatchError(
                f"the domain has dimension {domain.n}, the network {n_in} inputs"
            )
    if settings.points is not None and settings.points.shape[1] != n_in:
        raise ShapeMismatchError(
            f"the known points have {settings.points.shape[1]} coordinates, the network "
            f"{n_in} inputs"
        )
    return lo, hi
