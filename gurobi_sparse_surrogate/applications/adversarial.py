"""Adversarial search and robustness verification: :func:`find_adversarial`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gurobipy import GRB
from torch import nn

from ..bounds.alpha import optimise_intermediate_bounds
from ..bounds.branching import branch_and_bound
from ..bounds.cache import cached_compute_bounds
from ..bounds.objective import bound_output_objective
from ..domains import Domain
from ..exceptions import InvalidOptionError, ShapeMismatchError, SparseSurrogateError
from ..network.extraction import Float64Network, extract_layers
from ..network.pruning import check_prune_options
from ..solving import Incumbent, check_threads
from ..summaries import compact_repr, number, phase_table, phases_from_history, seconds
from ..verbosity import logs_when_verbose
from .attacks import AttackOptions, pgd_attack
from .common import (
    Outcome,
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
#: Gradient steps per hidden layer of the optimised intermediate bounds, and the share of the
#: time limit they may take.
ALPHA_STEPS = 20
ALPHA_BUDGET_SHARE = 0.1
#: With proofs on, ``bounds="auto"`` runs "linear" and optimised slopes instead of auto's LP
#: and MILP stages.
AUTO_IS_ALPHA = True
#: Branch and bound runs before the MILP when the optimised bounds leave at least this many
#: unstable ReLUs (smaller MILPs are solved faster by Gurobi: on mnistfc 256x2, 130 binaries,
#: it proved in 10 s what branch and bound had not after 50 s), with this share of the time
#: left; and with all the time left when no MILP fits the licence.
BRANCH_MIN_UNSTABLE = 250
BRANCH_SHARE = 0.5
#: Targeted attacks from the relaxation's inputs before the MILP: at most this many classes
#: (the least proven first), each with these steps and seconds.
RELAXATION_ATTACKS = 3
RELAXATION_ATTACK_STEPS = 100
RELAXATION_ATTACK_SECONDS = 0.5


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
    answers at once when it is already adversarial and is otherwise a MIP start. Then
    objective-aware bounds try to prove each class (``proof_steps``), and on networks with
    many unstable ReLUs branch and bound tries too
    (:func:`~gurobi_sparse_surrogate.bounds.branching.branch_and_bound`); every input they
    offer is checked with a torch forward pass. The MILP, for the classes left, is the dense
    network's sparsity-aware embedding, or (with ``surrogate``) a pruned surrogate whose
    incumbents are judged on the dense network, with fallback to the dense model.

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
        choice); an int: that class; ``"any"``: any other class (with ``stop_at_first`` and
        no surrogate, one MILP per class still open, on one model, the classes the start
        point comes closest to first; otherwise the best wrong logit is maximised in one
        MILP).
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
        Run the projected-gradient attack first, and after the proofs short targeted attacks
        from the relaxation's inputs of the classes still open.
    attack_options : dict, optional
        Options of :func:`~gurobi_sparse_surrogate.attacks.pgd_attack` (``steps``,
        ``restarts``, ``time_budget``...).
    bounds, bound_options, relu_formulation :
        Options of :func:`add_sparse_predictor_constr`, for the dense network and the
        surrogates. With ``bounds="auto"`` the bounding budget defaults to a tenth of
        ``time_limit`` (at most 5 s). With the objective-aware proofs on (``proof_steps``)
        and no surrogate, ``"auto"`` means ``"linear"`` bounds tightened by optimised ReLU
        slopes (:func:`~gurobi_sparse_surrogate.bounds.alpha.optimise_intermediate_bounds`),
        which the MILP then embeds; other methods are tightened the same way. With a
        surrogate, the dense embedding is only built with these options if the fallback
        runs.
    seed : int
        Seed of the attack.
    verbose : bool
        Show Gurobi's log and the package's own lines (bounding stages with a progress bar
        when they last, embedding sizes, swap phases; see
        :mod:`gurobi_sparse_surrogate.verbosity`).
    proof_steps : int or None
        Gradient steps of the objective-aware bounds
        (:func:`~gurobi_sparse_surrogate.bounds.objective.bound_output_objective`) that try
        to prove each class before any MILP is built (0: fixed slopes); ``None`` turns these
        proofs, and the optimised intermediate bounds that come with them, off.

    Returns
    -------
    AdversarialResult

    Examples
    --------
    >>> from gurobi_sparse_surrogate import L1Ball                        # doctest: +SKIP
    >>> r = find_adversarial(net, X[0], L1Ball(X[0], 5.0), surrogate=0.8)  # doctest: +SKIP
    >>> r.status, r.dense_margin, r.time_to_first                        # doctest: +SKIP
    """
    search = _Search.start(network, x0, domain, target, true_label, time_limit)
    prune_options = check_prune_options(prune_options)
    threads = check_threads(threads)
    try:
        if attack:
            done = search.attack_stage(attack_options, seed, stop_at_first)
            if done is not None:
                return done
        bound_opts = default_bound_options(
            bounds, bound_options, search.time_limit, domain, [search.x0, search.start_point], seed
        )
        done = search.proof_stage(bounds, bound_opts, surrogate, proof_steps)
        if done is not None:
            return done
        if attack:
            done = search.relaxation_stage(seed, stop_at_first)
            if done is not None:
                return done
        if surrogate is None and stop_at_first and search.unstable() >= BRANCH_MIN_UNSTABLE:
            done = search.branch_stage(BRANCH_SHARE)
            if done is not None:
                return done
        return search.milp_stage(
            threads=threads,
            bounds=bounds,
            bound_opts=bound_opts,
            relu_formulation=relu_formulation,
            verbose=verbose,
            surrogate=surrogate,
            prune_options=prune_options,
            fallback=fallback,
            stop_at_first=stop_at_first,
        )
    except KeyboardInterrupt:
        # Ctrl-C outside a Gurobi solve (attack, bounding, pruning): what was found so far
        search.result.interrupted = True
        search.result.reason = "interrupted"
        return search.undecided()


