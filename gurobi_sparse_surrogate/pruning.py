"""Pruned networks: the :class:`SparseSequential` type and :func:`prune_network`."""

from __future__ import annotations

from torch import nn


class SparseSequential(nn.Sequential):
    """An ``nn.Sequential`` produced by this package's pruning.

    It behaves exactly like ``nn.Sequential`` in torch. Its own type lets gurobi-ml's
    ``add_predictor_constr`` dispatch it to the sparse formulation of this package, while
    plain ``nn.Sequential`` networks keep gurobi-ml's own formulation.
    """
