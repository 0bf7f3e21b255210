"""Options of a bounding pass: one frozen dataclass, every default declared here once.

:class:`BoundOptions` is what the stages read (``problem.options``). Callers may pass a dict
(``compute_bounds(..., time_budget=2)``, ``bound_options={"time_budget": 2}``) or an instance
(``options=BoundOptions(time_budget=2)``); either way the options are validated once, at the
boundary: an unknown key or a bad value raises
:class:`~gurobi_sparse_surrogate.exceptions.InvalidOptionError` naming it.

Options whose default depends on the method (``None`` below) take the value its recipe
declares in :mod:`gurobi_sparse_surrogate.bounds.recipes`; ``math.inf`` means "no limit".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import InvalidOptionError
from ..license import SIZE_LIMITED_MAX_CONSTRAINTS, SIZE_LIMITED_MAX_VARIABLES
from ..validation import check_bool, check_keys, check_number

__all__ = ["BoundOptions"]

#: Mistakes worth a pointer of their own (difflib finds the plain misspellings).
_HINTS = {
    "time_limit": "time_budget",
    "timelimit": "time_budget",
    "budget": "time_budget",
    "max_binaries": "milp_max_binaries",
    "min_unstable": "auto_min_unstable",
    "yield": "min_yield",
    "auto_min_yield": "min_yield",
    "notes": "the notes are returned in NetworkBounds.notes and NetworkBounds.stages",
}


@dataclass(frozen=True)
class BoundOptions:
    """Settings of a bounding pass (all optional).

    Parameters
    ----------
    time_budget : float or None
        Seconds for the LP and MILP solves of the whole pass, counted from its start; each
        ReLU layer may use an equal share of what is left when its solves start. When spent,
        remaining neurons keep their earlier bounds. ``None``: the method's default (``"auto"``
        5 s, ``"lp"`` and ``"milp"`` no limit); ``math.inf``: no limit.
    milp_time_limit : float
        Seconds per MILP solve.
    milp_max_binaries : int or None
        Largest number of unstable ReLUs in a cone for which a MILP is built. ``None``: the
        method's default (``"milp"`` 60, ``"auto"`` 20).
    milp_max_coefficient_range, milp_max_magnitude : float
        Where the MILP stage refuses to solve: a cone model whose coefficient range exceeds
        the first or whose bounds exceed the second (the solver's tolerances are too small
        against the numbers to certify a bound there).
    max_variables, max_constraints : int
        Size limit of each LP/MILP model (default: the size-limited licence). Neurons whose
        cone exceeds it keep their earlier bounds.
    skip_decided : bool
        Skip solves that cannot change stability because a known feasible input already puts
        the neuron on that side of zero. ``False`` tightens truly unstable neurons too
        (smaller big-M, more solves).
    abandon_after : int or None
        Stop a layer's LP (MILP) solves when the first this many made no neuron stable.
        ``None``: the method's default (``"auto"``: 16 LP and 8 MILP solves; ``"lp"`` and
        ``"milp"``: never); ``0``: never.
    auto_min_unstable : int
        ``"auto"`` runs its LP and MILP stages only when its linear pass leaves at least this
        many unstable ReLU neurons (over all layers and samples).
    min_yield : float or None
        Neurons made stable per second of solving that an LP or MILP stage must keep up on a
        layer. Every neuron the stage has made stable on the layer earns it ``1 / min_yield``
        seconds; the stage goes on while the time it has spent there (model building
        included) is less than what it has earned plus the credit of the one neuron its next
        solve may make stable, and each solve gets at most the time that is left of that
        credit. So a stage that stabilises nothing stops after about ``1 / min_yield``
        seconds, one that keeps paying runs on (within ``time_budget``), and the record says
        where and why it stopped. ``None``: the method's default (``"auto"`` 4 neurons per
        second; ``"lp"`` and ``"milp"`` 0); ``0``: never stop for yield.
    points : array_like or None
        Known inputs, ``(p, n_in)``; those inside a sample's input box (and the domain) seed
        the skip test. They change which solves run, never soundness, so they take no part
        in comparisons of options.

    Examples
    --------
    >>> BoundOptions.from_value({"time_budget": 2}).time_budget
    2.0
    >>> BoundOptions.from_value({"time_limit": 2})
    Traceback (most recent call last):
    ...
    gurobi_sparse_surrogate.exceptions.InvalidOptionError: unknown bounding option 'time_limit'; did you mean 'time_budget' or 'milp_time_limit'? Valid bounding options: abandon_after, auto_min_unstable, max_constraints, max_variables, milp_max_binaries, milp_max_coefficient_range, milp_max_magnitude, milp_time_limit, min_yield, points, skip_decided, time_budget.
    """

    time_budget: float | None = None
    milp_time_limit: float = 1.0
    milp_max_binaries: int | None = None
    milp_max_coefficient_range: float = 1e9
    milp_max_magnitude: float = 1e7
    max_variables: int = SIZE_LIMITED_MAX_VARIABLES
    max_constraints: int = SIZE_LIMITED_MAX_CONSTRAINTS
    skip_decided: bool = True
    abandon_after: int | None = None
    auto_min_unstable: int = 32
    min_yield: float | None = None
    points: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        checked = {
            "time_budget": check_number(
                "time_budget", self.time_budget, minimum=0.0, allow_none=True, allow_inf=True
            ),
            "milp_time_limit": check_number(
                "milp_time_limit", self.milp_time_limit, minimum=0.0, strict=True, allow_inf=True
            ),
            "milp_max_binaries": check_number(
                "milp_max_binaries",
                self.milp_max_binaries,
                minimum=0,
                integer=True,
                allow_none=True,
            ),
            "milp_max_coefficient_range": check_number(
                "milp_max_coefficient_range",
                self.milp_max_coefficient_range,
                minimum=1.0,
                allow_inf=True,
            ),
            "milp_max_magnitude": check_number(
                "milp_max_magnitude",
                self.milp_max_magnitude,
                minimum=0.0,
                strict=True,
                allow_inf=True,
            ),
            "max_variables": check_number(
                "max_variables", self.max_variables, minimum=1, integer=True
            ),
            "max_constraints": check_number(
                "max_constraints", self.max_constraints, minimum=1, integer=True
            ),
            "skip_decided": check_bool("skip_decided", self.skip_decided),
            "abandon_after": check_number(
                "abandon_after", self.abandon_after, minimum=0, integer=True, allow_none=True
            ),
            "auto_min_unstable": check_number(
                "auto_min_unstable", self.auto_min_unstable, minimum=0, integer=True
            ),
            "min_yield": check_number(
                "min_yield", self.min_yield, minimum=0.0, allow_none=True, allow_inf=False
            ),
            "points": _points(self.points),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_value(
        cls, value: BoundOptions | Mapping[str, Any] | None = None, **overrides: Any
    ) -> BoundOptions:
        """Validated options from an instance, a mapping or nothing, with ``overrides``.

        Raises
        ------
        InvalidOptionError
            For an unknown key (named, with the valid keys and the closest ones) or a bad
            value.
        """
        if value is None:
            given: dict[str, Any] = {}
        elif isinstance(value, BoundOptions):
            given = value.explicit()
        elif isinstance(value, Mapping):
            given = dict(value)
        else:
            raise InvalidOptionError(
                f"bounding options must be a dict or a BoundOptions, got {type(value).__name__}"
            )
        given.update(overrides)
        check_keys(given, cls.keys(), "bounding option", _HINTS)
        return cls(**given)

    @classmethod
    def keys(cls) -> list[str]:
        """Names of the options."""
        return [f.name for f in dataclasses.fields(cls)]

    def explicit(self) -> dict[str, Any]:
        """The options that differ from their defaults."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not f.default
            and not _equal(getattr(self, f.name), f.default)
        }

    def __getitem__(self, key: str) -> Any:
        """``options["time_budget"]`` reads like ``options.time_budget`` (read-only)."""
        if key not in self.keys():
            check_keys([key], self.keys(), "bounding option", _HINTS)
        return getattr(self, key)

    def replace(self, **changes: Any) -> BoundOptions:
        """A copy with ``changes`` (validated like the constructor's keys)."""
        return BoundOptions.from_value(self, **changes)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    return a == b


def _points(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    try:
        points = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidOptionError(f"points must be a numeric array, got {value!r}") from error
    if points.ndim == 1:
        points = points[None, :]
    if points.ndim != 2:
        raise InvalidOptionError(f"points must have shape (p, n_in), got {points.shape}")
    if not np.isfinite(points).all():
        raise InvalidOptionError("points contain NaN or infinite values")
    points.flags.writeable = False
    return points
