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
from dataclasses import dataclass, field
from typing import Any

import gurobipy as gp
import numpy as np
from gurobipy import GRB
from torch import nn

from .domains import Domain
from .network import float64_copy
from .predictor import SparseSequentialConstr, add_sparse_predictor_constr
from .surrogate import SurrogateSwap, SwapResult

#: Judge of an input: ``(dense objective value, valid)``.
Judge = Callable[[np.ndarray], tuple[float, bool]]


@dataclass
class InputModel:
    """A Gurobi model with the inputs in a domain and the dense network embedded."""

    model: gp.Model
    env: gp.Env
    x: gp.MVar
    predictor: SparseSequentialConstr
    bounding_seconds: float

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
    verbose: bool,
) -> InputModel:
    """A model with ``x`` in ``domain`` and ``network`` embedded by this package."""
    if not isinstance(domain, Domain):
        raise TypeError(f"domain must be a Box, LinfBall or L1Ball, got {type(domain).__name__}")
    env = gp.Env(params={"OutputFlag": int(verbose), "Threads": int(threads)})
    model = gp.Model(env=env)
    x = model.addMVar(domain.n, lb=domain.lower, ub=domain.upper, name="x")
    domain.add_to_model(model, x)
    start = time.perf_counter()
    predictor = add_sparse_predictor_constr(
        model, network, x, bounds=bounds, domain=domain, relu_formulation=relu_formulation
    )
    return InputModel(model, env, x, predictor, time.perf_counter() - start)


@dataclass
class Record:
    """One incumbent judged on the dense network."""

    time: float
    phase: str
    solver_objective: float | None
    dense_objective: float
    valid: bool


@dataclass
class DirectRun:
    """Outcome of :func:`solve_dense`."""

    history: list[Record] = field(default_factory=list)
    best_x: np.ndarray | None = None
    best_value: float | None = None
    first_valid: float | None = None
    status: int = GRB.LOADED
    bound: float | None = None


def solve_dense(
    problem: InputModel,
    judge: Judge,
    *,
    sense: int,
    time_limit: float,
    clock: Callable[[], float],
    stop_at_first_valid: bool,
    start: np.ndarray | None,
    params: dict | None = None,
) -> DirectRun:
    """Solve the dense model, judging every incumbent with ``judge`` (a torch forward pass)."""
    m, x = problem.model, problem.x
    run = DirectRun()
    m.setParam("TimeLimit", max(time_limit, 0.0))
    for name, value in (params or {}).items():
        m.setParam(name, value)
    if start is not None:
        m.setAttr("Start", x.tolist(), np.asarray(start, dtype=np.float64).tolist())
    sign = 1.0 if sense == GRB.MAXIMIZE else -1.0

    def callback(model, where):
        if where != GRB.Callback.MIPSOL:
            return
        values = np.array(model.cbGetSolution(x.tolist()))
        value, valid = judge(values)
        now = clock()
        run.history.append(Record(now, "dense", model.cbGet(GRB.Callback.MIPSOL_OBJ), value, valid))
        if valid:
            if run.first_valid is None:
                run.first_valid = now
            if run.best_value is None or sign * value > sign * run.best_value:
                run.best_value, run.best_x = value, values
            if stop_at_first_valid:
                model.terminate()

    m.optimize(callback)
    run.status = m.Status
    try:
        run.bound = float(m.ObjBound)
    except gp.GurobiError:
        run.bound = None
    return run


def dense_judge(network: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """A float64 forward pass of ``network`` for one input vector."""
    import torch

    model = float64_copy(network)

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.tensor(x, dtype=torch.float64)[None, :]).numpy()[0]

    return forward


def solve_with_surrogate(
    problem: InputModel,
    surrogate: Any,
    *,
    prune_options: dict | None,
    relu_formulation: str,
    bounds: Any,
    domain: Domain,
    valid: Callable[[np.ndarray, np.ndarray], bool] | None,
    time_limit: float,
    fallback: bool,
    stop_at_first_valid: bool,
    start: np.ndarray | None,
    dense_params: dict | None,
) -> tuple[SwapResult, dict, float]:
    """Solve through a :class:`SurrogateSwap`; returns the result, surrogate stats and its start.

    The swap's own clock starts after the surrogates are pruned; the third value is the
    time at which pruning began, relative to the swap's construction, so callers can place the
    swap's times on their own clock.
    """
    began = time.perf_counter()
    swap = SurrogateSwap(
        problem.model,
        problem.predictor,
        surrogate,
        prune_options=prune_options,
        embed_options={"relu_formulation": relu_formulation, "bounds": bounds, "domain": domain},
        valid=valid,
    )
    with swap:
        surrogate_stats = swap.surrogate_constr.stats
        left = time_limit - (time.perf_counter() - began)  # pruning and embedding count
        result = swap.optimize(
            time_limit=max(left, 1e-3),
            fallback=fallback,
            stop_at_first_valid=stop_at_first_valid,
            initial_inputs=start,
            dense_params=dense_params,
        )
    return result, surrogate_stats, swap.pruning_seconds


def check_time_limit(time_limit: float) -> float:
    """Validate a time limit in seconds."""
    if not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    return float(time_limit)
