"""Networks that once embedded a different function from torch's, silently.

Each case is either embedded as torch computes it (checked against a float64 torch forward
pass at the solver's inputs) or refused with an error that names the module.
"""

from __future__ import annotations

import warnings

import gurobipy as gp
import numpy as np
import pytest
import torch
from conftest import forward64
from gurobipy import GRB
from torch import nn

from gurobi_sparse_surrogate import UnsupportedNetworkError, add_sparse_predictor_constr
from gurobi_sparse_surrogate.network.extraction import extract_layers, layers_forward


def embedded_outputs(model, net, point):
    """Solver outputs with the inputs fixed at ``point``."""
    x = model.addMVar(point.size, lb=point, ub=point)
    pc = add_sparse_predictor_constr(model, net, x, bounds="interval")
    model.optimize()
    assert model.Status == GRB.OPTIMAL
    return pc.output.X.reshape(-1)


def test_module_used_twice_is_embedded_at_each_use(model):
    torch.manual_seed(0)
    shared = nn.Linear(3, 3)
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), shared, nn.ReLU(), shared, nn.Linear(3, 1))
    assert len(extract_layers(net)) == 4
    point = np.array([0.3, -0.7])
    assert np.allclose(embedded_outputs(model, net, point), forward64(net, point)[0], atol=1e-6)


class ScaledLinear(nn.Linear):
    def forward(self, x):
        return 2.0 * super().forward(x)


class LeakyReLU(nn.ReLU):
    def forward(self, x):
        return torch.where(x > 0, x, 0.1 * x)


@pytest.mark.parametrize("module", [ScaledLinear(3, 3), LeakyReLU()])
def test_subclass_overriding_forward_is_refused_by_name(module):
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), module, nn.Linear(3, 1))
    with pytest.raises(UnsupportedNetworkError, match=rf"'2' of type {type(module).__name__}"):
        extract_layers(net)


def test_subclass_keeping_forward_is_accepted():
    class Tagged(nn.Linear):
        tag = "mine"

    net = nn.Sequential(Tagged(2, 3), nn.ReLU(), nn.Linear(3, 1))
    layers = extract_layers(net)
    x = np.random.default_rng(0).standard_normal((5, 2))
    assert np.allclose(layers_forward(layers, x)[-1], forward64(net, x), atol=1e-12)


def test_forward_hook_is_refused_by_name():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    net[2].register_forward_hook(lambda module, inputs, output: output + 1.0)
    with pytest.raises(UnsupportedNetworkError, match=r"'2' of type Linear has 1 forward hook"):
        extract_layers(net)


def test_stale_weight_norm_weight_is_recomputed(model):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        first = torch.nn.utils.weight_norm(nn.Linear(2, 4))
    net = nn.Sequential(first, nn.ReLU(), nn.Linear(4, 1))
    optimiser = torch.optim.SGD(net.parameters(), lr=0.5)
    net(torch.randn(8, 2)).pow(2).sum().backward()
    optimiser.step()  # .weight is stale until the next forward pass
    point = np.array([0.5, -0.25])
    expected = forward64(net, point)[0]
    assert np.allclose(embedded_outputs(model, net, point), expected, atol=1e-6)


def test_complex_weights_are_refused_by_name():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1, dtype=torch.complex64))
    with pytest.raises(UnsupportedNetworkError, match=r"'2' of type Linear has complex-valued"):
        extract_layers(net)


def test_sequential_subclass_overriding_forward_is_refused():
    class Skip(nn.Sequential):
        def forward(self, x):
            return x + super().forward(x)

    net = nn.Sequential(nn.Linear(2, 3), Skip(nn.Linear(3, 3), nn.ReLU()), nn.Linear(3, 1))
    with pytest.raises(UnsupportedNetworkError, match=r"'1' of type Skip overrides forward"):
        extract_layers(net)


def test_final_guard_catches_what_the_module_checks_miss(monkeypatch):
    """A Linear whose weight attribute is not what forward uses: the forward comparison."""
    from gurobi_sparse_surrogate.network import validation

    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    layers = extract_layers(net)
    with torch.no_grad():
        net[2].weight.mul_(2.0)  # layers are now stale: the guard must see the difference
    with pytest.raises(UnsupportedNetworkError, match="differ from torch's forward pass"):
        validation.check_layers_match(net, layers, 2)
    # the input width is what the comparison needs: unknown (None) or not the layers' own,
    # nothing is compared (extraction always knows it; the function is public)
    validation.check_layers_match(net, layers, None)
    validation.check_layers_match(net, layers, 3)
    # layers of another network, with as many inputs but another number of outputs
    other = extract_layers(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 4)))
    with pytest.raises(
        UnsupportedNetworkError, match="give 4 outputs where torch's forward pass gives 1"
    ):
        validation.check_layers_match(net, other, 2)


def test_gurobi_model_untouched_when_refused():
    env = gp.Env(params={"OutputFlag": 0})
    m = gp.Model(env=env)
    x = m.addMVar(2, lb=0, ub=1)
    m.update()
    with pytest.raises(UnsupportedNetworkError):
        add_sparse_predictor_constr(m, nn.Sequential(ScaledLinear(2, 1)), x)
    m.update()
    assert m.NumVars == 2 and m.NumConstrs == 0
    m.dispose()
    env.dispose()