class _Search:
    """The state of one :func:`find_adversarial` call and its stages, in order: the attack,
    the objective-aware proofs, the MILP. Each stage returns the result when it decides the
    search, ``None`` otherwise."""

    def __init__(
        self,
        network: nn.Module,
        forward: Float64Network,
        x0: np.ndarray,
        domain: Domain,
        label: int,
        target_class: int | None,
        time_limit: float,
    ) -> None:
        self.t0 = time.perf_counter()
        self.network, self.forward, self.x0, self.domain = network, forward, x0, domain
        self.label, self.target_class = label, target_class
        self.time_limit = time_limit
        n_classes = forward(x0).size
        self.others = [i for i in range(n_classes) if i != label]
        #: the classes that must not overtake the label
        self.candidates = self.others if target_class is None else [target_class]
        #: the attack's point (a MIP start, and the answer when nothing else decides)
        self.start_point: np.ndarray | None = None
        #: best objective-aware lower bound of ``y_label - y_j`` per class, and the proven ones
        self.class_bounds: dict[int, float] = {}
        self.proven_bounds: dict[int, float] = {}
        #: intermediate bounds tightened by optimised slopes, for the MILP (None: its own)
        self.milp_bounds: Any = None
        #: per open class, the input where the relaxation's lower function is smallest
        self.relaxation_points: dict[int, np.ndarray] = {}
        self.result = AdversarialResult(
            "unknown",
            None,
            label,
            -1 if target_class is None else target_class,
            None,
            None,
            None,
            0.0,
        )

    @classmethod
    def start(
        cls,
        network: nn.Module,
        x0: Any,
        domain: Domain,
        target: Any,
        true_label: Any,
        time_limit: float,
    ) -> _Search:
        """Check the arguments (named errors) and set the search up."""
        t0 = time.perf_counter()
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
        search = cls(network, forward, x0, domain, label, target_class, time_limit)
        search.t0 = t0
        return search

    # -- judging on the dense network ---------------------------------------------------------

    def clock(self) -> float:
        """Seconds since the call."""
        return time.perf_counter() - self.t0

    def margin_at(self, x: np.ndarray) -> tuple[float, int]:
        """Dense margin ``logit[label] - logit[target]`` at ``x``, and the target class."""
        logits = self.forward(x)
        if self.target_class is None:
            others = np.delete(np.arange(logits.size), self.label)
            runner = int(others[np.argmax(logits[others])])
        else:
            runner = self.target_class
        return float(logits[self.label] - logits[runner]), runner

    def misclassified(self, x: np.ndarray) -> bool:
        """Whether ``x`` lies in the domain and torch does not classify it as the label."""
        return bool(self.margin_at(x)[0] < -MARGIN_TOL and self.domain.contains(x))

    def finish(
        self, x: np.ndarray | None, status: str, found_by: str | None = None
    ) -> AdversarialResult:
        """Fill the result in with ``x`` judged on the dense network."""
        result = self.result
        if x is not None:
            result.x = np.asarray(x, dtype=np.float64)
            result.dense_margin, result.target = self.margin_at(result.x)
        result.status, result.found_by = status, found_by
        result.runtime = self.clock()
        return result

    def undecided(self) -> AdversarialResult:
        """No proof and no MILP answer: the attack's point decides if it is adversarial."""
        if self.start_point is not None and self.misclassified(self.start_point):
            return self.finish(self.start_point, "adversarial", "attack")
        return self.finish(self.start_point, "unknown")

    # -- stages -------------------------------------------------------------------------------

    def attack_stage(
        self, attack_options: dict | None, seed: int, stop_at_first: bool
    ) -> AdversarialResult | None:
        """Projected gradient on the dense network; its point is kept as the MIP start."""
        options = {"steps": 100, "restarts": 5, "time_budget": min(1.0, 0.1 * self.time_limit)}
        options.update(AttackOptions.check(attack_options))
        found = pgd_attack(
            self.network,
            self.x0,
            self.domain,
            true_label=self.label,
            target="any" if self.target_class is None else self.target_class,
            seed=seed,
            **options,
        )
        self.result.attack_seconds = found.seconds
        self.start_point = found.x
        if not self.misclassified(found.x):
            return None
        self.result.time_to_first = self.clock()
        self.result.history.append(
            Incumbent(self.result.time_to_first, "attack", None, found.margin, True, True)
        )
        return self.finish(found.x, "adversarial", "attack") if stop_at_first else None

    def proof_stage(
        self, bounds: Any, bound_opts: dict, surrogate: Any, proof_steps: int | None
    ) -> AdversarialResult | None:
        """Objective-aware bounds, with linear and then the embedding's intermediate bounds;
        ``robust`` when every class is proven (no MILP at all)."""
        proofs = bool(proof_steps is not None and proof_steps >= 0)
        if proofs:
            self.prove("linear", proof_steps)
            if (done := self.all_proven()) is not None:
                return done
        if isinstance(bounds, str) and surrogate is None:
            # The embedding's own bounds (through the cache, so the embedding reuses them) are
            # usually tighter than "linear": prove again with them before building anything.
            # With proofs, "auto" means linear bounds tightened by optimised slopes: about as
            # tight as auto's per-neuron LPs (the same relaxation at its optimum) for a
            # fraction of their time.
            method = "linear" if (proofs and bounds == "auto" and AUTO_IS_ALPHA) else bounds
            began = time.perf_counter()
            net_bounds = cached_compute_bounds(
                extract_layers(self.network),
                self.domain.lower[None],
                self.domain.upper[None],
                method,
                self.domain,
                **bound_opts,
            )
            self.result.bounding_seconds += time.perf_counter() - began
            if proofs and net_bounds.method != "linear":
                self.prove(net_bounds, proof_steps)
                if (done := self.all_proven()) is not None:
                    return done
            if proofs:
                done = self.tighten_and_prove(net_bounds, proof_steps)
                if done is not None:
                    return done
        if self.clock() >= self.time_limit:
            self.result.reason = "time limit reached before the MILP"
            return self.undecided()
        return None

    def tighten_and_prove(self, net_bounds: Any, steps: int) -> AdversarialResult | None:
        """Tighten the hidden layers' bounds by optimised slopes (alpha-CROWN), prove again
        with them, and keep them for the MILP (fewer unstable neurons, fewer binaries)."""
        began = time.perf_counter()
        budget = max(0.0, min(ALPHA_BUDGET_SHARE * self.time_limit, self.time_limit - self.clock()))
        try:
            tightened = optimise_intermediate_bounds(
                self.network, self.domain, net_bounds, steps=ALPHA_STEPS, time_budget=budget
            )
        except SparseSurrogateError as error:  # a layer kind the slopes do not support
            logger.info("find_adversarial: no optimised intermediate bounds: %s", error)
            return None
        finally:
            self.result.bounding_seconds += time.perf_counter() - began
        self.milp_bounds = tightened
        self.prove(tightened, steps)
        return self.all_proven()

    def relaxation_stage(self, seed: int, stop_at_first: bool) -> AdversarialResult | None:
        """Forward passes of the relaxation's inputs of the open classes, then a short targeted
        attack from each: the relaxation points where the margin is likely smallest, which a
        gradient attack from the reference input may not reach. The best point becomes the MIP
        start."""
        if not self.relaxation_points:
            return None
        began = time.perf_counter()
        order = sorted(self.relaxation_points, key=lambda j: self.class_bounds.get(j, 0.0))
        best = self.start_point
        best_margin = np.inf if best is None else self.margin_at(best)[0]
        try:
            for j in order[:RELAXATION_ATTACKS]:
                point = self.relaxation_points[j]
                budget = min(RELAXATION_ATTACK_SECONDS, self.time_limit - self.clock())
                if budget <= 0:
                    break
                found = pgd_attack(
                    self.network,
                    point,
                    self.domain,
                    true_label=self.label,
                    target=j if self.target_class is None else self.target_class,
                    steps=RELAXATION_ATTACK_STEPS,
                    restarts=1,
                    seed=seed,
                    time_budget=budget,
                )
                for x in (point, found.x):
                    margin = self.margin_at(x)[0]
                    if margin < best_margin and self.domain.contains(x):
                        best, best_margin = np.asarray(x, dtype=np.float64), margin
                if best is not None and self.misclassified(best):
                    break
        finally:
            self.result.attack_seconds += time.perf_counter() - began
        self.start_point = best
        if best is None or not self.misclassified(best):
            return None
        self.result.time_to_first = self.clock()
        self.result.history.append(
            Incumbent(self.result.time_to_first, "relaxation attack", None, best_margin, True, True)
        )
        return self.finish(best, "adversarial", "relaxation attack") if stop_at_first else None

    def unstable(self) -> int:
        """Unstable ReLUs under the optimised intermediate bounds (0 without them)."""
        if self.milp_bounds is None:
            return 0
        return sum(
            int(((lo < 0) & (hi > 0)).sum())
            for lo, hi in zip(self.milp_bounds.lower[:-1], self.milp_bounds.upper[:-1], strict=True)
        )

    def branch_stage(self, share: float) -> AdversarialResult | None:
        """Branch and bound on unstable ReLUs (:func:`branch_and_bound`) for each open class,
        the nearest to a proof first, within a share of the time left: proven classes leave
        the MILP (their bounds become its cuts; an open class's bound does not, tight cuts
        made it slower), and a branch's input that torch finds misclassified answers."""
        if self.milp_bounds is None:
            return None
        open_classes = [j for j in self.candidates if j not in self.proven_bounds]
        open_classes.sort(key=lambda j: -self.class_bounds.get(j, -np.inf))
        began = time.perf_counter()
        budget = share * (self.time_limit - self.clock())
        try:
            for done, j in enumerate(open_classes):
                left = budget - (time.perf_counter() - began)
                if left <= 0:
                    break
                c = np.zeros(len(self.others) + 1)
                c[self.label], c[j] = 1.0, -1.0
                try:
                    found = branch_and_bound(
                        self.network,
                        self.domain,
                        c,
                        self.milp_bounds,
                        time_budget=left / (len(open_classes) - done),
                    )
                except SparseSurrogateError as error:
                    logger.info("find_adversarial: no branch and bound: %s", error)
                    return None
                logger.info(
                    "find_adversarial: branch and bound on class %d: %s, bound %.4g, %d branches "
                    "in %.2f s",
                    j,
                    found.status,
                    found.lower,
                    found.nodes,
                    found.seconds,
                )
                if found.point is not None and self.misclassified(found.point):
                    self.start_point = found.point
                    self.result.time_to_first = self.clock()
                    margin = self.margin_at(found.point)[0]
                    self.result.history.append(
                        Incumbent(self.clock(), "branch and bound", None, margin, True, True)
                    )
                    return self.finish(found.point, "adversarial", "branch and bound")
                # (an open class's bound is not a cut of the MILP: tight cuts made it slower)
                if found.status == "proven" and found.lower > 0:
                    self.proven_bounds[j] = found.lower
        finally:
            self.result.proof_seconds += time.perf_counter() - began
            self.result.proven_classes = sorted(self.proven_bounds)
        return self.all_proven()

    def prove(self, intermediate: Any, steps: int) -> None:
        """Drop the classes an objective-aware bound proves (margin > 0 over the domain)."""
        open_classes = [j for j in self.candidates if j not in self.proven_bounds]
        if not open_classes:
            return
        began = time.perf_counter()
        rows = np.zeros((len(open_classes), len(self.others) + 1))
        rows[:, self.label] = 1.0
        rows[np.arange(len(open_classes)), open_classes] = -1.0
        try:
            found = bound_output_objective(
                self.network, self.domain, rows, bounds=intermediate, steps=steps
            )
        except SparseSurrogateError as error:  # a layer kind the proof does not support
            self.result.reason = f"no objective-aware proof: {error}"
            return
        finally:
            self.result.proof_seconds += time.perf_counter() - began
        for row, (j, value) in enumerate(zip(open_classes, found.lower, strict=True)):
            self.class_bounds[j] = max(self.class_bounds.get(j, -np.inf), float(value))
            if value > 0:
                self.proven_bounds[j] = float(value)
                self.relaxation_points.pop(j, None)
            elif found.inputs is not None:
                self.relaxation_points[j] = found.inputs[row]
        self.result.proven_classes = sorted(self.proven_bounds)
        logger.info(
            "find_adversarial: objective-aware bounds (%s intermediate bounds) prove %d of %d "
            "classes robust in %.3f s",
            found.bounds_method,
            len(self.proven_bounds),
            len(self.candidates),
            time.perf_counter() - began,
        )

    def all_proven(self) -> AdversarialResult | None:
        """``robust`` when every candidate class is proven."""
        if all(j in self.proven_bounds for j in self.candidates):
            self.result.bound = min(self.proven_bounds[j] for j in self.candidates)
            return self.finish(self.start_point, "robust")
        return None

    def milp_stage(
        self,
        *,
        threads: int,
        bounds: Any,
        bound_opts: dict,
        relu_formulation: str,
        verbose: bool,
        surrogate: Any,
        prune_options: dict | None,
        fallback: bool,
        stop_at_first: bool,
    ) -> AdversarialResult:
        """Minimise the margin over the classes still unproven, on the dense model or through
        a surrogate; the answer is judged on the dense network."""
        if self.milp_bounds is not None and surrogate is None:
            bounds = self.milp_bounds
        problem, reason = build_fitting_input_model(
            self.network,
            self.domain,
            threads=threads,
            bounds=bounds,
            relu_formulation=relu_formulation,
            bound_options=bound_opts,
            verbose=verbose,
            placeholder=surrogate is not None,
        )
        if problem is None:
            # no MILP fits the licence: branch and bound with the time left
            if surrogate is None and stop_at_first:
                done = self.branch_stage(1.0)
                if done is not None:
                    return done
            self.result.reason = reason
            return self.undecided()
        try:
            if not problem.placeholder:
                self.result.model_stats["dense"] = problem.predictor.stats
            self._set_margin_objective(problem)
            remaining = self.time_limit - self.clock()
            if remaining <= 0:
                self.result.reason = "time limit reached before the MILP"
                return self.undecided()
            open_classes = [j for j in self.candidates if j not in self.proven_bounds]
            if surrogate is None and stop_at_first and len(open_classes) > 1:
                return self._judge_outcome(self._solve_per_class(problem, open_classes))
            outcome = self._solve_margin(
                problem,
                remaining,
                surrogate=surrogate,
                prune_options=prune_options,
                fallback=fallback,
                stop_at_first_valid=stop_at_first,
            )
            return self._judge_outcome(outcome)
        finally:
            problem.dispose()

    def _solve_margin(self, problem: Any, time_limit: float, **options: Any) -> Outcome:
        """Minimise the model's objective (a margin), every solution judged on the dense
        network from the start point; the dense model stops as soon as its bound is positive
        (robustness proven)."""
        return solve(
            problem,
            lambda x: (self.margin_at(x)[0], self.misclassified(x)),
            sense=GRB.MINIMIZE,
            clock=self.clock,
            time_limit=time_limit,
            start=self.start_point,
            dense_params={"BestBdStop": 2 * ROBUST_TOL},
            **options,
        )

    def _solve_per_class(self, problem: Any, open_classes: list[int]) -> Outcome:
        """One solve of the dense model per open class ``j`` (objective ``y_label - y_j``,
        stopped once its bound is positive or at the first adversarial input), the classes
        the start point comes closest to first. Each solve is far easier than the one with
        the maximum over the classes (whose relaxation is weak); the model is built once.

        A class whose solve ends without an adversarial input and without a proof (its bound
        at most ``ROBUST_TOL``) does not end the search: the next class may still have an
        adversarial input. The merged outcome's bound is the smallest class bound when every
        class was solved (None otherwise: an unsolved class's margin is unknown), and it is
        ``optimal`` when every solve ended with an optimum or a proof."""
        y = problem.predictor.output[0]
        if self.start_point is not None:
            logits = self.forward(self.start_point)
            open_classes = sorted(open_classes, key=lambda j: logits[self.label] - logits[j])
        merged = Outcome()
        bounds: list[float] = []
        finished = True
        for j in open_classes:
            left = self.time_limit - self.clock()
            if left <= 0:
                break
            problem.model.setObjective(y[self.label] - y[j], GRB.MINIMIZE)
            outcome = self._solve_margin(problem, left, stop_at_first_valid=True)
            merged.history.extend(outcome.history)
            merged.interrupted = outcome.interrupted
            if merged.first_valid is None:
                merged.first_valid = outcome.first_valid
            if outcome.best_x is not None:
                merged.best_x, merged.best_value = outcome.best_x, outcome.best_value
                merged.best_time, merged.found_by = outcome.best_time, outcome.found_by
                break
            bound = -np.inf if outcome.bound is None else float(outcome.bound)
            bounds.append(bound)
            logger.info(
                "find_adversarial: MILP on class %d: bound %.4g after %.2f s",
                j,
                bound,
                self.clock(),
            )
            finished = finished and (outcome.optimal or bound > ROBUST_TOL)
            if outcome.interrupted:
                break
        if bounds and len(bounds) == len(open_classes) and np.isfinite(min(bounds)):
            merged.bound = min(bounds)
            merged.optimal = finished
        merged.dense_stats = problem.predictor.stats
        return merged

    def _set_margin_objective(self, problem: Any) -> None:
        """Objective ``y_label - max_j y_j`` over the unproven classes, with the proven bounds
        as cuts (``y_label - y_j >= bound_j`` holds on the whole domain; relaxed by the
        solver's tolerances so that no exact point is cut off)."""
        remaining = [j for j in self.candidates if j not in self.proven_bounds]
        y = problem.predictor.output[0]
        m = problem.model
        if len(remaining) > 1:
            best_other = m.addVar(lb=-GRB.INFINITY, name="best_other_logit")
            m.addGenConstrMax(best_other, [y[i].item() for i in remaining])
            objective = y[self.label] - best_other
        else:
            objective = y[self.label] - y[remaining[0]]
        m.setObjective(objective, GRB.MINIMIZE)
        for j in remaining:
            value = self.class_bounds.get(j, -np.inf)
            if np.isfinite(value):
                slack = CUT_SLACK * (1.0 + abs(value))
                m.addConstr(y[self.label] - y[j] >= value - slack, name=f"objective_bound[{j}]")

    def _judge_outcome(self, outcome: Any) -> AdversarialResult:
        result = self.result
        precomputed = result.bounding_seconds  # the embedding's bounds came from the cache
        record_outcome(result, outcome)
        result.bounding_seconds += precomputed
        if result.time_to_first is None:
            result.time_to_first = outcome.first_valid
        result.bound = outcome.bound
        if result.bound is not None and self.proven_bounds:
            result.bound = min(result.bound, *self.proven_bounds.values())
        if outcome.best_x is not None:
            return self.finish(outcome.best_x, "adversarial", outcome.found_by)
        if outcome.bound is not None and outcome.bound > ROBUST_TOL:
            return self.finish(self.start_point, "robust")
        if result.interrupted:
            result.reason = "interrupted"
        elif outcome.optimal and outcome.bound is not None:
            result.reason = (
                f"the MILP found no adversarial input, and its proven bound {outcome.bound:.4g} "
                f"is not above {ROBUST_TOL:g}"
            )
        else:
            result.reason = "time limit reached"
        return self.undecided()


__all__ = ["AdversarialResult", "find_adversarial"]
