"""maximize_output: the best value is a dense value, never beaten by samples when optimal."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import forward64

from gurobi_sparse_surrogate import Box, L1Ball, maximize_output
from gurobi_sparse_surrogate.datasets import random_relu_network

#: Gurobi's default relative MIPGap: an "optimal" value is within it of the true optimum.
MIP_GAP = 1e-4


def gap(value: float) -> float:
    return MIP_GAP * (1 + abs(value))


@pytest.mark.parametrize("surrogate", [None, 0.6, [0.9, 0.5]])
def test_small_network_is_solved_to_optimality(surrogate):
    net = random_relu_network(4, depth=2, width=10, seed=3)
    domain = Box(np.zeros(4), np.ones(4))
    result = maximize_output(net, domain, time_limit=30, surrogate=surrogate)
    assert result.optimal
    # the value is the dense network's at x (a float64 forward pass, no solver tolerance)
    assert forward64(net, result.x)[0, 0] == pytest.approx(result.value, abs=1e-9)
    assert domain.contains(result.x)
    samples = np.random.default_rng(0).random((20000, 4))
    # optimal: within MIPGap of the true maximum, which no sample exceeds; the bound holds it
    assert forward64(net, samples)[:, 0].max() <= result.value + gap(result.value)
    assert forward64(net, samples)[:, 0].max() <= result.bound + 1e-5 * (1 + abs(result.bound))
    assert result.bound >= result.value - gap(result.value)


def test_surrogate_route_matches_dense_route_and_reports_history():
    net = random_relu_network(6, depth=3, width=12, seed=1)
    domain = L1Ball(np.full(6, 0.5), 1.0)
    dense = maximize_output(net, domain, time_limit=60)
    sparse = maximize_output(net, domain, time_limit=60, surrogate=0.8, attack=False)
    assert dense.optimal and sparse.optimal
    assert sparse.value == pytest.approx(dense.value, rel=MIP_GAP, abs=1e-6)
    assert "surrogate 0" in {h.phase for h in sparse.history}
    assert sparse.time_to_best <= sparse.runtime


def test_other_output_and_errors():
    net = random_relu_network(3, depth=1, width=5, seed=0, n_outputs=2)
    domain = Box(np.zeros(3), np.ones(3))
    result = maximize_output(net, domain, output_index=1, time_limit=10)
    assert forward64(net, result.x)[0, 1] == pytest.approx(result.value, abs=1e-9)
    with pytest.raises(ValueError, match="output_index"):
        maximize_output(net, domain, output_index=2)
    with pytest.raises(ValueError, match="time_limit"):
        maximize_output(net, domain, time_limit=0)
