"""MaxPool2d: its MILP formulations (big-M, max, indicator) at fixed inputs with ties, dropped
and dominant inputs, sizes announced before building, and bound soundness through pooling for
every bounding method."""

from __future__ import annotations

import dataclasses

import gurobipy as gp
import numpy as np
import pytest
import torch
from cnn_helpers import conv_specs, make_cnn
from conftest import forward64
from hypothesis import HealthCheck, example, given, settings
from torch import nn

from gurobi_sparse_surrogate import UnsupportedNetworkError, add_sparse_predictor_constr
from gurobi_sparse_surrogate.bounds import compute_bounds
from gurobi_sparse_surrogate.bounds.problem import METHODS, register_method
from gurobi_sparse_surrogate.formulation.strategy import formulation_for
from gurobi_sparse_surrogate.network.extraction import extract_layers, layers_forward

FORMULATIONS = ("bigm", "max", "indicator")
BOUND_METHODS = ("interval", "linear", "lp", "milp", "auto")


def quiet_model() -> gp.Model:
    m = gp.Model()
    m.Params.OutputFlag = 0
    m.Params.Threads = 1
    return m


def pooled_identity(size: int = 4, kernel: int = 2, stride: int = 2, padding: int = 0):
    """``y = maxpool(x)`` through an identity 1x1 convolution (and a final identity Linear)."""
    conv = nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    pool = nn.MaxPool2d(kernel, stride, padding)
    n_pool = pool(torch.zeros(1, 1, size, size)).numel()
    linear = nn.Linear(n_pool, n_pool)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(n_pool))
        linear.bias.zero_()
    return nn.Sequential(nn.Unflatten(1, (1, size, size)), conv, pool, nn.Flatten(), linear).eval()


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_fixed_inputs_with_ties(formulation):
    net = pooled_identity(4, 2, 2)
    image = np.array(
        [
            [1.0, 1.0, 0.2, 0.5],  # window 0: a tie at the max
            [0.3, -1.0, 0.5, 0.5],  # window 1: a tie between 0.5s
            [-2.0, -2.0, 3.0, 0.0],  # window 2: all equal below zero
            [-2.0, -2.0, 0.0, 3.0],  # window 3: a tie at 3
        ]
    ).reshape(1, -1)
    m = quiet_model()
    x = m.addMVar(image.shape, lb=-3.0, ub=3.0)
    pc = add_sparse_predictor_constr(m, net, x, relu_formulation=formulation, bounds="interval")
    m.addConstr(x == image)
    m.optimize()
    assert m.Status == gp.GRB.OPTIMAL
    np.testing.assert_allclose(pc.output_values, forward64(net, image), atol=1e-6)
    np.testing.assert_allclose(pc.output_values[0], [1.0, 0.5, -2.0, 3.0], atol=1e-6)


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_padding_and_overlapping_windows_at_fixed_inputs(formulation):
    net = pooled_identity(5, 3, 2, 1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        image = rng.integers(-2, 3, (1, 25)).astype(float)  # many ties
        m = quiet_model()
        x = m.addMVar(image.shape, lb=-2.0, ub=2.0)
        pc = add_sparse_predictor_constr(m, net, x, relu_formulation=formulation)
        m.addConstr(x == image)
        m.optimize()
        np.testing.assert_allclose(pc.output_values, forward64(net, image), atol=1e-6)


def test_dominated_inputs_drop_out_and_dominant_windows_are_linear():
    net = pooled_identity(2, 2, 2)  # one window of 4 inputs
    m = quiet_model()
    lb = np.array([[2.0, 0.0, 1.0, 0.0]])
    ub = np.array([[3.0, 1.0, 2.5, 1.9]])
    x = m.addMVar((1, 4), lb=lb, ub=ub)
    pc = add_sparse_predictor_constr(m, net, x, bounds="interval")
    plan = pc.plans[0][1]
    # inputs 1 and 3 can never beat input 0 (their upper bound is below its lower bound)
    assert plan.weight.nnz == 2 and plan.unstable.all()
    assert pc.stats["binaries"] == 2
    m.setObjective(pc.output[0, 0], gp.GRB.MINIMIZE)
    m.optimize()
    assert m.ObjVal == pytest.approx(2.0)
    m2 = quiet_model()
    x2 = m2.addMVar((1, 4), lb=lb, ub=np.array([[3.0, 1.0, 2.0, 1.9]]))
    pc2 = add_sparse_predictor_constr(m2, net, x2, bounds="interval")
    assert pc2.stats["binaries"] == 0  # input 0 dominates: y = x0
    assert pc2.plans[0][1].count("active") == 1


def corner_tap_pool() -> nn.Sequential:
    """4x4 image -> 3x3 convolution reading only its top-left tap (padding 1), plus 0.25 ->
    2x2 max pool -> identity Linear. The convolution's first row and column read only the
    padding: they are constants (0.25) in the windows of the pool."""
    conv = nn.Conv2d(1, 1, 3, padding=1)
    linear = nn.Linear(4, 4)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0
        conv.bias.fill_(0.25)
        linear.weight.copy_(torch.eye(4))
        linear.bias.zero_()
    return nn.Sequential(nn.Unflatten(1, (1, 4, 4)), conv, nn.MaxPool2d(2), nn.Flatten(), linear)


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_windows_with_constant_members(formulation):
    net = corner_tap_pool().eval()
    rng = np.random.default_rng(1)
    # all -1: the constant 0.25 is the maximum of windows 0-2, window 3 holds -0.75 only
    for image in (np.full((1, 16), -1.0), rng.uniform(-1, 1, (1, 16))):
        m = quiet_model()
        m.Params.IntFeasTol = 1e-9  # outputs compared at 1e-6; big-M constants up to 2
        x = m.addMVar((1, 16), lb=-1.0, ub=1.0)
        pc = add_sparse_predictor_constr(m, net, x, relu_formulation=formulation, bounds="interval")
        # candidates per window (the tied constants count once): 1+1, 1+2, 1+2 and 4 variables
        plan = pc.plans[0][1]
        assert plan.unstable.all() and plan.weight.nnz == 1 + 2 + 2 + 4
        if formulation != "max":
            assert pc.stats["binaries"] == 2 + 3 + 3 + 4
        m.addConstr(x == image)
        m.optimize()
        assert m.Status == gp.GRB.OPTIMAL
        np.testing.assert_allclose(pc.output_values, forward64(net, image), atol=1e-6)
    np.testing.assert_allclose(forward64(net, np.full((1, 16), -1.0)), [[0.25] * 3 + [-0.75]])


def test_big_m_pooling_refuses_a_candidate_unbounded_below():
    """The window's bounds are finite ([0, 1]: the largest lower bound and upper bound of its
    members), but input 1 (at most 0.5, unbounded below) still competes for the maximum and
    its big-M would be infinite; the max formulation embeds it."""
    from gurobi_sparse_surrogate import UnboundedInputError

    net = pooled_identity(2, 2, 2)
    m = quiet_model()
    x = m.addMVar((1, 4), lb=[[0.0, -gp.GRB.INFINITY, 0.0, 0.0]], ub=[[1.0, 0.5, 1.0, 1.0]])
    with pytest.raises(UnboundedInputError, match=r"max-pool formulation of layer 1 .*MaxPool2d"):
        add_sparse_predictor_constr(m, net, x, bounds="interval")
    pc = add_sparse_predictor_constr(m, net, x, bounds="interval", relu_formulation="max")
    assert (pc.bounds.lower[1][0, 0], pc.bounds.upper[1][0, 0]) == (0.0, 1.0)
    assert pc.plans[0][1].weight.nnz == 4  # every input competes
    m.addConstr(x == np.array([[0.1, 0.5, 0.2, 0.3]]))
    m.optimize()
    assert pc.output_values[0, 0] == pytest.approx(0.5, abs=1e-6)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=conv_specs(max_pool=True))
