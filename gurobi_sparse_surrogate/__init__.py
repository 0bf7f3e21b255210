"""gurobi-sparse-surrogate: optimization over trained (and sparse) ReLU networks with Gurobi."""

import logging as _logging

from .applications import AdversarialResult, MaximizationResult, find_adversarial, maximize_output
from .applications.verification import VerificationResult, verify
from .applications.vnnlib import VnnlibProperty, load_vnnlib
from .bounds import METHODS as BOUND_METHODS
from .bounds import BoundOptions, NetworkBounds, compute_bounds
from .bounds.objective import ObjectiveBound, bound_output_objective
from .domains import Box, Domain, L1Ball, LinfBall
from .exceptions import (
    BatchNormTrainingError,
    InvalidOptionError,
    ModelTooLargeError,
    NestedSwapError,
    NonFiniteWeightError,
    ShapeMismatchError,
    SparseSurrogateError,
    StaleEmbeddingError,
    UnboundedInputError,
    UnsupportedNetworkError,
    VnnlibError,
)
from .formulation import EmbeddingOptions, SparseSequentialConstr, add_sparse_predictor_constr
from .license import check_model_size, license_is_size_limited
from .network import PruningReport, SparseSequential, prune_network, pruning_report
from .network.onnx import load_onnx
from .registration import register_with_gurobi_ml
from .surrogate import SurrogateSwap, SwapResult

# silent unless the application configures logging (see gurobi_sparse_surrogate.verbosity)
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
register_with_gurobi_ml()

__all__ = [
    "BOUND_METHODS",
    "AdversarialResult",
    "Box",
    "Domain",
    "EmbeddingOptions",
    "InvalidOptionError",
    "StaleEmbeddingError",
    "L1Ball",
    "LinfBall",
    "MaximizationResult",
    "find_adversarial",
    "load_onnx",
    "load_vnnlib",
    "VnnlibProperty",
    "verify",
    "VerificationResult",
    "maximize_output",
    "PruningReport",
    "SurrogateSwap",
    "SwapResult",
    "prune_network",
    "pruning_report",
    "NetworkBounds",
    "BoundOptions",
    "ObjectiveBound",
    "bound_output_objective",
    "SparseSequentialConstr",
    "add_sparse_predictor_constr",
    "check_model_size",
    "compute_bounds",
    "license_is_size_limited",
    "register_with_gurobi_ml",
    "BatchNormTrainingError",
    "ModelTooLargeError",
    "NestedSwapError",
    "InvalidOptionError",
    "NonFiniteWeightError",
    "ShapeMismatchError",
    "SparseSequential",
    "SparseSurrogateError",
    "UnboundedInputError",
    "UnsupportedNetworkError",
    "VnnlibError",
]
__version__ = "0.1.0"
