"""gurobi-ml dispatch: SparseSequential goes to the sparse formulation, nn.Sequential does not."""

from __future__ import annotations

import numpy as np
from conftest import forward64, random_network
from gurobi_ml import add_predictor_constr
from gurobi_ml.torch.sequential import SequentialConstr

from gurobi_sparse_surrogate import SparseSequential, SparseSequentialConstr


def test_sparse_sequential_dispatches_to_sparse_formulation(model):
    dense = random_network(0, 3, (6,), 2, density=0.5)
    sparse = SparseSequential(*dense)
    x = model.addMVar(3, lb=0.0, ub=1.0)
    pc = add_predictor_constr(model, sparse, x)
    assert isinstance(pc, SparseSequentialConstr)
    model.addConstr(x == np.array([0.1, 0.5, 0.9]))
    model.optimize()
    np.testing.assert_allclose(pc.output_values, forward64(dense, [0.1, 0.5, 0.9]), atol=1e-6)


def test_plain_sequential_keeps_gurobi_ml_formulation(model):
    dense = random_network(0, 3, (6,), 2)
    pc = add_predictor_constr(model, dense, model.addMVar(3, lb=0.0, ub=1.0))
    assert type(pc) is SequentialConstr
