"""Pre-activation bounds as a pass of their own: the bounding problem, one module per method
(interval, linear back-substitution, LP/MILP on cones of influence) and the recipes that chain them."""

from . import linear, lp  # noqa: F401  (register the linear, lp, milp and auto methods)
from .cache import BOUNDS_CACHE, BoundsCache, cached_compute_bounds
from .problem import METHODS, BoundingProblem, NetworkBounds, compute_bounds, register_method

__all__ = [
    "BOUNDS_CACHE",
    "BoundsCache",
    "cached_compute_bounds",
    "METHODS",
    "BoundingProblem",
    "NetworkBounds",
    "compute_bounds",
    "register_method",
]
