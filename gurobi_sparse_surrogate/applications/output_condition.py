"""Inputs of a box whose outputs meet linear conditions: the general path under :func:`verify`.

The question: is there an input ``x`` in a box whose outputs ``y = f(x)`` lie in one of the
polytopes ``A_j y <= b_j``? Its value is ``min_j max_i (A_j y - b_j)_i``: negative at an
answer, positive everywhere when there is none. It is answered with the machinery of
:func:`~gurobi_sparse_surrogate.find_adversarial`, stage by stage:

1. :func:`prove_unreachable`: objective-aware bounds. The polytope's rows are folded into the
   network's last layer and bounded over the box by a bounding method
   (:data:`~gurobi_sparse_surrogate.bounds.problem.METHODS`); a row whose lower bound is
   positive proves the polytope unreachable before any MILP is built. This is the hook for
   stronger objective-aware bounds: register a method and pass its name.
2. :func:`attack_polytope`: projected gradient descent on ``max_i (A y - b)_i`` over the box.
3. :func:`solve_polytopes`: the dense network embedded with its bounds
   (:func:`~gurobi_sparse_surrogate.applications.common.build_fitting_input_model`), the value above
   minimised, every incumbent judged with a float64 torch forward pass (or through a pruned
   surrogate, with fallback to the dense model), through
   :func:`~gurobi_sparse_surrogate.applications.common.solve`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gurobipy as gp
import numpy as np
import scipy.sparse as sp
import torch
from gurobipy import GRB
from torch import nn

from ..bounds.problem import compute_bounds
from ..domains import Box
from ..exceptions import SparseSurrogateError
from ..network.extraction import Float64Network, Layer
from ..solving import Incumbent
from ..torch_threads import single_torch_thread
from .adversarial import MARGIN_TOL, ROBUST_TOL
from .attacks import _check_budget, _default_step, _descend, _prepare, _starts
from .common import build_fitting_input_model, default_bound_options, solve
from .vnnlib import OutputPolytope

__all__ = [
    "ConditionOutcome",
    "attack_polytope",
    "fold_polytope",
    "prove_unreachable",
    "solve_polytopes",
]

#: An input counts as an answer when its value ``min_j max_i (A_j y - b_j)_i`` (torch,
#: float64) is below ``-SAT_TOL``: every row of a polytope holds with that margin.
SAT_TOL = MARGIN_TOL
#: A proven lower bound of the value must exceed this to count as a proof that no input
#: answers (it absorbs the solver's tolerances), as for robustness in find_adversarial.
UNSAT_TOL = ROBUST_TOL
#: Bounds computed in floating point (not by a solver) prove with this margin.
PROOF_TOL = 1e-9


@dataclass
class ConditionOutcome:
    """What :func:`solve_polytopes` found.

    Attributes
    ----------
    status : {"found", "none", "undecided"}
        ``"found"``: :attr:`x` is in the box and its outputs meet polytope :attr:`polytope`
        with margin ``SAT_TOL`` (torch, float64). ``"none"``: proved on the dense model that
        no input of the box meets any of the polytopes. ``"undecided"``: see :attr:`reason`.
    """

    status: str
    x: np.ndarray | None = None
    value: float | None = None
    polytope: int | None = None
    bound: float | None = None
    found_by: str | None = None
    reason: str = ""
    timed_out: bool = False
    model_stats: dict = field(default_factory=dict)
    history: list[Incumbent] = field(default_factory=list)


def polytope_values(polytopes: Sequence[OutputPolytope], y: np.ndarray) -> np.ndarray:
    """``max_i (A_j y - b_j)_i`` for each polytope ``j`` at outputs ``y`` ``(n_outputs,)``."""
    return np.array([float(p.violation(y)) for p in polytopes])


# --------------------------------------------------------------------------- bounds


def fold_polytope(layers: Sequence[Layer], polytope: OutputPolytope) -> list[Layer]:
    """The layers of ``x -> A f(x) - b``: the rows folded into the last affine layer (or
    appended after a final ReLU or max pool)."""
    A = sp.csr_array(polytope.A)
    last = layers[-1]
    if last.relu or last.kind != "affine":
        extra = Layer(
            A,
            -np.asarray(polytope.b, dtype=np.float64),
            False,
            "property rows",
            input_shape=(last.n_out,),
            output_shape=(A.shape[0],),
        )
        return [*layers, extra]
    weight = sp.csr_array(A @ last.weight)
    weight.eliminate_zeros()
    bias = A @ last.bias - polytope.b
    folded = dataclasses.replace(
        last,
        weight=weight,
        bias=np.asarray(bias, dtype=np.float64),
        name=f"{last.name} folded with the property rows",
        output_shape=(A.shape[0],),
    )
    return [*layers[:-1], folded]


def prove_unreachable(
    layers: Sequence[Layer],
    box: Box,
    polytope: OutputPolytope,
    method: str = "linear",
    **options: Any,
) -> float:
    """A lower bound of ``max_i (A y - b)_i`` over the box, from objective-aware bounds.

    The rows ``A y - b`` are folded into the network (:func:`fold_polytope`) and bounded with
    ``compute_bounds(..., method=method)``; the largest row lower bound is returned. A value
    above ``PROOF_TOL`` proves that no input of the box has outputs in the polytope.

    This is the place for stronger objective-aware bounds (alpha-CROWN and the like): any
    method registered with :func:`~gurobi_sparse_surrogate.bounds.problem.register_method`
    can be named here (``verify(..., proof_bounds=name)``).
    """
    if not len(polytope.b):
        return -np.inf
    folded = fold_polytope(layers, polytope)
    bounds = compute_bounds(folded, box.lower, box.upper, method=method, domain=box, **options)
    return float(np.max(bounds.lower[-1]))


# --------------------------------------------------------------------------- attack


def attack_polytope(
    network: nn.Module,
    box: Box,
    polytope: OutputPolytope,
    *,
    steps: int = 100,
    restarts: int = 5,
    step_size: float | None = None,
    seed: int = 0,
    time_budget: float | None = 1.0,
) -> tuple[np.ndarray, float]:
    """Projected gradient descent on ``max_i (A y - b)_i`` over the box.

    Starts at the box's centre and ``restarts - 1`` samples of it, stops as soon as the
    value is below ``-SAT_TOL``. Returns the best point (in the box) and its value from a
    float64 forward pass.
    """
    _check_budget(steps, restarts, step_size, time_budget)
    start = time.perf_counter()
    model = _prepare(network)
    A = torch.from_numpy(np.asarray(polytope.A, dtype=np.float64))
    b = torch.from_numpy(np.asarray(polytope.b, dtype=np.float64))

    def value(x: torch.Tensor) -> torch.Tensor:
        return (model(x) @ A.T - b).max(dim=1).values

    with single_torch_thread():
        best_x, _, _ = _descend(
            value,
            box,
            _starts(box, np.asarray(box.center), int(restarts), seed),
            steps=int(steps),
            step_size=step_size or _default_step(box, steps),
            deadline=np.inf if time_budget is None else start + time_budget,
            stop_below=-SAT_TOL,
        )
    best_x = np.clip(best_x, box.lower, box.upper)
    with torch.no_grad():
        y = model(torch.from_numpy(best_x[None, :])).numpy()[0]
    return best_x, float(polytope.violation(y))


# --------------------------------------------------------------------------- MILP


def _add_value(model: gp.Model, y: list, polytopes: Sequence[OutputPolytope], bounds) -> gp.Var:
    """Variables ``t_j >= (A_j y - b_j)_i`` and ``z = min_j t_j``; returns ``z``."""
    lower, upper = bounds
    ts = []
    for j, polytope in enumerate(polytopes):
        A, b = np.asarray(polytope.A), np.asarray(polytope.b)
        lb, ub = -GRB.INFINITY, GRB.INFINITY
        if np.isfinite(lower).all() and np.isfinite(upper).all():
            # bounds of each row from the output bounds (interval arithmetic)
            row_lo = np.maximum(A, 0) @ lower + np.minimum(A, 0) @ upper - b
            row_hi = np.maximum(A, 0) @ upper + np.minimum(A, 0) @ lower - b
            lb, ub = float(np.max(row_lo)), float(np.max(row_hi))
        t = model.addVar(lb=min(lb, ub), ub=ub, name=f"property_{j}")
        for i in range(A.shape[0]):
            nz = np.flatnonzero(A[i])
            row = gp.LinExpr(A[i, nz].tolist(), [y[k] for k in nz]) - float(b[i])
            model.addConstr(row <= t, name=f"property_{j}_row_{i}")
        ts.append(t)
    if len(ts) == 1:
        return ts[0]
    z = model.addVar(lb=-GRB.INFINITY, name="property")
    model.addGenConstrMin(z, ts)
    return z


def solve_polytopes(
    network: nn.Module,
    box: Box,
    polytopes: Sequence[OutputPolytope],
    *,
    time_limit: float,
    clock: Callable[[], float],
    deadline: float,
    threads: int = 1,
    bounds: Any = "auto",
    bound_options: dict | None = None,
    relu_formulation: str = "bigm",
    surrogate: Any = None,
    prune_options: dict | None = None,
    start: np.ndarray | None = None,
    seed: int = 0,
    verbose: bool = False,
) -> ConditionOutcome:
    """Minimise ``min_j max_i (A_j y - b_j)_i`` over the box with the network embedded.

    Stops at the first input that torch confirms (value below ``-SAT_TOL``) or when the
    dense model's bound exceeds ``UNSAT_TOL``. ``deadline`` is on ``clock``'s scale.
    """
    forward = Float64Network(network)
    lower, upper = box.lower, box.upper

    def judge(x: np.ndarray) -> tuple[float, bool]:
        x = np.clip(np.asarray(x, dtype=np.float64), lower, upper)
        values = polytope_values(polytopes, forward(x))
        return float(values.min()), bool(values.min() < -SAT_TOL)

    outcome = ConditionOutcome("undecided")
    try:
        # big-M first, then Gurobi's max constraints when big-M rows exceed the licence
        problem, too_large = build_fitting_input_model(
            network,
            box,
            threads=threads,
            bounds=bounds,
            relu_formulation=relu_formulation,
            bound_options=default_bound_options(
                bounds, bound_options, time_limit, box, [start], seed
            ),
            verbose=verbose,
            placeholder=surrogate is not None,
        )
    except SparseSurrogateError as error:
        outcome.reason = f"no MILP: {error}"
        return outcome
    if problem is None:
        outcome.reason = f"no MILP: {too_large}"
        return outcome
    try:
        predictor = problem.predictor
        if not problem.placeholder:
            outcome.model_stats["dense"] = predictor.stats
        y = predictor.output[0].tolist()
        out_bounds = (np.full(len(y), -np.inf), np.full(len(y), np.inf))
        if not problem.placeholder and predictor.bounds is not None:
            # the dense embedding's output bounds bound the rows (not a surrogate's)
            out_bounds = network_output_bounds(predictor) or out_bounds
        z = _add_value(problem.model, y, polytopes, out_bounds)
        problem.model.setObjective(z, GRB.MINIMIZE)
        remaining = deadline - clock()
        if remaining <= 0:
            outcome.timed_out = True
            outcome.reason = "the time limit was reached before the MILP"
            return outcome
        result = solve(
            problem,
            judge,
            sense=GRB.MINIMIZE,
            clock=clock,
            time_limit=remaining,
            surrogate=surrogate,
            prune_options=prune_options,
            fallback=True,
            stop_at_first_valid=True,
            start=start,
            dense_params={"BestBdStop": 2 * UNSAT_TOL},
        )
        outcome.history = result.history
        if result.surrogate_stats is not None:
            outcome.model_stats["surrogate"] = result.surrogate_stats
        if result.dense_stats is not None:
            outcome.model_stats["dense"] = result.dense_stats
        outcome.bound = result.bound
        if result.best_x is not None:
            x = np.clip(np.asarray(result.best_x, dtype=np.float64), lower, upper)
            values = polytope_values(polytopes, forward(x))
            outcome.status, outcome.x = "found", x
            outcome.value, outcome.polytope = float(values.min()), int(values.argmin())
            outcome.found_by = result.found_by
        elif result.bound is not None and result.bound > UNSAT_TOL:
            outcome.status = "none"
        elif clock() >= deadline - 1e-3:
            outcome.timed_out = True
            outcome.reason = "the time limit was reached during the MILP"
        else:
            outcome.reason = (
                "the MILP ended without an answer"
                if result.bound is None
                else f"the MILP's proven bound {result.bound:.3g} is not above {UNSAT_TOL:g}"
            )
        return outcome
    finally:
        problem.dispose()


def network_output_bounds(predictor: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Bounds of the network's outputs from the embedding's pre-activation bounds."""
    b = predictor.bounds
    layer = predictor.layers[-1]
    lo, hi = np.asarray(b.lower[-1])[0], np.asarray(b.upper[-1])[0]
    if layer.relu:
        lo, hi = np.maximum(lo, 0.0), np.maximum(hi, 0.0)
    if lo.shape != (layer.n_out,):
        return None
    return lo, hi
