"""Pre-activation bounds as a pass of their own: the bounding problem and its options, one
module per method (interval, linear back-substitution, LP/MILP on cones of influence), the
recipes that chain them (``auto``), typed records of what every stage did, and a cache."""

from . import interval, linear, lp, recipes  # noqa: F401  (recipes registers the methods)
from .cache import BOUNDS_CACHE, BoundsCache, cached_compute_bounds
from .objective import ObjectiveBound, bound_output_objective
from .options import BoundOptions
from .problem import METHODS, BoundingProblem, NetworkBounds, compute_bounds, register_method
from .records import KeptBounds, StageRecord

__all__ = [
    "BOUNDS_CACHE",
    "BoundsCache",
    "cached_compute_bounds",
    "METHODS",
    "BoundOptions",
    "ObjectiveBound",
    "bound_output_objective",
    "BoundingProblem",
    "KeptBounds",
    "NetworkBounds",
    "StageRecord",
    "compute_bounds",
    "register_method",
]
