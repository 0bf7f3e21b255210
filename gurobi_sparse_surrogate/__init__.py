"""gurobi-sparse-surrogate: optimization over trained (and sparse) ReLU networks with Gurobi."""

from .exceptions import (
    ModelTooLargeError,
    NonFiniteWeightError,
    ShapeMismatchError,
    SparseSurrogateError,
    UnboundedInputError,
    UnsupportedNetworkError,
)
from .pruning import SparseSequential

__all__ = [
    "ModelTooLargeError",
    "NonFiniteWeightError",
    "ShapeMismatchError",
    "SparseSequential",
    "SparseSurrogateError",
    "UnboundedInputError",
    "UnsupportedNetworkError",
]
__version__ = "0.1.0"
