"""Soundness of every bounding method on badly scaled, random, masked, pruned and trained networks.

The truth is independent of the bounding code: float64 forward passes (numpy) at random points
and box vertices, and at points found by a projected-gradient attack on every neuron (torch
autograd). A bound may only be off by float64 rounding, taken relative to the magnitude of
the neuron's interval bounds (1e-9 of it, far above rounding and far below a real cut-off).
Then the network is embedded with those bounds and the inputs fixed at a valid point: the
model must stay feasible.
"""

from __future__ import annotations

import warnings

import gurobipy as gp
import numpy as np
import pytest
import torch
from gurobipy import GRB
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from gurobi_sparse_surrogate import add_sparse_predictor_constr
from gurobi_sparse_surrogate.bounds.problem import METHODS, compute_bounds
from gurobi_sparse_surrogate.formulation.tolerances import ToleranceWarning
from gurobi_sparse_surrogate.network.extraction import extract_layers, layers_forward

#: every registered method, plus ``auto`` with each of its stages forced to run
METHOD_CASES = [(name, {}) for name in sorted(METHODS)] + [
    ("auto", {"auto_min_unstable": 0, "skip_decided": False, "abandon_after": 0}),
]
KINDS = ("scaled", "random", "masked", "pruned", "trained")
ROUNDING = 1e-9


