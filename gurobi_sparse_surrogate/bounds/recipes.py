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
    a complete ``"linear"`` pass first, then interval and linear; then LPs (abandoned on a
    layer after 16 solves that stabilise nothing) and MILPs (at most 20 binaries, abandoned
    after 8), within 5 seconds, and only when that linear pass leaves at least
    ``auto_min_unstable`` unstable neurons (:class:`WhenWorthIt`).

A complete pass of another method is computed once per pass (:func:`pass_bounds`) and shared by
the stages that read it.
"""

from __future__ import annotations

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

__all__ = ["MethodPassStage", "WhenWorthIt", "pass_bounds"]


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
        """Seconds the pass spent on layer ``index`` (the pass runs when layer 0 asks)."""
        result = problem.state.passes.get(self.method)
        if result is None:
            return 0.0
        return float(sum(r.seconds for r in result.stages if r.layer == index))


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
register_method("lp", (MethodPassStage("linear"), IntervalStage(), LinearStage(), LPStage()))
register_method(
    "milp",
    (MethodPassStage("lp"), IntervalStage(), LinearStage(), LPStage(), MILPStage()),
)
register_method(
    "auto",
    (
        MethodPassStage("linear"),
        IntervalStage(),
        LinearStage(),
        WhenWorthIt(LPStage(default_budget=5.0, abandon_after=16), after="linear"),
        WhenWorthIt(
            MILPStage(default_budget=5.0, max_binaries=20, abandon_after=8), after="linear"
        ),
    ),
)
