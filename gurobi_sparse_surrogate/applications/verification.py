"""Deciding VNN-LIB properties: :func:`verify` and :class:`VerificationResult`."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from ..bounds.problem import METHODS
from ..domains import Box
from ..exceptions import InvalidOptionError, ShapeMismatchError, SparseSurrogateError
from ..formulation.options import EmbeddingOptions
from ..network.extraction import Float64Network, extract_layers
from ..solving import check_threads
from ..summaries import compact_repr
from .attacks import AttackOptions
from .common import check_time_limit
from .output_condition import (
    PROOF_TOL,
    SAT_TOL,
    attack_polytope,
    polytope_values,
    prove_unreachable,
    solve_polytopes,
)
from .vnnlib import VnnlibProperty

__all__ = ["VerificationResult", "verify"]

log = logging.getLogger(__name__)

#: Verdicts of :func:`verify` (``"error"`` is the command line's, for a run that failed).
STATUSES = ("sat", "unsat", "unknown", "timeout")


@dataclass
class VerificationResult:
    """The verdict of :func:`verify` on a VNN-LIB property.

    Attributes
    ----------
    status : {"sat", "unsat", "unknown", "timeout"}
        ``"sat"``: :attr:`x` is a counterexample, checked with a float64 torch forward pass:
        inside the box of case :attr:`case`, with outputs :attr:`y` in its polytope
        :attr:`polytope` with every row holding by at least ``1e-6``. ``"unsat"``: proved on
        the dense network that there is no counterexample (by objective-aware bounds or by
        the MILP's bound above ``1e-4``). ``"timeout"``: the time limit was reached first;
        ``"unknown"``: the search ended undecided for another :attr:`reason`.
    reason : str
        Why the verdict is what it is, in a sentence.
    x, y : numpy.ndarray or None
        The counterexample and the network's outputs there (``sat`` only).
    case, polytope : int or None
        Which input box and which of its output polytopes the counterexample meets.
    value : float or None
        ``max_i (A y - b)_i`` of that polytope at :attr:`y` (negative).
    found_by : str or None
        ``"attack"``, ``"dense"``, ``"surrogate ..."``, ``"repair"`` (``sat``).
    runtime : float
        Seconds.
    proof_seconds, attack_seconds : float
        Time spent in objective-aware bounds and in attacks.
    disjuncts : list of dict
        Per (case, polytope): ``case``, ``polytope``, ``status`` (``"unreachable"``,
        ``"reached"`` or ``"open"``), ``decided_by`` and ``bound`` (a lower bound of its
        value when known).
    model_stats : list of dict
        Formulation statistics of each MILP built.
    """

    status: str
    reason: str
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    case: int | None = None
    polytope: int | None = None
    value: float | None = None
    found_by: str | None = None
    runtime: float = 0.0
    proof_seconds: float = 0.0
    attack_seconds: float = 0.0
    disjuncts: list[dict] = field(default_factory=list)
    model_stats: list[dict] = field(default_factory=list)

    def __repr__(self) -> str:
        return compact_repr(
            "VerificationResult",
            {
                "status": self.status,
                "case": self.case,
                "polytope": self.polytope,
                "value": self.value,
                "found_by": self.found_by,
                "runtime": self.runtime,
            },
        )

    def summary(self) -> str:
        """One line: the verdict, the time and why.

        Examples
        --------
        >>> print(VerificationResult("unsat", "every disjunct is unreachable", runtime=0.25))
        unsat in 0.25 s: every disjunct is unreachable
        """
        text = f"{self.status} in {self.runtime:.2f} s"
        if self.status == "sat":
            text += (
                f" ({self.found_by}): counterexample in input box {self.case} meets output "
                f"polytope {self.polytope} (max(A y - b) = {self.value:.4g})"
            )
        else:
            text += f": {self.reason}"
        return text

    __str__ = summary

    def to_vnncomp(self) -> str:
        """The VNN-COMP result file: the verdict, then for ``sat`` the counterexample as
        ``((X_0 value)`` ... ``(Y_m value))``, one pair per line."""
        lines = [self.status]
        if self.status == "sat" and self.x is not None and self.y is not None:
            pairs = [f"(X_{i} {v!r})" for i, v in enumerate(self.x.tolist())]
            pairs += [f"(Y_{j} {v!r})" for j, v in enumerate(self.y.tolist())]
            pairs[0], pairs[-1] = "(" + pairs[0], pairs[-1] + ")"
            lines += pairs
        return "\n".join(lines) + "\n"

    def write(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_vnncomp` to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_vnncomp())


def _sizes(forward: Float64Network, prop: VnnlibProperty) -> int:
    """Check the network against the property; return its number of outputs."""
    if forward.n_inputs is not None and forward.n_inputs != prop.n_inputs:
        raise ShapeMismatchError(
            f"the network has {forward.n_inputs} inputs, the property {prop.n_inputs}"
        )
    probe = prop.cases[0].lower if prop.cases else np.zeros(prop.n_inputs)
    try:
        n_out = forward(probe).size
    except RuntimeError as error:
        raise ShapeMismatchError(
            f"the network does not accept the property's {prop.n_inputs} inputs: {error}"
        ) from error
    if n_out != prop.n_outputs:
        raise ShapeMismatchError(f"the network has {n_out} outputs, the property {prop.n_outputs}")
    return n_out


def verify(
    network: nn.Module,
    spec: VnnlibProperty,
    *,
    time_limit: float = 60.0,
    threads: int = 1,
    attack: bool = True,
    attack_options: dict | None = None,
    proof_bounds: str | None = "linear",
    bounds: Any = "auto",
    bound_options: dict | None = None,
    relu_formulation: str = "bigm",
    surrogate: Any = None,
    prune_options: dict | None = None,
    seed: int = 0,
    verbose: bool = False,
) -> VerificationResult:
    """Decide a VNN-LIB property: find a counterexample (``sat``) or prove there is none.

    Each disjunct of the property (an input box with one output polytope ``A y <= b``) is a
    sub-problem, decided with the machinery of
    :func:`~gurobi_sparse_surrogate.find_adversarial`, cheapest stage first; the answer is
    ``sat`` as soon as one disjunct has a counterexample:

    1. objective-aware bounds (the polytope's rows folded into the last layer and bounded over
       the box with ``proof_bounds``) mark disjuncts unreachable;
    2. a projected-gradient attack on ``max_i (A y - b)_i`` runs on each remaining disjunct;
    3. one MILP per input box minimises ``min_j max_i (A_j y - b_j)_i`` over its remaining
       polytopes, with the dense network embedded (or a pruned ``surrogate``, judged on the
       dense network, with fallback); every incumbent is checked with torch, and a bound
       above ``1e-4`` proves the box.

    Parameters
    ----------
    network : torch.nn.Sequential
        The network (not modified), e.g. from :func:`~gurobi_sparse_surrogate.load_onnx`.
    spec : VnnlibProperty
        From :func:`~gurobi_sparse_surrogate.load_vnnlib`.
    time_limit : float
        Seconds for everything.
    threads : int
        Gurobi threads.
    attack : bool
        Run the attacks.
    attack_options : dict, optional
        ``steps`` (100), ``restarts`` (5), ``time_budget`` (seconds for all attacks, by
        default a tenth of ``time_limit``, at most 2 s).
    proof_bounds : str or None
        The bounding method of the objective-aware proofs (a key of
        :data:`~gurobi_sparse_surrogate.bounds.problem.METHODS`); None skips them.
    bounds, bound_options, relu_formulation, surrogate, prune_options :
        As in :func:`~gurobi_sparse_surrogate.find_adversarial`, for the MILPs.
    seed : int
        Seed of the attacks.
    verbose : bool
        Show Gurobi's log.

    Returns
    -------
    VerificationResult

    Raises
    ------
    ShapeMismatchError
        When the network's input or output size is not the property's.
    InvalidOptionError
        For an unknown option or option value (``attack_options``, ``proof_bounds``,
        ``bounds``, ``bound_options``, ``relu_formulation``).

    Examples
    --------
    >>> net = load_onnx("net.onnx")                                 # doctest: +SKIP
    >>> prop = load_vnnlib("prop.vnnlib", n_inputs=5, n_outputs=3)  # doctest: +SKIP
    >>> result = verify(net, prop, time_limit=60)                   # doctest: +SKIP
    >>> print(result.summary())                                     # doctest: +SKIP
    >>> result.write("result.txt")                                  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    clock = lambda: time.perf_counter() - t0  # noqa: E731
    time_limit = check_time_limit(time_limit)
    threads = check_threads(threads)
    if not isinstance(network, nn.Module):
        raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}")
    if not isinstance(spec, VnnlibProperty):
        raise TypeError(f"spec must be a VnnlibProperty (load_vnnlib), got {type(spec).__name__}")
    AttackOptions.check(attack_options)  # names, then values: steps >= 0, a positive budget...
    # Misspelled options fail here, not later as an "unknown" verdict (the stages below turn
    # a SparseSurrogateError from a network they cannot handle into a reason).
    if proof_bounds is not None and proof_bounds not in METHODS:
        raise InvalidOptionError(
            f"unknown proof_bounds {proof_bounds!r}; choose one of {sorted(METHODS)} or None"
        )
    EmbeddingOptions(relu_formulation=relu_formulation, bounds=bounds, bound_options=bound_options)
    forward = Float64Network(network)
    _sizes(forward, spec)
    result = VerificationResult("unknown", "")
    disjuncts = [
        {"case": c, "polytope": p, "status": "open", "decided_by": None, "bound": None}
        for c, case in enumerate(spec.cases)
        for p in range(len(case.outputs))
    ]
    result.disjuncts = disjuncts
    boxes = [Box(case.lower, case.upper) for case in spec.cases]

    def finish(status: str, reason: str) -> VerificationResult:
        result.status, result.reason, result.runtime = status, reason, clock()
        log.info("verify: %s", result.summary())
        return result

    def found(x: np.ndarray, c: int, by: str) -> VerificationResult | None:
        """Accept ``x`` as a counterexample of case ``c`` if torch confirms it."""
        x = np.clip(np.asarray(x, dtype=np.float64), spec.cases[c].lower, spec.cases[c].upper)
        y = forward(x)
        values = polytope_values(spec.cases[c].outputs, y)
        if not values.size or values.min() >= -SAT_TOL:
            return None
        p = int(values.argmin())
        result.x, result.y, result.case, result.polytope = x, y, c, p
        result.value, result.found_by = float(values[p]), by
        for d in disjuncts:
            if d["case"] == c and d["polytope"] == p:
                d.update(status="reached", decided_by=by)
        return finish("sat", f"a counterexample found by the {by}")

    if not disjuncts:
        return finish("unsat", "no input box of the property is feasible")
    # the centre of every box first: a free check
    for c, box in enumerate(boxes):
        if (done := found(box.center, c, "centre check")) is not None:
            return done

    # 1. objective-aware bounds
    layers = None
    if proof_bounds is not None:
        start = time.perf_counter()
        try:
            layers = extract_layers(network)
        except SparseSurrogateError as error:
            note = f"no bounds: {error}"
        else:
            note = ""
            for d in disjuncts:
                if clock() >= time_limit:
                    break
                polytope = spec.cases[d["case"]].outputs[d["polytope"]]
                try:
                    bound = prove_unreachable(layers, boxes[d["case"]], polytope, proof_bounds)
                except SparseSurrogateError as error:
                    note = f"no bounds: {error}"
                    break
                d["bound"] = bound
                if bound > PROOF_TOL:
                    d.update(status="unreachable", decided_by=f"{proof_bounds} bounds")
        result.proof_seconds = time.perf_counter() - start
        if note:
            result.reason = note
    if all(d["status"] == "unreachable" for d in disjuncts):
        return finish("unsat", f"every disjunct is unreachable by {proof_bounds} bounds")
    log.info(
        "verify: %d of %d disjuncts unreachable by bounds (%.2f s)",
        sum(d["status"] == "unreachable" for d in disjuncts),
        len(disjuncts),
        result.proof_seconds,
    )

    # 2. attacks
    starts: dict[int, tuple[np.ndarray, float]] = {}  # best attack point per case
    if attack:
        options = {"steps": 100, "restarts": 5, "time_budget": min(2.0, 0.1 * time_limit)}
        options.update(attack_options or {})
        open_ones = [d for d in disjuncts if d["status"] == "open"]
        budget = options.pop("time_budget")
        start = time.perf_counter()
        for k, d in enumerate(open_ones):
            left = None if budget is None else (budget - (time.perf_counter() - start))
            if left is not None and left <= 0:
                break
            share = None if left is None else left / (len(open_ones) - k)
            c = d["case"]
            x, value = attack_polytope(
                network,
                boxes[c],
                spec.cases[c].outputs[d["polytope"]],
                seed=seed,
                time_budget=share,
                **options,
            )
            if c not in starts or value < starts[c][1]:
                starts[c] = (x, value)
            if (done := found(x, c, "attack")) is not None:
                result.attack_seconds = time.perf_counter() - start
                return done
        result.attack_seconds = time.perf_counter() - start

    # 3. one MILP per box over its open polytopes
    reasons, timed_out = [], False
    cases = sorted({d["case"] for d in disjuncts if d["status"] == "open"})
    for k, c in enumerate(cases):
        left = time_limit - clock()
        if left <= 0:
            timed_out = True
            break
        open_ones = [d for d in disjuncts if d["case"] == c and d["status"] == "open"]
        polytopes = [spec.cases[c].outputs[d["polytope"]] for d in open_ones]
        outcome = solve_polytopes(
            network,
            boxes[c],
            polytopes,
            time_limit=left / (len(cases) - k),
            clock=clock,
            deadline=clock() + left / (len(cases) - k),
            threads=threads,
            bounds=bounds,
            bound_options=bound_options,
            relu_formulation=relu_formulation,
            surrogate=surrogate,
            prune_options=prune_options,
            start=starts.get(c, (None,))[0],
            seed=seed,
            verbose=verbose,
        )
        log.info("verify: MILP of box %d: %s %s", c, outcome.status, outcome.reason)
        if outcome.model_stats:
            result.model_stats.append({"case": c, **outcome.model_stats})
        if outcome.status == "found":
            if (done := found(outcome.x, c, outcome.found_by or "MILP")) is not None:
                return done
        elif outcome.status == "none":
            for d in open_ones:
                d.update(status="unreachable", decided_by="MILP", bound=outcome.bound)
        else:
            timed_out |= outcome.timed_out
            reasons.append(f"box {c}: {outcome.reason}")
    if all(d["status"] == "unreachable" for d in disjuncts):
        by = sorted({d["decided_by"] for d in disjuncts})
        return finish("unsat", f"all {len(disjuncts)} disjuncts are unreachable ({', '.join(by)})")
    n_open = sum(d["status"] == "open" for d in disjuncts)
    summary = f"{n_open} of {len(disjuncts)} disjuncts undecided"
    if timed_out or clock() >= time_limit:
        return finish("timeout", f"time limit of {time_limit:g} s reached; {summary}")
    detail = "; ".join(reasons) or result.reason or "no stage could decide them"
    return finish("unknown", f"{summary}: {detail}")