def make_network(kind: str, seed: int, n_in: int, hidden: list[int], spread: float):
    """A float64 ReLU MLP. ``scaled``: weights and biases over ``spread`` orders of magnitude."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    sizes = (n_in, *hidden, 2)
    modules: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(a, b).double()
        if kind == "scaled":
            w = rng.standard_normal((b, a)) * 10.0 ** rng.uniform(-spread / 2, spread / 2, (b, a))
            bias = rng.standard_normal(b) * 10.0 ** rng.uniform(-spread / 2, spread / 2, b)
        else:
            w = rng.standard_normal((b, a)) / np.sqrt(a)
            bias = rng.standard_normal(b) * 0.3
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(bias))
        if kind == "masked":
            prune.custom_from_mask(linear, "weight", torch.from_numpy(rng.random((b, a)) < 0.6))
        modules.append(linear)
        if i < len(sizes) - 2:
            modules.append(nn.ReLU())
    net = nn.Sequential(*modules).double()
    if kind == "trained":
        x = torch.from_numpy(rng.uniform(-1, 1, (64, n_in)))
        y = torch.sin(3 * x).sum(dim=1, keepdim=True).repeat(1, 2)
        optimiser = torch.optim.Adam(net.parameters(), lr=0.05)
        for _ in range(30):
            optimiser.zero_grad()
            ((net(x) - y) ** 2).mean().backward()
            optimiser.step()
    if kind == "pruned":
        linears = [(m, "weight") for m in net if isinstance(m, nn.Linear)]
        prune.global_unstructured(linears, pruning_method=prune.L1Unstructured, amount=0.5)
    return net.eval()


def attack(layers, lower, upper, starts, steps=25):
    """Projected signed-gradient ascent and descent on every neuron of every layer (torch)."""
    weights = [torch.from_numpy(layer.weight.toarray()) for layer in layers]
    biases = [torch.from_numpy(layer.bias) for layer in layers]
    width = upper - lower
    found = []
    for index, layer in enumerate(layers):
        n = layer.n_out
        targets = np.repeat(np.arange(n), 2 * len(starts))
        signs = torch.from_numpy(np.tile(np.repeat([1.0, -1.0], len(starts)), n))
        x = np.tile(starts, (2 * n, 1))
        for step in range(steps):
            xt = torch.tensor(x, requires_grad=True)
            h = xt
            for j in range(index + 1):
                z = h @ weights[j].T + biases[j]
                h = torch.relu(z) if layers[j].relu else z
            (signs * z[np.arange(len(x)), targets]).sum().backward()
            size = 0.25 * width * (1 - step / steps)
            x = np.clip(x + size * np.sign(xt.grad.numpy()), lower, upper)
        found.append(x)
    return np.vstack(found)


def check_sound(net, lower, upper, method, options, rng):
    layers = extract_layers(net)
    bounds = compute_bounds(layers, lower, upper, method, **options)
    loose = compute_bounds(layers, lower, upper, "interval")
    inside = lower + rng.random((200, lower.size)) * (upper - lower)
    vertices = np.where(rng.random((64, lower.size)) < 0.5, lower, upper)
    points = np.vstack([inside, vertices, attack(layers, lower, upper, inside[:3])])
    for i, z in enumerate(layers_forward(layers, points)):
        magnitude = np.maximum(np.abs(loose.lower[i][0]), np.abs(loose.upper[i][0]))
        tol = ROUNDING * (1.0 + magnitude)
        below = z < bounds.lower[i][0] - tol
        above = z > bounds.upper[i][0] + tol
        assert not below.any() and not above.any(), (
            f"{method} {options}: layer {i} neurons "
            f"{np.flatnonzero((below | above).any(axis=0)).tolist()} cut off; "
            f"bounds {bounds.lower[i][0]} {bounds.upper[i][0]}, "
            f"values in [{z.min(axis=0)}, {z.max(axis=0)}]; notes {bounds.notes}"
        )
    # a model with the inputs fixed at a valid point must be feasible with these bounds
    env = gp.Env(params={"OutputFlag": 0, "Threads": 1})
    try:
        m = gp.Model(env=env)
        x = m.addMVar(lower.size, lb=inside[0], ub=inside[0])
        with warnings.catch_warnings():  # exactness at these scales is not the question here
            warnings.simplefilter("ignore", ToleranceWarning)
            add_sparse_predictor_constr(
                m, net, x, bounds=bounds, relu_formulation="max", check_size=False
            )
        m.optimize()
        assert m.Status == GRB.OPTIMAL, f"{method}: status {m.Status} with the inputs fixed"
        m.dispose()
    finally:
        env.dispose()
    return bounds


network_cases = dict(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 10_000),
    n_in=st.integers(2, 4),
    hidden=st.lists(st.integers(2, 6), min_size=1, max_size=3),
    spread=st.floats(4.0, 10.0),
    radius=st.floats(-1.0, 2.0),
)


@pytest.mark.parametrize(("method", "options"), METHOD_CASES, ids=lambda v: str(v or ""))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**network_cases)
def test_every_method_is_sound(method, options, kind, seed, n_in, hidden, spread, radius):
    rng = np.random.default_rng(seed)
    net = make_network(kind, seed, n_in, hidden, spread)
    half = 10.0**radius if kind == "scaled" else 1.0
    centre = rng.uniform(-half, half, n_in) if kind == "scaled" else np.zeros(n_in)
    check_sound(net, centre - half, centre + half, method, options, rng)


# Networks of the reliability sweep where the MILP stage cut off reachable values (one gave
# an upper bound of the wrong sign) before its bounds were certified.
@pytest.mark.parametrize("seed", [3, 5, 9, 15, 17])
@pytest.mark.parametrize("method", ["milp", "auto"])
def test_milp_refuses_to_certify_what_it_cannot(seed, method):
    rng = np.random.default_rng(seed)
    sizes = (3, 6, 6, 5, 2)
    modules: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(a, b).double()
        with torch.no_grad():
            linear.weight.copy_(
                torch.from_numpy(rng.standard_normal((b, a)) * 10.0 ** rng.uniform(-4, 6, (b, a)))
            )
            linear.bias.copy_(
                torch.from_numpy(rng.standard_normal(b) * 10.0 ** rng.uniform(-4, 6, b))
            )
        modules.append(linear)
        if i < len(sizes) - 2:
            modules.append(nn.ReLU())
    net = nn.Sequential(*modules).double().eval()
    half = 10.0 ** np.random.default_rng(1000 + seed).uniform(-1, 2)
    options = {"auto_min_unstable": 0, "skip_decided": False} if method == "auto" else {}
    options["skip_decided"] = False
    bounds = check_sound(
        net, -np.full(3, half), np.full(3, half), method, options, np.random.default_rng(seed)
    )
    refused = [n for n in bounds.notes if n.get("kind") == "refused"]
    assert refused and all(n["stage"] == "milp" for n in refused)
