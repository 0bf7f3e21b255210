"""Solving through a pruned surrogate: :class:`SurrogateSwap` (swap.py), judging each solution
on the dense network (judging.py), and what a swap reports (results.py)."""

from .results import Incumbent, SwapResult
from .swap import RebuiltPredictorConstr, SurrogateSwap

__all__ = ["Incumbent", "RebuiltPredictorConstr", "SurrogateSwap", "SwapResult"]
