"""What a bounding pass reports: one typed record per layer and stage.

The driver (:func:`~gurobi_sparse_surrogate.bounds.compute_bounds`) opens a
:class:`StageRecord` before it runs a stage on a layer and fills in the time and the
unstable neurons before and after; the stage itself may mark the record skipped (and why),
add solver counts and list the neuron groups it left with their earlier bounds
(:class:`KeptBounds`). :attr:`NetworkBounds.stages` holds the records; ``report`` and ``notes``
are plain-dict views of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["KeptBounds", "StageRecord"]


@dataclass
class KeptBounds:
    """Neurons of one sample that a stage left with their earlier bounds, and why.

    Attributes
    ----------
    sample : int
        The row of the input bounds.
    neurons : int
        How many neurons.
    reason : str
        Why (a cone too large for the licence, the time budget spent, ...).
    kind : str
        ``"fallback"`` (a limit of size, time or effort) or ``"refused"`` (the solver's
        answer could not be certified at this scale, so the stage stopped for the layer).
    """

    sample: int
    neurons: int
    reason: str
    kind: str = "fallback"


@dataclass
class StageRecord:
    """The outcome of one bounding stage on one layer.

    Attributes
    ----------
    stage : str
        The stage's name (``"interval"``, ``"linear"``, ``"lp"``, ``"milp"``, ``"linear pass"``).
    layer : int
        Index of the layer.
    ran : bool
        False when the stage did no work on this layer (see ``skipped_reason``).
    skipped_reason : str or None
        Why it did not run (``None`` when it ran).
    seconds : float
        Time spent.
    unstable_before, unstable_after : int
        ReLU neurons whose bounds straddle zero (summed over samples) before and after the
        stage; before the first stage every ReLU neuron counts as unstable.
    solves : int
        LP or MILP solves (solver stages only).
    skipped_by_points : int
        Solves not run because known inputs already decided them (solver stages only).
    kept : list of KeptBounds
        Neuron groups left with their earlier bounds, and why.
    stopped : str or None
        Why a solver stage stopped before it was done with the layer (its yield below
        ``min_yield``, the time budget spent, ``abandon_after``, a refused bound); ``None``
        when it finished (or did not run).
    """

    stage: str
    layer: int
    ran: bool = True
    skipped_reason: str | None = None
    seconds: float = 0.0
    unstable_before: int = 0
    unstable_after: int = 0
    solves: int = 0
    skipped_by_points: int = 0
    kept: list[KeptBounds] = field(default_factory=list)
    stopped: str | None = None

    @property
    def neurons_made_stable(self) -> int:
        """Unstable neurons this stage proved stable."""
        return self.unstable_before - self.unstable_after

    def skip(self, reason: str) -> None:
        """Mark the stage as not run on this layer, for ``reason``."""
        self.ran = False
        self.skipped_reason = reason

    def keep(self, sample: int, neurons: int, reason: str, kind: str = "fallback") -> None:
        """Record ``neurons`` of ``sample`` left with their earlier bounds, for ``reason``."""
        self.kept.append(KeptBounds(int(sample), int(neurons), reason, kind))

    def as_dict(self) -> dict:
        """A plain dict (``unstable`` is ``unstable_after``; ``kept`` as dicts; ``skipped``
        holds the reason when the stage did not run)."""
        row = asdict(self)
        row["unstable"] = self.unstable_after
        row["neurons_made_stable"] = self.neurons_made_stable
        if not self.ran:
            row["skipped"] = self.skipped_reason
        return row


def notes_view(records: list[StageRecord]) -> list[dict]:
    """Readable notes derived from the records.

    ``{"kind": "fallback" or "refused", stage, layer, sample, neurons, reason}`` for every
    group of neurons kept with earlier bounds; ``{"kind": "summary", stage, layer, unstable_before,
    unstable_after, solves, skipped_by_points}`` for every solver stage that ran on a layer
    with unstable neurons; and ``{"kind": "skipped", stage, reason}`` once per stage and
    reason for stages that ran on no layer.
    """
    notes: list[dict] = []
    seen_skips: set[tuple[str, str]] = set()
    ran = {r.stage for r in records if r.ran}
    for r in records:
        for kept in r.kept:
            notes.append({"stage": r.stage, "layer": r.layer, **asdict(kept)})
        if r.ran and (r.solves or r.skipped_by_points or r.kept):
            notes.append(
                {
                    "kind": "summary",
                    "stage": r.stage,
                    "layer": r.layer,
                    "unstable_before": r.unstable_before,
                    "unstable_after": r.unstable_after,
                    "solves": r.solves,
                    "skipped_by_points": r.skipped_by_points,
                }
            )
        skipped = not r.ran and r.stage not in ran and r.skipped_reason
        if skipped and (r.stage, r.skipped_reason) not in seen_skips:
            seen_skips.add((r.stage, r.skipped_reason))
            notes.append({"kind": "skipped", "stage": r.stage, "reason": r.skipped_reason})
    return notes
