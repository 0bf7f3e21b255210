"""Neutral solving helpers: optimize a Gurobi model and hand every solution it finds to a judge.

Used by :class:`~gurobi_sparse_surrogate.SurrogateSwap`, the applications and the benchmark
baselines alike; nothing here knows about networks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gurobipy as gp
import numpy as np
from gurobipy import GRB

from .exceptions import InvalidOptionError


@dataclass
class Incumbent:
    """One solution found during a solve, judged on the dense network.

    The one record of an incumbent everywhere: in :class:`SurrogateSwap` results, in
    :func:`find_adversarial` and :func:`maximize_output` results (their ``history``) and
    in the benchmark baselines.

    Attributes
    ----------
    time : float
        Seconds since the start of the call that found it.
    phase : str
        Where it was found: ``"attack"``, ``"surrogate 0"``, ``"repair"``, ``"dense"``...
    surrogate_objective : float or None
        The objective the solver reported for the model it solved (the surrogate's in a
        surrogate phase, the dense model's in a dense phase; None for an attack's point).
    dense_objective : float or None
        The objective with the dense network's outputs (None when they make the solution
        infeasible): the dense margin in :func:`find_adversarial`, the dense value in
        :func:`maximize_output`.
    feasible, valid : bool
        Feasible with the dense outputs; and valid (feasible, and the user's predicate holds).
    repaired : bool
        Found by a repair solve.
    """

    time: float
    phase: str
    surrogate_objective: float | None
    dense_objective: float | None
    feasible: bool
    valid: bool
    repaired: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The record as a plain dict."""
        return dict(vars(self))


def final_solutions(model: gp.Model, variables: list[gp.Var]) -> list[tuple[np.ndarray, float]]:
    """Every solution ``model`` holds after optimize, as ``(values of variables, objective)``.

    Solutions found in presolve, and the solution of a model without integer variables (an
    LP, when bounds left no unstable neuron), never reach a MIPSOL callback.
    """
    if model.SolCount == 0:
        return []
    if not model.IsMIP:
        return [(np.array(model.getAttr("X", variables)), model.ObjVal)]
    found = []
    for k in range(model.SolCount):
        model.Params.SolutionNumber = k
        found.append((np.array(model.getAttr("Xn", variables)), model.PoolObjVal))
    model.Params.SolutionNumber = 0
    return found


#: Two solutions are the same when no value differs by more than this, relative to its size
#: (solution pool copies of one incumbent differ by rounding, ~1e-16).
DUPLICATE_TOLERANCE = 1e-9


def is_duplicate(values: np.ndarray, seen: Sequence[np.ndarray]) -> bool:
    """Whether ``values`` equals one of ``seen`` within :data:`DUPLICATE_TOLERANCE`."""
    if not len(seen):
        return False
    stacked = np.asarray(seen)
    scale = 1.0 + np.abs(values)
    return bool((np.abs(stacked - values) <= DUPLICATE_TOLERANCE * scale).all(axis=1).any())


def optimize_judging(
    model: gp.Model,
    variables: list[gp.Var],
    offer: Callable[[np.ndarray, float], bool],
    stop_when_offered: bool = False,
) -> bool:
    """Optimize ``model`` and hand every solution it finds to ``offer`` once.

    ``offer(values of variables, solver objective) -> bool`` is called from a MIPSOL callback
    for each incumbent, then for the solutions the model holds at the end (those found in
    presolve, or an LP's, never reach the callback); a solution already offered (within
    :data:`DUPLICATE_TOLERANCE`) is skipped.
    With ``stop_when_offered``, the solve stops at the first offer that returns True.

    Returns True when the solve was interrupted from outside (Ctrl-C: Gurobi takes the
    SIGINT, Python never sees it), not by the stop above.
    """
    seen: list[np.ndarray] = []
    stopped = []

    def once(values: np.ndarray, objective: float) -> bool:
        if is_duplicate(values, seen):
            return False
        seen.append(values)
        return offer(values, objective)

    def callback(m, where):
        if where != GRB.Callback.MIPSOL:
            return
        values = np.array(m.cbGetSolution(variables))
        if once(values, m.cbGet(GRB.Callback.MIPSOL_OBJ)) and stop_when_offered:
            stopped.append(True)
            m.terminate()

    model.optimize(callback)
    for values, objective in final_solutions(model, variables):
        once(values, objective)
    return model.Status == GRB.INTERRUPTED and not stopped


def proven_bound(model: gp.Model) -> float | None:
    """The best proven objective bound after optimize (the optimum of a solved LP).

    A MIP has ``ObjBound`` after any optimize (infinite when nothing was proven, as for an
    infeasible model or a time limit of 0); an LP that is not optimal gives None.
    """
    if model.IsMIP:
        return float(model.ObjBound)
    return float(model.ObjVal) if model.Status == GRB.OPTIMAL else None


def check_time_limit(time_limit: Any, allow_none: bool = False) -> float | None:
    """A time limit in seconds: a positive, finite number (not a bool); None if allowed.

    Raises
    ------
    InvalidOptionError

    Examples
    --------
    >>> check_time_limit(2)
    2.0
    >>> check_time_limit(True)
    Traceback (most recent call last):
    ...
    gurobi_sparse_surrogate.exceptions.InvalidOptionError: time_limit must be a positive, finite number of seconds, got True
    """
    if time_limit is None and allow_none:
        return None
    number = isinstance(time_limit, (int, float, np.integer, np.floating)) and not isinstance(
        time_limit, (bool, np.bool_)
    )
    if not (number and math.isfinite(time_limit) and time_limit > 0):
        extra = " (or None for no limit)" if allow_none else ""
        raise InvalidOptionError(
            f"time_limit must be a positive, finite number of seconds{extra}, got {time_limit!r}"
        )
    return float(time_limit)


def check_threads(threads: Any) -> int:
    """Gurobi's ``Threads``: a whole number >= 0 (0 lets Gurobi choose); not a bool.

    Raises
    ------
    InvalidOptionError

    Examples
    --------
    >>> check_threads(2)
    2
    >>> check_threads(-3)
    Traceback (most recent call last):
    ...
    gurobi_sparse_surrogate.exceptions.InvalidOptionError: threads must be an integer >= 0, got -3
    """
    from .validation import check_number

    return check_number("threads", threads, minimum=0, integer=True)


def check_gurobi_params(model: gp.Model, params: Mapping[str, Any] | None, what: str) -> None:
    """Raise :class:`InvalidOptionError` naming the keys of ``params`` that are not Gurobi
    parameters (before any is set, so that nothing changes)."""
    if params is None:
        return
    if not isinstance(params, Mapping):
        raise InvalidOptionError(f"{what} must be a dict of Gurobi parameters, got {params!r}")
    unknown = [
        name for name in params if not isinstance(name, str) or model.getParamInfo(name) is None
    ]
    if unknown:
        raise InvalidOptionError(
            f"unknown Gurobi parameter(s) {unknown} in {what}; parameter names are those of "
            "gurobipy's Model.Params (for example TimeLimit, MIPGap, Threads)"
        )


__all__ = [
    "DUPLICATE_TOLERANCE",
    "Incumbent",
    "check_gurobi_params",
    "check_time_limit",
    "check_threads",
    "final_solutions",
    "is_duplicate",
    "optimize_judging",
    "proven_bound",
]
