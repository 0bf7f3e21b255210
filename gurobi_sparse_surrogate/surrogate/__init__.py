"""Solving through a pruned surrogate: :class:`SurrogateSwap`, judging every solution on the
dense network, repair and fallback to the dense model."""

from .swap import Incumbent, SurrogateSwap, SwapResult

__all__ = ["Incumbent", "SurrogateSwap", "SwapResult"]
