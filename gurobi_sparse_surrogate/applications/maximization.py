"""Function maximization over a trained network: :func:`maximize_output`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gurobipy import GRB
from torch import nn

from ..bounds.objective import bound_output_objective
from ..domains import Domain
from ..exceptions import InvalidOptionError, ShapeMismatchError, SparseSurrogateError
from ..network.extraction import Float64Network
from ..network.pruning import check_prune_options
from ..solving import Incumbent, check_threads
from ..summaries import compact_repr, number, phase_table, phases_from_history, seconds
from ..verbosity import logs_when_verbose
from .attacks import AttackOptions, pgd_maximize
from .common import (
    build_fitting_input_model,
    check_time_limit,
    default_bound_options,
    record_outcome,
    solve,
)


@dataclass
class MaximizationResult:
    """The outcome of :func:`maximize_output`, judged on the dense network.

    Attributes
    ----------
    value : float or None
        The best dense output value found.
    x : numpy.ndarray or None
        The input where it is attained (in the domain).
    optimal : bool
        Whether the dense model proved :attr:`value` optimal (within Gurobi's MIP gap).
    bound : float or None
        The best proven upper bound of the dense model (when it was solved).
    time_to_best : float or None
        Seconds from the call to the best value.
    runtime : float
        Total seconds.
    attack_seconds, pruning_seconds, bounding_seconds : float
        Time spent in the gradient warm start, pruning and bounding.
    model_stats : dict
        Formulation statistics: ``dense`` and, with a surrogate, ``surrogate``.
    history : list of Incumbent
        Every solution found: time, phase, solver objective, the dense value
        (``dense_objective``).
    reason : str or None
        Why the dense model was not solved to optimality, when it was not built at all
        (a model too large for the licence).
    interrupted : bool
        The call was interrupted (Ctrl-C, SIGINT) and returned what it had found by then.
    """

    value: float | None
    x: np.ndarray | None
    optimal: bool
    bound: float | None
    time_to_best: float | None
    runtime: float
    attack_seconds: float = 0.0
    pruning_seconds: float = 0.0
    bounding_seconds: float = 0.0
    model_stats: dict = field(default_factory=dict)
    history: list[Incumbent] = field(default_factory=list)
    reason: str | None = None
    interrupted: bool = False

    def __repr__(self) -> str:
        return compact_repr(
            "MaximizationResult",
            {
                "value": self.value,
                "optimal": self.optimal,
                "bound": self.bound,
                "time_to_best": self.time_to_best,
                "runtime": self.runtime,
            },
        )

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """A few lines: value and bound, times, and one row per phase.

        Examples
        --------
        >>> r = MaximizationResult(2.5, None, True, 2.5, 0.75, 1.5,
        ...                        history=[Incumbent(0.1, "dense", 1.0, 1.0, True, True)])
        >>> print(r.summary())
        maximize_output: optimal
          dense value 2.5, proven bound 2.5
          best found after 0.75 s   total 1.50 s (attack 0.00 s, pruning 0.00 s, bounding 0.00 s)
          phase         seconds incumbents  valid  status
          dense               -          1      1
        """
        status = (
            "optimal" if self.optimal else ("feasible" if self.value is not None else "no solution")
        )
        lines = [
            f"maximize_output: {status}",
            f"  dense value {number(self.value)}, proven bound {number(self.bound)}",
            f"  best found after {seconds(self.time_to_best):<8} total {seconds(self.runtime)} "
            f"(attack {seconds(self.attack_seconds)}, pruning {seconds(self.pruning_seconds)}, "
            f"bounding {seconds(self.bounding_seconds)})",
            *phase_table(phases_from_history(self.history)),
        ]
        return "\n".join(lines)


@logs_when_verbose
def maximize_output(
    network: nn.Module,
    domain: Domain,
    *,
    output_index: int = 0,
    time_limit: float = 60.0,
    threads: int = 1,
    surrogate: Any = None,
    prune_options: dict | None = None,
    fallback: bool = True,
    attack: bool = True,
    attack_options: dict | None = None,
    bounds: Any = "auto",
    bound_options: dict | None = None,
    relu_formulation: str = "bigm",
    seed: int = 0,
    verbose: bool = False,
) -> MaximizationResult:
    """Maximise one output of a ReLU network over a domain, judged on the dense network.

    The paper's second application. A projected-gradient ascent gives a warm start; the MILP
    is the dense network's sparsity-aware embedding or (with ``surrogate``) a pruned
    surrogate whose solutions are scored on the dense network, with fallback to the dense
    model.

    Parameters
    ----------
    network : torch.nn.Sequential
        The dense network (not modified).
    domain : Box, LinfBall or L1Ball
        The inputs to search (the paper: the box ``[0, 1]^n``).
    output_index : int
        Which output to maximise.
    time_limit, threads, surrogate, prune_options, fallback :
        As in :func:`find_adversarial`.
    bounds, bound_options, relu_formulation :
        As in :func:`find_adversarial`.
    attack : bool
        Run projected gradient ascent first, as a warm start.
    attack_options : dict, optional
        Options of :func:`~gurobi_sparse_surrogate.attacks.pgd_maximize`.
    seed : int
        Seed of the gradient ascent.
    verbose : bool
        Show Gurobi's log and the package's own lines (bounding stages with a progress bar
        when they last, embedding sizes, swap phases; see
        :mod:`gurobi_sparse_surrogate.verbosity`).

    Returns
    -------
    MaximizationResult

    Examples
    --------
    >>> import numpy as np
    >>> from gurobi_sparse_surrogate import Box
    >>> from gurobi_sparse_surrogate.datasets import random_relu_network
    >>> net = random_relu_network(5, depth=2, width=8, seed=0)
    >>> r = maximize_output(net, Box(np.zeros(5), np.ones(5)), time_limit=10)
    >>> r.optimal
    True
    """
    t0 = time.perf_counter()
    clock = lambda: time.perf_counter() - t0  # noqa: E731
    time_limit = check_time_limit(time_limit)
    threads = check_threads(threads)
    prune_options = check_prune_options(prune_options)
    if not isinstance(domain, Domain):
        raise InvalidOptionError(
            f"domain must be a Box, LinfBall or L1Ball, got {type(domain).__name__}"
        )
    forward = Float64Network(network)
    if forward.n_inputs != domain.n:
        raise ShapeMismatchError(
            f"the network has {forward.n_inputs} inputs but the domain has dimension {domain.n}"
        )
    n_out = forward(domain.lower).size
    if not (isinstance(output_index, (int, np.integer)) and 0 <= output_index < n_out):
        raise ValueError(f"output_index must be in [0, {n_out}), got {output_index!r}")
    result = MaximizationResult(None, None, False, None, None, 0.0)

    try:
        start_point = None
        if attack:
            options = {"steps": 100, "restarts": 5, "time_budget": min(1.0, 0.1 * time_limit)}
            options.update(AttackOptions.check(attack_options))
            warm = pgd_maximize(network, domain, output_index=output_index, seed=seed, **options)
            result.attack_seconds = warm.seconds
            start_point = warm.x
            value, now = float(forward(warm.x)[output_index]), clock()
            result.value, result.x, result.time_to_best = value, np.asarray(warm.x), now
            result.history.append(Incumbent(now, "attack", None, value, True, True))

        problem, reason = build_fitting_input_model(
            network,
            domain,
            threads=threads,
            bounds=bounds,
            relu_formulation=relu_formulation,
            bound_options=default_bound_options(
                bounds, bound_options, time_limit, domain, [start_point], seed
            ),
            verbose=verbose,
            placeholder=surrogate is not None,
        )
        if problem is None:
            # No MILP fits: the best input found so far stands, with an objective-aware bound.
            result.reason = reason
            try:
                c = -np.eye(n_out)[output_index]
                result.bound = -float(bound_output_objective(network, domain, c).lower[0])
            except SparseSurrogateError:
                pass
            result.runtime = clock()
            return result
        try:
            if not problem.placeholder:
                result.model_stats["dense"] = problem.predictor.stats
            problem.model.setObjective(problem.predictor.output[0, output_index], GRB.MAXIMIZE)
            remaining = time_limit - clock()
            if remaining <= 0:
                result.runtime = clock()
                return result
            outcome = solve(
                problem,
                lambda x: (float(forward(x)[output_index]), True),
                sense=GRB.MAXIMIZE,
                clock=clock,
                time_limit=remaining,
                surrogate=surrogate,
                prune_options=prune_options,
                fallback=fallback,
                start=start_point,
                check_validity=False,
            )
            record_outcome(result, outcome)
            if outcome.best_x is not None and (
                result.value is None or outcome.best_value > result.value
            ):
                result.value, result.x = outcome.best_value, outcome.best_x
                result.time_to_best = outcome.best_time
            result.optimal = outcome.optimal
            result.bound = outcome.bound
            result.runtime = clock()
            return result
        finally:
            problem.dispose()
    except KeyboardInterrupt:
        # Ctrl-C outside a Gurobi solve (attack, bounding, pruning): what was found so far
        result.interrupted = True
        result.reason = "interrupted"
        result.runtime = clock()
        return result
