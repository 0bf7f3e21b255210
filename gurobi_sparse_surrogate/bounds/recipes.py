"""The bounding methods: which stages run, in which order, with which defaults.

Every method beyond ``"interval"`` is declared here, with the defaults that differ between
methods (the options that are ``None`` in
:class:`~gurobi_sparse_surrogate.bounds.BoundOptions`):

``"linear"``
    interval, then linear back-substitution (CROWN).
``"lp"``
    a complete ``"linear"`` pass first (so the result is never looser than it), then interval,
    linear and per-neuron LPs on cones of influence; no time limit.
``"milp"``
    a complete ``"lp"`` pass first, then as ``"lp"`` plus per-neuron MILPs with at most 60
    binaries; no time limit.
``"auto"``
    a complete ``"linear"`` pass first, then interval and linear (cheap: they always run);
    then LPs and MILPs (at most 20 binaries) on each layer for as long as they pay: each
    stage goes on while it makes at least ``min_yield`` (4) neurons stable per second it has
    spent on the layer (:func:`~gurobi_sparse_surrogate.bounds.lp.yield_allowance`; a stage
    that stabilises nothing stops after about a quarter of a second, one that keeps paying
    runs on), within 5 seconds in all, and only when that linear pass leaves at least
    ``auto_min_unstable`` unstable neurons (:class:`WhenWorthIt`). Where and why a stage
    stopped is in its record (``StageRecord.stopped``), the notes and the log.

A complete pass of another method is computed once per pass (:func:`pass_bounds`) and shared by
the stages that read it; a stage that the pass ran already on the same earlier-layer bounds is
not run again (:class:`UnlessAsInPass`).
"""

from __future__ import annotations

import numpy as np

from .linear import LinearStage
from .lp import LPStage, MILPStage
from .problem import (
    METHODS,
    BoundingProblem,
    IntervalStage,
    NetworkBounds,
    compute_bounds,
    count_unstable,
    register_method,
)

__all__ = ["AUTO_MIN_YIELD", "MethodPassStage", "UnlessAsInPass", "WhenWorthIt", "pass_bounds"]

#: ``"auto"``'s default ``min_yield``: neurons made stable per second of LP or MILP solving.
AUTO_MIN_YIELD = 4.0


def pass_bounds(problem: BoundingProblem, method: str) -> NetworkBounds:
    """The bounds of a complete pass of ``method`` on ``problem``'s inputs, computed once."""
    result = problem.state.passes.get(method)
    if result is None:
        result = compute_bounds(
            problem.layers,
            problem.input_lower,
            problem.input_upper,
            method,
            problem.domain,
            options=problem.options,
        )
        problem.state.passes[method] = result
    return result


class MethodPassStage:
    """The bounds of a complete pass of another (weaker) method, computed once per pass.

    Placed first in a method, it makes the method at least as tight as ``method`` on every
    neuron: linear relaxations are not monotone in the earlier layers' bounds (tighter
    intermediate bounds can, rarely, give a slightly wider CROWN bound on a neuron no solve
    touches), and the driver's intersection with this stage removes that.

    Parameters
    ----------
    method : str
        A registered method, run with the same inputs, domain and options.
    """

    def __init__(self, method: str):
        self.method = method
        self.name = f"{method} pass"

    @property
    def supports_max_pool(self) -> bool:
        """Whether every stage of the inner method bounds through max pooling."""
        return all(getattr(s, "supports_max_pool", False) for s in METHODS[self.method])

    def layer_bounds(self, problem, index, lower, upper):
        result = pass_bounds(problem, self.method)
        return result.lower[index], result.upper[index]

    def layer_seconds(self, problem, index) -> float:
        """Seconds the pass spent on layer ``index`` (the pass runs when layer 0 asks; the
        driver asks this after :meth:`layer_bounds`, so the pass is there)."""
        result = problem.state.passes[self.method]
        return float(sum(r.seconds for r in result.stages if r.layer == index))


class UnlessAsInPass:
    """Run ``stage`` on a layer unless a complete pass of ``method`` already did it.

    A stage such as interval or linear back-substitution reads only the network, the inputs
    and the bounds of the earlier layers. When those bounds are exactly the ones the pass of
    ``method`` (which ran the same stage with the same options) had, the stage would compute
    what the pass computed, and :class:`MethodPassStage` has put that into this layer's
    bounds already: the stage is skipped, with a record saying so. Otherwise (a solver stage
    tightened an earlier layer) it runs.

    Parameters
    ----------
    stage : BoundingStage
        A stage of ``method``'s recipe.
    method : str
        The method of the complete pass placed first (with :class:`MethodPassStage`).
    """

    def __init__(self, stage, method: str):
        self.stage = stage
        self.method = method
        self.name = stage.name
        self.supports_max_pool = getattr(stage, "supports_max_pool", False)

    def layer_bounds(self, problem, index, lower, upper):
        result = problem.state.passes.get(self.method)
        same = result is not None and all(
            np.array_equal(problem.lower[j], result.lower[j])
            and np.array_equal(problem.upper[j], result.upper[j])
            for j in range(index)
        )
        if same:
            problem.current_record().skip(
                f"done in the {self.method} pass already (same bounds of the earlier layers)"
            )
            return lower, upper
        return self.stage.layer_bounds(problem, index, lower, upper)


class WhenWorthIt:
    """Run ``stage`` only when a complete pass of ``after`` leaves enough unstable neurons.

    With few unstable neurons the main MILP is small and solves in moments, so per-neuron
    LP and MILP solves would cost more than they save. The threshold is the option
    ``auto_min_unstable`` (over all ReLU layers and samples); below it the stage's record
    says so and the bounds stay as they are.

    Parameters
    ----------
    stage : BoundingStage
    after : str
        The method whose complete pass decides (computed once, shared with other stages).
    """

    def __init__(self, stage, after: str = "linear"):
        self.stage = stage
        self.after = after
        self.name = stage.name
        self.supports_max_pool = getattr(stage, "supports_max_pool", False)

    def layer_bounds(self, problem, index, lower, upper):
        result = pass_bounds(problem, self.after)
        unstable = sum(
            count_unstable(layer, lo, hi)
            for layer, lo, hi in zip(problem.layers, result.lower, result.upper, strict=True)
        )
        threshold = problem.options.auto_min_unstable
        if unstable < threshold:
            problem.current_record().skip(
                f"only {unstable} unstable neurons after the {self.after} bounds "
                f"(auto_min_unstable={threshold}): the main MILP is small"
            )
            return lower, upper
        return self.stage.layer_bounds(problem, index, lower, upper)


register_method("linear", (IntervalStage(), LinearStage()))
register_method(
    "lp",
    (
        MethodPassStage("linear"),
        UnlessAsInPass(IntervalStage(), "linear"),
        UnlessAsInPass(LinearStage(), "linear"),
        LPStage(),
    ),
)
register_method(
    "milp",
    (
        MethodPassStage("lp"),
        UnlessAsInPass(IntervalStage(), "lp"),
        UnlessAsInPass(LinearStage(), "lp"),
        UnlessAsInPass(LPStage(), "lp"),
        MILPStage(),
    ),
)
register_method(
    "auto",
    (
        MethodPassStage("linear"),
        UnlessAsInPass(IntervalStage(), "linear"),
        UnlessAsInPass(LinearStage(), "linear"),
        WhenWorthIt(LPStage(default_budget=5.0, min_yield=AUTO_MIN_YIELD), after="linear"),
        WhenWorthIt(
            MILPStage(default_budget=5.0, max_binaries=20, min_yield=AUTO_MIN_YIELD),
            after="linear",
        ),
    ),
)
