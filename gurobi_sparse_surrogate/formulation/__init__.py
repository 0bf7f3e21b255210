"""The MILP: planning which neurons live and which are stable, the ReLU formulations, and the
predictor constraint object that gurobi-ml users hold."""

from .planning import LayerPlan, plan_network
from .predictor import SparseSequentialConstr, add_sparse_predictor_constr

__all__ = ["LayerPlan", "SparseSequentialConstr", "add_sparse_predictor_constr", "plan_network"]
