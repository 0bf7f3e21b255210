"""Registration of :class:`SparseSequential` with gurobi-ml's ``add_predictor_constr``."""

from __future__ import annotations

from gurobi_ml import register_predictor_constr

from .formulation.predictor import add_sparse_predictor_constr
from .network.pruning import SparseSequential


def register_with_gurobi_ml() -> None:
    """Make ``gurobi_ml.add_predictor_constr`` build the sparse formulation for our type.

    Only :class:`SparseSequential` is registered: gurobi-ml looks the exact type up first, so
    plain ``nn.Sequential`` networks keep gurobi-ml's own formulation. Called on import of
    the package; calling it again is harmless.
    """
    register_predictor_constr(SparseSequential, add_sparse_predictor_constr)
