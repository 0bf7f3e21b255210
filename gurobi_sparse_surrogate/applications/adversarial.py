"""Adversarial search and robustness verification: :func:`find_adversarial`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gurobipy import GRB
from torch import nn

from ..bounds.cache import cached_compute_bounds
from ..bounds.objective import bound_output_objective
from ..domains import Domain
from ..exceptions import InvalidOptionError, ShapeMismatchError, SparseSurrogateError
from ..network.extraction import Float64Network, extract_layers
from ..solving import Incumbent
from ..summaries import compact_repr, number, phase_table, phases_from_history, seconds
from ..verbosity import logs_when_verbose
from .attacks import AttackOptions, pgd_attack
from .common import (
    build_fitting_input_model,
    check_time_limit,
    default_bound_options,
    record_outcome,
    solve,
)

logger = logging.getLogger(__name__)

STATUSES = ("adversarial", "robust", "unknown")
#: A dense margin (torch, float64) must be below ``-MARGIN_TOL`` to count as adversarial.
MARGIN_TOL = 1e-6
#: The solver's proven bound on the margin must exceed ``ROBUST_TOL`` to count as a proof of
#: robustness: it absorbs Gurobi's feasibility and integrality tolerances.
ROBUST_TOL = 1e-4
#: Objective-bound cuts are relaxed by this relative amount against the solver's tolerances.
CUT_SLACK = 1e-5


@dataclass
class AdversarialResult:
    """The outcome of :func:`find_adversarial`, judged on the dense network.

    Attributes
    ----------
    status : {"adversarial", "robust", "unknown"}
        ``"adversarial"``: :attr:`x` lies in the domain and the dense network does not
        classify it as :attr:`label` (checked with torch). ``"robust"``: proved on the dense
        model that no input of the domain lets the target class (for ``target="any"``: any
        other class) overtake the true one. ``"unknown"``: neither within the time limit.
    x : numpy.ndarray or None
        The adversarial input (or, when none was found, the input with the smallest dense
        margin seen).
    label, target : int
        The true class and the class that was to overtake it (for ``"any"`` the class with
        the largest other logit at :attr:`x`).
    dense_margin : float or None
        ``logit[label] - logit[target]`` of the dense network at :attr:`x` (negative when
        adversarial).
    bound : float or None
        A proven lower bound on the margin over the domain (positive means robust).
    time_to_first : float or None
        Seconds from the call to the first adversarial input (attack, pruning and bounding
        included).
    runtime : float
        Total seconds.
    attack_seconds, pruning_seconds, bounding_seconds : float
        Time spent in each of those stages.
    found_by : str or None
        ``"attack"``, ``"surrogate ..."``, ``"repair"`` or ``"dense"``.
    model_stats : dict
        Formulation statistics: ``dense`` and, with a surrogate, ``surrogate``.
    history : list of Incumbent
        Every incumbent: time, phase, solver objective, the dense margin
        (``dense_objective``), valid.
    proof_seconds : float
        Time spent on objective-aware bounds (:func:`bound_output_objective`) before the MILP.
    proven_classes : list of int
        Classes proven unable to overtake the label by those bounds (they leave the MILP).
    reason : str or None
        Why the status is ``"unknown"`` (time limit, a model too large for the licence...).
    interrupted : bool
        The call was interrupted (Ctrl-C, SIGINT) and returned what it had found by then.
    """

    status: str
    x: np.ndarray | None
    label: int
    target: int
    dense_margin: float | None
    bound: float | None
    time_to_first: float | None
    runtime: float
    attack_seconds: float = 0.0
    pruning_seconds: float = 0.0
    bounding_seconds: float = 0.0
    found_by: str | None = None
    model_stats: dict = field(default_factory=dict)
    history: list[Incumbent] = field(default_factory=list)
    proof_seconds: float = 0.0
    proven_classes: list[int] = field(default_factory=list)
    reason: str | None = None
    interrupted: bool = False

    def __repr__(self) -> str:
        return compact_repr(
            "AdversarialResult",
            {
                "status": self.status,
                "label": self.label,
                "target": self.target,
                "dense_margin": self.dense_margin,
                "time_to_first": self.time_to_first,
                "runtime": self.runtime,
                "found_by": self.found_by,
            },
        )

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """A few lines: status, margin and bound, times, and one row per phase.

        Examples
        --------
        >>> r = AdversarialResult("adversarial", None, 3, 5, -0.25, None, 0.5, 1.25,
        ...                       found_by="surrogate 0",
        ...                       history=[Incumbent(0.5, "surrogate 0", -0.1, -0.25, True, True)])
        >>> print(r.summary())
        find_adversarial: adversarial (found by surrogate 0)
          label 3, target 5, dense margin -0.25, proven margin bound -
          first adversarial after 0.50 s   total 1.25 s (attack 0.00 s, pruning 0.00 s, bounding 0.00 s)
          phase         seconds incumbents  valid  status
          surrogate 0         -          1      1
        """
        found = f" (found by {self.found_by})" if self.found_by else ""
        lines = [
            f"find_adversarial: {self.status}{found}",
            f"  label {self.label}, target {self.target}, dense margin "
            f"{number(self.dense_margin)}, proven margin bound {number(self.bound)}",
            f"  first adversarial after {seconds(self.time_to_first):<8} total "
            f"{seconds(self.runtime)} (attack {seconds(self.attack_seconds)}, pruning "
            f"{seconds(self.pruning_seconds)}, bounding {seconds(self.bounding_seconds)})",
            *phase_table(phases_from_history(self.history)),
        ]
        if self.proven_classes:
            lines.insert(2, f"  proven before any MILP: classes {self.proven_classes}")
        if self.reason:
            lines.insert(2, f"  reason: {self.reason}")
        return "\n".join(lines)


def _classes(logits: np.ndarray, target: Any, true_label: Any) -> tuple[int, int | None]:
    n = logits.size
    if n < 2:
        raise ValueError("find_adversarial needs a classifier with at least 2 outputs")
    label = int(np.argmax(logits)) if true_label is None else int(true_label)
    if not 0 <= label < n:
        raise ValueError(f"true_label must be in [0, {n}), got {true_label}")
    if isinstance(target, str):
        if target == "any":
            return label, None
        if target == "runner-up":
            order = np.argsort(-logits, kind="stable")
            return label, int(order[0] if order[0] != label else order[1])
        raise ValueError(f"target must be 'runner-up', 'any' or a class index, got {target!r}")
    if isinstance(target, (int, np.integer)) and 0 <= target < n and target != label:
        return label, int(target)
    raise ValueError(
        f"target must be 'runner-up', 'any' or a class index in [0, {n}) other than the "
        f"true label {label}, got {target!r}"
    )


@logs_when_verbose
def find_adversarial(
    network: nn.Module,
    x0: Any,
    domain: Domain,
    *,
    target: int | str = "runner-up",
    true_label: int | None = None,
    time_limit: float = 60.0,
    threads: int = 1,
    stop_at_first: bool = True,
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
    proof_steps: int | None = 30,
) -> AdversarialResult:
    """Search the domain for an input the dense network misclassifies, or prove there is none.

    The paper's verification application: minimise ``logit[label] - logit[target]`` over the
    domain. An attack stage (projected gradient on the dense network) runs first; its point
    answers at once when it is already adversarial and is otherwise a MIP start. The MILP
    is the dense network's sparsity-aware embedding, or (with ``surrogate``) a pruned
    surrogate whose incumbents are judged on the dense network, with fallback to the dense
    model.

    Parameters
    ----------
    network : torch.nn.Sequential
        The dense classifier (not modified).
    x0 : array_like
        The reference input, shape ``(n,)``, inside ``domain``.
    domain : Box, LinfBall or L1Ball
        The inputs to search.
    target : "runner-up", "any" or int
        ``"runner-up"``: the class with the second largest logit at ``x0`` (the paper's
        choice); an int: that class; ``"any"``: any other class (the best wrong logit is
        maximised in one model).
    true_label : int, optional
        Defaults to the network's prediction at ``x0``.
    time_limit : float
        Seconds for the whole search (attack, pruning, bounding and solving).
    threads : int
        Gurobi threads.
    stop_at_first : bool
        Stop at the first adversarial input (the paper's question); otherwise search for the
        one with the smallest margin.
    surrogate : float, torch.nn.Sequential or list, optional
        A sparsity, a pruned network, or a schedule (see :class:`SurrogateSwap`).
    prune_options : dict, optional
        Options of :func:`prune_network` for a surrogate given as a sparsity.
    fallback : bool
        With a surrogate: continue on the dense model after the surrogate phase.
    attack : bool
        Run the projected-gradient attack first.
    attack_options : dict, optional
        Options of :func:`~gurobi_sparse_surrogate.attacks.pgd_attack` (``steps``,
        ``restarts``, ``time_budget``...).
    bounds, bound_options, relu_formulation :
        Options of :func:`add_sparse_predictor_constr`, for the dense network and the
        surrogates. With ``bounds="auto"`` the bounding budget defaults to a tenth of
        ``time_limit`` (at most 5 s). With a surrogate, the dense embedding is only built
        with these options if the fallback runs.
    seed : int
        Seed of the attack.
    verbose : bool
        Show Gurobi's log and the package's own lines (bounding stages with a progress bar
        when they last, embedding sizes, swap phases; see
        :mod:`gurobi_sparse_surrogate.verbosity`).

    Returns
    -------
    AdversarialResult

    Examples
    --------
    >>> from gurobi_sparse_surrogate import L1Ball                        # doctest: +SKIP
    >>> r = find_adversarial(net, X[0], L1Ball(X[0], 5.0), surrogate=0.8)  # doctest: +SKIP
    >>> r.status, r.dense_margin, r.time_to_first                        # doctest: +SKIP
    """
    t0 = time.perf_counter()
    clock = lambda: time.perf_counter() - t0  # noqa: E731
    time_limit = check_time_limit(time_limit)
    if not isinstance(domain, Domain):
        raise InvalidOptionError(
            f"domain must be a Box, LinfBall or L1Ball, got {type(domain).__name__}"
        )
    x0 = np.asarray(x0, dtype=np.float64).reshape(-1)
    if x0.size != domain.n:
        raise ValueError(f"x0 has {x0.size} entries, the domain {domain.n}")
    if not domain.contains(x0):
        raise ValueError("x0 must lie inside the domain")
    forward = Float64Network(network)
    if forward.n_inputs != domain.n:
        raise ShapeMismatchError(
            f"the network has {forward.n_inputs} inputs but the domain has dimension {domain.n}"
        )
    label, target_class = _classes(forward(x0), target, true_label)

    def margin_at(x: np.ndarray) -> tuple[float, int]:
        logits = forward(x)
        if target_class is None:
            others = np.delete(np.arange(logits.size), label)
            runner = int(others[np.argmax(logits[others])])
        else:
            runner = target_class
        return float(logits[label] - logits[runner]), runner

    def misclassified(x: np.ndarray) -> bool:
        return bool(margin_at(x)[0] < -MARGIN_TOL and domain.contains(x))

    result = AdversarialResult(
        "unknown", None, label, -1 if target_class is None else target_class, None, None, None, 0.0
    )

    def finish(x: np.ndarray | None, status: str, found_by: str | None = None) -> AdversarialResult:
        if x is not None:
            result.x = np.asarray(x, dtype=np.float64)
            result.dense_margin, result.target = margin_at(result.x)
        result.status, result.found_by = status, found_by
        result.runtime = clock()
        return result

    try:
        start_point = None

        def undecided() -> AdversarialResult:
            """No proof and no MILP answer: the attack's point decides if it is adversarial."""
            if start_point is not None and misclassified(start_point):
                return finish(start_point, "adversarial", "attack")
            return finish(start_point, "unknown")

        if attack:
            options = {"steps": 100, "restarts": 5, "time_budget": min(1.0, 0.1 * time_limit)}
            options.update(AttackOptions.check(attack_options))
            found = pgd_attack(
                network,
                x0,
                domain,
                true_label=label,
                target="any" if target_class is None else target_class,
                seed=seed,
                **options,
            )
            result.attack_seconds = found.seconds
            start_point = found.x
            if misclassified(found.x):
                result.time_to_first = clock()
                result.history.append(
                    Incumbent(result.time_to_first, "attack", None, found.margin, True, True)
                )
                if stop_at_first:
                    return finish(found.x, "adversarial", "attack")

        others = [i for i in range(forward(x0).size) if i != label]
        candidates = others if target_class is None else [target_class]
        bound_opts = default_bound_options(
            bounds, bound_options, time_limit, domain, [x0, start_point], seed
        )
        proven_bounds: dict[int, float] = {}
        net_bounds = None

        def prove(intermediate: Any) -> None:
            """Drop the classes an objective-aware bound proves (margin > 0 over the domain)."""
            open_classes = [j for j in candidates if j not in proven_bounds]
            if not open_classes or not proofs:
                return
            began = time.perf_counter()
            rows = np.zeros((len(open_classes), len(others) + 1))
            rows[:, label] = 1.0
            rows[np.arange(len(open_classes)), open_classes] = -1.0
            try:
                found = bound_output_objective(
                    network, domain, rows, bounds=intermediate, steps=proof_steps
                )
            except SparseSurrogateError as error:  # a layer kind the proof does not support
                result.reason = f"no objective-aware proof: {error}"
                return
            finally:
                result.proof_seconds += time.perf_counter() - began
            for j, value in zip(open_classes, found.lower, strict=True):
                class_bounds[j] = max(class_bounds.get(j, -np.inf), float(value))
                if value > 0:
                    proven_bounds[j] = float(value)
            result.proven_classes = sorted(proven_bounds)
            logger.info(
                "find_adversarial: objective-aware bounds (%s intermediate bounds) prove %d of %d "
                "classes robust in %.3f s",
                found.bounds_method,
                len(proven_bounds),
                len(candidates),
                time.perf_counter() - began,
            )

        class_bounds: dict[int, float] = {}
        proofs = bool(proof_steps is not None and proof_steps >= 0)

        def all_proven() -> AdversarialResult | None:
            if all(j in proven_bounds for j in candidates):
                result.bound = min(proven_bounds[j] for j in candidates)
                return finish(start_point, "robust")
            return None

        prove("linear")
        if (done := all_proven()) is not None:
            return done
        if isinstance(bounds, str) and surrogate is None:
            # The embedding's own bounds (through the cache, so the embedding reuses them) are
            # usually tighter than "linear": prove again with them before building anything.
            began = time.perf_counter()
            net_bounds = cached_compute_bounds(
                extract_layers(network),
                domain.lower[None],
                domain.upper[None],
                bounds,
                domain,
                **bound_opts,
            )
            result.bounding_seconds += time.perf_counter() - began
            if net_bounds.method != "linear":
                prove(net_bounds)
                if (done := all_proven()) is not None:
                    return done
        remaining_classes = [j for j in candidates if j not in proven_bounds]
        if clock() >= time_limit:
            result.reason = "time limit reached before the MILP"
            return undecided()

        problem, reason = build_fitting_input_model(
            network,
            domain,
            threads=threads,
            bounds=bounds,
            relu_formulation=relu_formulation,
            bound_options=bound_opts,
            verbose=verbose,
            placeholder=surrogate is not None,
        )
        if problem is None:
            result.reason = reason
            return undecided()
        try:
            if not problem.placeholder:
                result.model_stats["dense"] = problem.predictor.stats
            y = problem.predictor.output[0]
            m = problem.model
            if len(remaining_classes) > 1:
                best_other = m.addVar(lb=-GRB.INFINITY, name="best_other_logit")
                m.addGenConstrMax(best_other, [y[i].item() for i in remaining_classes])
                objective = y[label] - best_other
            else:
                objective = y[label] - y[remaining_classes[0]]
            m.setObjective(objective, GRB.MINIMIZE)
            # Proven bounds are cuts: y_label - y_j >= bound_j holds for every input of the
            # domain (relaxed by the solver's tolerances so that no exact point is cut off).
            for j in remaining_classes:
                value = class_bounds.get(j, -np.inf)
                if np.isfinite(value):
                    slack = CUT_SLACK * (1.0 + abs(value))
                    m.addConstr(y[label] - y[j] >= value - slack, name=f"objective_bound[{j}]")
            # The dense model proves robustness as soon as its bound is positive; the callback
            # stops at the first input torch confirms as adversarial.
            dense_params = {"BestBdStop": 2 * ROBUST_TOL}
            remaining = time_limit - clock()
            if remaining <= 0:
                result.reason = "time limit reached before the MILP"
                return undecided()
            outcome = solve(
                problem,
                lambda x: (margin_at(x)[0], misclassified(x)),
                sense=GRB.MINIMIZE,
                clock=clock,
                time_limit=remaining,
                surrogate=surrogate,
                prune_options=prune_options,
                fallback=fallback,
                stop_at_first_valid=stop_at_first,
                start=start_point,
                dense_params=dense_params,
            )
            precomputed = result.bounding_seconds  # the embedding's bounds came from the cache
            record_outcome(result, outcome)
            result.bounding_seconds += precomputed
            if result.time_to_first is None:
                result.time_to_first = outcome.first_valid
            result.bound = outcome.bound
            if result.bound is not None and proven_bounds:
                result.bound = min(result.bound, *proven_bounds.values())
            if outcome.best_x is not None:
                return finish(outcome.best_x, "adversarial", outcome.found_by)
            if outcome.bound is not None and outcome.bound > ROBUST_TOL:
                return finish(start_point, "robust")
            result.reason = "interrupted" if result.interrupted else "time limit reached"
            return undecided()
        finally:
            problem.dispose()
    except KeyboardInterrupt:
        # Ctrl-C outside a Gurobi solve (attack, bounding, pruning): what was found so far
        result.interrupted = True
        result.reason = "interrupted"
        return undecided()


__all__ = ["AdversarialResult", "find_adversarial"]