@example(  # two candidates of a window with equal bounds: a zero big-M that Gurobi drops
    spec={
        **dict(seed=0, c_in=1, h=3, w=3, c_out=1, kernel=(1, 2), stride=(1, 1), padding=1),
        **dict(padding_mode="zeros", dilation=1, groups=1, bias=False, batch_norm=None),
        **dict(pool="max", pool_kernel=2, pool_stride=1, pool_padding=0, ceil_mode=False),
        **dict(count_include_pad=False, second_conv=False, density=1.0, n_out=1),
    }
)
def test_announced_sizes_equal_what_is_built(spec):
    spec = {**spec, "pool": "max"}
    net = make_cnn(**spec)
    if net is None:
        return
    n = spec["c_in"] * spec["h"] * spec["w"]
    for formulation in FORMULATIONS:
        m = quiet_model()
        x = m.addMVar((1, n), lb=0.0, ub=1.0)
        pc = add_sparse_predictor_constr(m, net, x, relu_formulation=formulation, bounds="linear")
        planned = pc._planned_size()
        assert planned.variables == len(pc.vars)
        assert planned.constraints == len(pc.constrs)
        assert planned.general == len(pc.genconstrs)
        assert planned.binaries == sum(v.VType == gp.GRB.BINARY for v in pc.vars)
        hidden = sum(
            formulation_for(p.layer, formulation).size(p).nonzeros for p in pc.plans[0][:-1]
        )
        last = pc.plans[0][-1]
        output_rows = last.weight.nnz + len(last.rows) + (net[-1].out_features - len(last.rows))
        assert hidden + output_rows == pc.stats["nonzeros"]


