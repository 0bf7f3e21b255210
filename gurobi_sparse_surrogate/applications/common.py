"""What the paper's two applications share: the input model, and solving it on the dense net.

Both :func:`~gurobi_sparse_surrogate.find_adversarial` and
:func:`~gurobi_sparse_surrogate.maximize_output` build a model with the network's inputs
restricted to a domain and the dense network embedded (sparsity-aware, with its bounds), then
solve it either directly or through a :class:`~gurobi_sparse_surrogate.SurrogateSwap`. Every
incumbent is judged with a float64 torch forward pass of the dense network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import gurobipy as gp
import numpy as np
from gurobipy import GRB
from torch import nn

from .. import solving
from ..bounds.options import BoundOptions
from ..domains import Domain
from ..exceptions import ModelTooLargeError
from ..formulation.predictor import SparseSequentialConstr, add_sparse_predictor_constr
from ..solving import Incumbent, optimize_judging, proven_bound
from ..surrogate.swap import SurrogateSwap

#: Judge of an input vector: ``(dense objective value, valid)``.
Judge = Callable[[np.ndarray], tuple[float, bool]]


@dataclass
class InputModel:
    """A Gurobi model with the inputs in a domain and the dense network embedded.

    Attributes
    ----------
    options : dict
        The embedding options the dense network is to be solved with.
    placeholder : bool
        Whether :attr:`predictor` is a cheap stand-in (interval bounds, max constraints, no
        size check), built only to be swapped for a surrogate: the dense embedding with
        :attr:`options` is then built by the fallback, if it runs.
    """

    model: gp.Model
    env: gp.Env
    x: gp.MVar
    predictor: SparseSequentialConstr
    options: dict
    placeholder: bool = False

    def dispose(self) -> None:
        """Free the Gurobi model and environment."""
        self.model.dispose()
        self.env.dispose()


def build_input_model(
    network: nn.Module,
    domain: Domain,
    *,
    threads: int,
    bounds: Any,
    relu_formulation: str,
    bound_options: dict | None,
    verbose: bool,
    placeholder: bool = False,
) -> InputModel:
    """A model with ``x`` in ``domain`` and ``network`` embedded by this package (the callers,
    the applications, have checked ``domain``)."""
    env = gp.Env(params={"OutputFlag": int(verbose), "Threads": int(threads)})
    model = gp.Model(env=env)
    x = model.addMVar(domain.n, lb=domain.lower, ub=domain.upper, name="x")
    domain.add_to_model(model, x)
    options = {
        "bounds": bounds,
        "relu_formulation": relu_formulation,
        "domain": domain,
        "bound_options": bound_options,
    }
    try:
        if placeholder:
            cheap = {
                **options,
                "bounds": "interval",
                "relu_formulation": "max",
                "check_size": False,
            }
            predictor = add_sparse_predictor_constr(model, network, x, **cheap)
        else:
            predictor = add_sparse_predictor_constr(model, network, x, **options)
    except BaseException:
        model.dispose()
        env.dispose()
        raise
    return InputModel(model, env, x, predictor, options, placeholder)


def build_fitting_input_model(network: nn.Module, domain: Domain, **options: Any):
    """:func:`build_input_model`, or ``(None, reason)`` when no formulation fits the licence.

    With big-M ReLUs too large, the max formulation is tried (Gurobi's max constraints do not
    count against the size-limited licence).
    """
    try:
        return build_input_model(network, domain, **options), None
    except ModelTooLargeError as error:
        first = str(error)
    if options["relu_formulation"] != "max":
        try:
            return build_input_model(
                network, domain, **{**options, "relu_formulation": "max"}
            ), None
        except ModelTooLargeError as error:
            first = f"{first}; with relu_formulation='max': {error}"
    return None, f"the model does not fit the licence: {first}"


def default_bound_options(
    bounds: Any,
    bound_options: dict | BoundOptions | None,
    time_limit: float,
    domain: Domain,
    known: list[np.ndarray | None],
    seed: int,
) -> BoundOptions:
    """Bounding options for an application call (validated; unknown keys fail).

    ``"auto"`` gets a tenth of the time limit (at most 5 s). The LP and MILP stages skip the
    solves that known inputs already decide: the caller's points (``x0``, the attack's) and a
    seeded sample of the domain, which cost a forward pass each.
    """
    options = BoundOptions.from_value(bound_options)
    changes: dict[str, Any] = {}
    if bounds == "auto" and options.time_budget is None:
        changes["time_budget"] = min(5.0, 0.1 * time_limit)
    if options.points is None:
        points = [np.atleast_2d(p) for p in known if p is not None]
        points.append(domain.sample(64, np.random.default_rng(seed)))
        changes["points"] = np.vstack(points)
    return options.replace(**changes)


@dataclass
class Outcome:
    """What a solve of an :class:`InputModel` found, judged on the dense network.

    Times count from the caller's clock (the start of the application call).
    """

    history: list[Incumbent] = field(default_factory=list)
    best_x: np.ndarray | None = None
    best_value: float | None = None
    best_time: float | None = None
    first_valid: float | None = None
    found_by: str | None = None
    bound: float | None = None
    optimal: bool = False
    pruning_seconds: float = 0.0
    interrupted: bool = False
    surrogate_stats: dict | None = None
    dense_stats: dict | None = None


def solve(
    problem: InputModel,
    judge: Judge,
    *,
    sense: int,
    clock: Callable[[], float],
    time_limit: float,
    surrogate: Any = None,
    prune_options: dict | None = None,
    fallback: bool = True,
    stop_at_first_valid: bool = False,
    start: np.ndarray | None = None,
    dense_params: dict | None = None,
    check_validity: bool = True,
) -> Outcome:
    """Solve the model's objective, directly or through a :class:`SurrogateSwap`.

    Parameters
    ----------
    problem : InputModel
        With its objective set.
    judge : callable
        ``judge(x) -> (dense objective value, valid)`` for one input vector, from a torch
        forward pass of the dense network.
    sense : int
        ``GRB.MINIMIZE`` or ``GRB.MAXIMIZE``.
    clock : callable
        Seconds since the start of the caller.
    time_limit : float
        Seconds left for this solve (pruning and embedding a surrogate included).
    surrogate, prune_options, fallback, stop_at_first_valid, dense_params :
        As in :class:`SurrogateSwap` and its ``optimize``; without ``surrogate`` the dense
        model is solved directly (``dense_params`` applied).
    start : numpy.ndarray, optional
        Input values to start from.
    check_validity : bool
        Whether ``judge``'s validity matters (False: every solution is valid).
    """
    if surrogate is None:
        return _solve_dense(
            problem, judge, sense, clock, time_limit, stop_at_first_valid, start, dense_params
        )
    began = time.perf_counter()
    swap = SurrogateSwap(
        problem.model,
        problem.predictor,
        surrogate,
        prune_options=prune_options,
        embed_options=problem.options,
        dense_options=problem.options,
        valid=(lambda inputs, outputs: judge(inputs[0])[1]) if check_validity else None,
    )
    outcome = Outcome(pruning_seconds=swap.pruning_seconds)
    left = time_limit - (time.perf_counter() - began)  # pruning counts
    result = swap.optimize(
        time_limit=max(left, 1e-3),
        fallback=fallback,
        stop_at_first_valid=stop_at_first_valid,
        initial_inputs=start,
        dense_params=dense_params,
        restore=False,  # the model is discarded afterwards
    )
    stats = {p["name"]: p.get("model_stats") for p in result.phases}
    outcome.surrogate_stats = stats.get("surrogate 0")
    outcome.dense_stats = stats.get("dense")
    offset = clock() - (time.perf_counter() - result.started_at)
    # the swap's records, on the caller's clock
    outcome.history.extend(replace(h, time=offset + h.time) for h in result.history)
    valid = [h for h in outcome.history if h.valid]
    if valid:
        outcome.first_valid = valid[0].time
    if result.inputs is not None:
        outcome.best_x = np.asarray(result.inputs[0])
        outcome.best_value = result.objective
        sign = 1.0 if sense == GRB.MAXIMIZE else -1.0
        best = next(h for h in valid if sign * h.dense_objective >= sign * result.objective - 1e-9)
        outcome.best_time, outcome.found_by = best.time, best.phase
    if any(p["name"] == "dense" for p in result.phases):
        outcome.bound = result.bound
    outcome.optimal = result.status == "optimal"
    outcome.interrupted = result.interrupted
    return outcome


def _solve_dense(problem, judge, sense, clock, time_limit, stop, start, params) -> Outcome:
    """Solve the dense model, judging every incumbent with a torch forward pass."""
    m, x = problem.model, problem.x
    outcome = Outcome()
    m.setParam("TimeLimit", max(time_limit, 0.0))
    for name, value in (params or {}).items():
        m.setParam(name, value)
    if start is not None:
        m.setAttr("Start", x.tolist(), np.asarray(start, dtype=np.float64).tolist())
    sign = 1.0 if sense == GRB.MAXIMIZE else -1.0

    def offer(values: np.ndarray, objective: float) -> bool:
        value, valid = judge(values)
        now = clock()
        outcome.history.append(Incumbent(now, "dense", objective, value, True, valid))
        if valid:
            if outcome.first_valid is None:
                outcome.first_valid = now
            if outcome.best_value is None or sign * value > sign * outcome.best_value:
                outcome.best_value, outcome.best_x, outcome.best_time = value, values, now
                outcome.found_by = "dense"
        return valid

    outcome.interrupted = optimize_judging(m, x.tolist(), offer, stop)
    outcome.optimal = m.Status == GRB.OPTIMAL
    outcome.bound = proven_bound(m)
    return outcome


def record_outcome(result: Any, outcome: Outcome) -> None:
    """Copy what an :class:`Outcome` says into an application's result object.

    Sets ``pruning_seconds``, ``model_stats`` (``dense`` and ``surrogate``, for the
    embeddings that were built), ``bounding_seconds`` (their bounding time added up) and
    extends ``history`` with the outcome's :class:`Incumbent` records.
    """
    result.pruning_seconds = outcome.pruning_seconds
    result.interrupted = outcome.interrupted
    if outcome.surrogate_stats is not None:
        result.model_stats["surrogate"] = outcome.surrogate_stats
    if outcome.dense_stats is not None:
        result.model_stats["dense"] = outcome.dense_stats
    result.bounding_seconds = sum(s["bounds_seconds"] for s in result.model_stats.values())
    result.history.extend(outcome.history)


def check_time_limit(time_limit: float) -> float:
    """Validate a time limit in seconds (a positive, finite number; not a bool)."""
    return solving.check_time_limit(time_limit)
