"""The MILP: embedding options, input/output variables, planning which neurons live and which
are stable, the ReLU formulations, and the predictor constraint object gurobi-ml users hold."""

from .options import EmbeddingOptions
from .planning import LayerPlan, plan_network
from .predictor import SparseSequentialConstr, add_sparse_predictor_constr

__all__ = [
    "EmbeddingOptions",
    "LayerPlan",
    "SparseSequentialConstr",
    "add_sparse_predictor_constr",
    "plan_network",
]