def test_unknown_formulation_is_an_error():
    layer = extract_layers(pooled_identity())[1]
    with pytest.raises(ValueError, match="unknown relu_formulation 'maxx'.*bigm, max, indicator"):
        formulation_for(layer, "maxx")
    # a layer of a kind the formulations do not know (an AvgPool, say) is named
    odd = dataclasses.replace(layer, kind="avgpool")
    with pytest.raises(ValueError, match=r"no formulation for layers of kind 'avgpool' \(layer 1"):
        formulation_for(odd, "bigm")


def _attack_points(net, n, rng, steps=30):
    """Inputs in [0, 1]^n pushing each output up and down (projected gradient steps)."""
    model = net.double()
    points = []
    n_out = model(torch.zeros(1, n, dtype=torch.float64)).shape[1]
    for j in range(n_out):
        for sign in (1.0, -1.0):
            x = torch.tensor(rng.random((4, n)), dtype=torch.float64, requires_grad=True)
            for _ in range(steps):
                (sign * model(x)[:, j]).sum().backward()
                with torch.no_grad():
                    x += 0.05 * x.grad.sign()
                    x.clamp_(0.0, 1.0)
                x.grad = None
            points.append(x.detach().numpy())
    return np.vstack(points)


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=conv_specs(max_pool=True))
def test_bounds_contain_sampled_and_attack_points_for_every_method(spec):
    net = make_cnn(**spec)
    layers = extract_layers(net)
    n = layers[0].n_in
    rng = np.random.default_rng(spec["seed"])
    points = np.vstack(
        [
            rng.random((500, n)),
            rng.integers(0, 2, (200, n)).astype(float),
            _attack_points(make_cnn(**spec), n, rng),
        ]
    )
    values = layers_forward(layers, points)
    for method in BOUND_METHODS:
        bounds = compute_bounds(layers, np.zeros(n), np.ones(n), method, time_budget=5.0)
        for layer, v, lo, hi in zip(layers, values, bounds.lower, bounds.upper, strict=True):
            tol = 1e-7 * (1 + np.abs(v))
            assert (v >= lo - tol).all(), (method, layer.name)
            assert (v <= hi + tol).all(), (method, layer.name)


def test_a_stage_that_does_not_know_max_pooling_is_refused():
    class Blind:
        name = "blind"

        def layer_bounds(self, problem, index, lower, upper):  # pragma: no cover
            return lower, upper

    register_method("blind-test", (Blind(),))
    try:
        layers = extract_layers(pooled_identity())
        with pytest.raises(UnsupportedNetworkError, match=r"'blind-test'.*\['blind'\].*linear"):
            compute_bounds(layers, np.zeros(16), np.ones(16), "blind-test")
    finally:
        METHODS.pop("blind-test")
