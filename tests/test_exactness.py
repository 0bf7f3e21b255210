"""Exactness under Gurobi's tolerances where the big-M constants are large.

Stated tolerance: ``get_error() <= 1e-3`` absolute (the target the package keeps
``big-M * tolerance`` under), for networks whose pre-activation bounds reach 1e5-1e6.
"""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
import torch
from conftest import random_network

from gurobi_sparse_surrogate import add_sparse_predictor_constr
from gurobi_sparse_surrogate.formulation.tolerances import ABSOLUTE_ERROR_TARGET, ToleranceWarning


def wide_network(seed: int, scale: float = 18.0) -> torch.nn.Sequential:
    """Weights and biases up to ``scale`` in absolute value, 10 -> 16 -> 16 -> 3."""
    rng = np.random.default_rng(seed)
    sizes = (10, 16, 16, 3)
    modules: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = torch.nn.Linear(a, b).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(rng.uniform(-scale, scale, (b, a))))
            linear.bias.copy_(torch.from_numpy(rng.uniform(-scale, scale, b)))
        modules.append(linear)
        if i < len(sizes) - 2:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules)


@pytest.mark.parametrize("formulation", ["bigm", "max"])
@pytest.mark.parametrize("seed", [0, 1, 4])
def test_large_big_m_stays_exact(model, formulation, seed):
    rng = np.random.default_rng(100 + seed)
    width = 50 * rng.random(10)
    x = model.addMVar(10, lb=-width, ub=width)
    pc = add_sparse_predictor_constr(
        model, wide_network(seed), x, bounds="interval", relu_formulation=formulation
    )
    big_m = pc._largest_big_m()
    assert big_m > 1e5  # the case at hand: constants of 1e5 and more
    changes = pc.stats["tolerances"]
    assert set(changes) == {"IntFeasTol", "FeasibilityTol"}
    for name in changes:
        assert model.getParamInfo(name)[2] * big_m <= ABSOLUTE_ERROR_TARGET * (1 + 1e-12)
    y = pc.output[0]
    sense = gp.GRB.MINIMIZE if seed % 2 else gp.GRB.MAXIMIZE
    model.setObjective(y[0] - y[1] + 0.5 * y[2], sense)
    model.optimize()
    assert model.SolCount > 0
    assert pc.get_error().max() <= ABSOLUTE_ERROR_TARGET


def test_ordinary_network_leaves_the_tolerances_alone(model):
    x = model.addMVar(4, lb=0, ub=1)
    pc = add_sparse_predictor_constr(model, random_network(0, 4, (8, 8), 2), x)
    assert pc.stats["tolerances"] == {}
    assert model.Params.IntFeasTol == 1e-5 and model.Params.FeasibilityTol == 1e-6


def test_constants_beyond_the_tolerances_are_reported(model):
    x = model.addMVar(10, lb=-50, ub=50)
    with pytest.warns(ToleranceWarning, match="too large for Gurobi's tolerances"):
        add_sparse_predictor_constr(model, wide_network(0, scale=2000.0), x, bounds="interval")
    assert model.Params.IntFeasTol == 1e-9
