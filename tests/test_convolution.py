"""Convolutional networks: Conv2d, AvgPool2d, BatchNorm and Flatten/Unflatten as sparse layers.

The truth is torch: its forward pass, and the matrices of its affine blocks read off its own
forward pass on unit vectors (``unrolled_linear``), embedded with gurobi-ml.
"""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
import torch
from cnn_helpers import conv_specs, make_cnn, unrolled_linear
from conftest import forward64
from gurobi_ml import add_predictor_constr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from gurobi_sparse_surrogate import (
    BatchNormTrainingError,
    ModelTooLargeError,
    ShapeMismatchError,
    UnsupportedNetworkError,
    add_sparse_predictor_constr,
)
from gurobi_sparse_surrogate.network.convolution import avg_pool2d_matrix, conv2d_matrix
from gurobi_sparse_surrogate.network.extraction import extract_layers, layers_forward

FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))


def quiet_model() -> gp.Model:
    m = gp.Model()
    m.Params.OutputFlag = 0
    m.Params.Threads = 1
    # a drawn network that Gurobi cannot solve to optimality quickly is discarded (``assume``
    # below), never failed: the tests check exactness at optimality, not solver speed
    m.Params.TimeLimit = 30
    return m


def _embed_or_skip(m: gp.Model, net: nn.Module, x, **options):
    """Embed, discarding the example when the model would exceed the size-limited licence."""
    try:
        return add_sparse_predictor_constr(m, net, x, **options)
    except ModelTooLargeError:
        assume(False)


def n_inputs(spec: dict) -> int:
    return spec["c_in"] * spec["h"] * spec["w"]


@FAST
@given(spec=conv_specs(max_pool=True))
def test_extracted_layers_match_torch_forward(spec):
    net = make_cnn(**spec)
    layers = extract_layers(net)
    rng = np.random.default_rng(spec["seed"])
    x = rng.uniform(-1, 1, (4, n_inputs(spec)))
    np.testing.assert_allclose(layers_forward(layers, x)[-1], forward64(net, x), atol=1e-9)
    assert layers[0].input_shape == (spec["c_in"], spec["h"], spec["w"])
    # batch norm is never a layer of its own when an affine layer is next to it
    n_affine = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net)
    assert sum(layer.kind == "affine" for layer in layers) <= n_affine + 1


def test_conv_matrix_by_hand():
    # 1 channel 3x3 input, 2x2 kernel [[1, 2], [3, 4]], stride 1, no padding
    matrix, shape = conv2d_matrix(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), (1, 3, 3))
    assert shape == (1, 2, 2)
    expected = np.zeros((4, 9))
    for r, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        expected[r, i * 3 + j] = 1.0
        expected[r, i * 3 + j + 1] = 2.0
        expected[r, (i + 1) * 3 + j] = 3.0
        expected[r, (i + 1) * 3 + j + 1] = 4.0
    np.testing.assert_array_equal(matrix.toarray(), expected)


def test_prune_masks_on_convolutions_are_read():
    net = make_cnn(seed=1, density=0.5)
    mask = net[1].weight_mask
    assert 0 < int(mask.sum()) < mask.numel()
    layers = extract_layers(net)
    # every stored weight is a surviving kernel entry, and the masked ones are not stored
    kept = float(mask.sum()) / mask.numel()
    full = extract_layers(make_cnn(seed=1, density=1.0))
    assert layers[0].nnz < full[0].nnz
    assert layers[0].nnz == pytest.approx(full[0].nnz * kept, rel=0.35)
    assert hasattr(net[1], "weight_orig")  # the network is left as it was


@SLOW
@given(spec=conv_specs(max_pool=True), formulation=st.sampled_from(["bigm", "max", "indicator"]))
def test_fixed_inputs_reproduce_forward_pass(spec, formulation):
    net = make_cnn(**spec)
    rng = np.random.default_rng(spec["seed"])
    points = rng.uniform(0, 1, (2, n_inputs(spec)))
    m = quiet_model()
    x = m.addMVar(points.shape, lb=0.0, ub=1.0)
    pc = _embed_or_skip(m, net, x, relu_formulation=formulation, bounds="interval")
    # fixed through the variables' bounds: rows would count against the size-limited licence
    x.LB, x.UB = points, points
    m.optimize()
    assert m.Status == gp.GRB.OPTIMAL
    expected = forward64(net, points)
    np.testing.assert_allclose(pc.output_values, expected, rtol=1e-5, atol=1e-5)


@SLOW
@given(
    spec=conv_specs(max_pool=True, max_size=5),  # small enough to solve to optimality quickly
    formulation=st.sampled_from(["bigm", "max", "indicator"]),
)
def test_free_optimum_is_exact_at_the_solvers_input(spec, formulation):
    net = make_cnn(**spec)
    rng = np.random.default_rng(spec["seed"] + 1)
    c = rng.normal(size=spec["n_out"])
    m = quiet_model()
    x = m.addMVar((spec["c_in"], spec["h"], spec["w"]), lb=0.0, ub=1.0)  # image-shaped
    pc = _embed_or_skip(m, net, x, bounds="linear", relu_formulation=formulation)
    m.setObjective(c @ pc.output[0], gp.GRB.MAXIMIZE)
    m.optimize()
    assume(m.Status != gp.GRB.TIME_LIMIT)
    assert m.Status == gp.GRB.OPTIMAL
    at_solution = forward64(net, x.X.reshape(1, -1))[0]
    assert abs(c @ at_solution - m.ObjVal) <= 1e-5 * (1 + abs(m.ObjVal))
    samples = rng.random((300, n_inputs(spec)))
    gap = 1e-4 * (1 + abs(m.ObjVal))  # the default MIPGap
    assert (forward64(net, samples) @ c).max() <= m.ObjVal + gap


@SLOW
@given(spec=conv_specs(max_pool=False))
def test_same_optimum_as_the_unrolled_network_in_gurobi_ml(spec):
    net = make_cnn(**spec)
    n = n_inputs(spec)
    unrolled = unrolled_linear(net, n)
    c = np.random.default_rng(spec["seed"]).normal(size=spec["n_out"])
    values = []
    for embed in ("gurobi-ml", "sparse"):
        m = quiet_model()
        m.Params.MIPGap = 1e-7
        x = m.addMVar((1, n), lb=0.0, ub=1.0)
        if embed == "gurobi-ml":
            pc = add_predictor_constr(m, unrolled, x)
        else:
            pc = add_sparse_predictor_constr(m, net, x, bounds="linear")
        m.setObjective(c @ pc.output[0], gp.GRB.MAXIMIZE)
        m.optimize()
        assume(m.Status != gp.GRB.TIME_LIMIT)
        assert m.Status == gp.GRB.OPTIMAL
        values.append(m.ObjVal)
    assert values[1] == pytest.approx(values[0], rel=1e-5, abs=1e-5)


def test_valid_padding_and_divisor_override_by_hand():
    """``padding="valid"`` is no padding; ``divisor_override`` divides every window sum by it
    (not by the window size): against torch, and a hand-computed window."""
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Unflatten(1, (1, 5, 5)),
        nn.Conv2d(1, 2, 2, padding="valid"),
        nn.ReLU(),
        nn.AvgPool2d(2, divisor_override=3),
        nn.Flatten(),
        nn.Linear(8, 2),
    ).eval()
    layers = extract_layers(net)
    assert layers[0].output_shape == (2, 4, 4)
    x = np.random.default_rng(0).uniform(-1, 1, (6, 25))
    np.testing.assert_allclose(layers_forward(layers, x)[-1], forward64(net, x), atol=1e-9)
    matrix, shape = avg_pool2d_matrix((1, 2, 2), 2, divisor_override=3)
    assert shape == (1, 1, 1)
    np.testing.assert_allclose(matrix.toarray(), [[1 / 3] * 4])


def test_errors_name_the_problem():
    conv = nn.Sequential(nn.Unflatten(1, (1, 5, 5)), nn.Conv2d(1, 2, 3), nn.ReLU())
    with pytest.raises(
        UnsupportedNetworkError, match=r"AdaptiveAvgPool2d.*supported modules.*Conv2d"
    ):
        extract_layers(nn.Sequential(*conv, nn.AdaptiveAvgPool2d(1)))
    with pytest.raises(UnsupportedNetworkError, match=r"Conv1d.*MaxPool2d.*BatchNorm2d"):
        extract_layers(nn.Sequential(nn.Conv1d(1, 1, 1)))
    with pytest.raises(ShapeMismatchError, match=r"Unflatten\(1, \(C, H, W\)\)"):
        extract_layers(nn.Sequential(nn.Conv2d(1, 2, 3)))
    with pytest.raises(ShapeMismatchError, match="expects 3 channels"):
        extract_layers(nn.Sequential(nn.Unflatten(1, (1, 5, 5)), nn.Conv2d(3, 2, 3)))
    with pytest.raises(ShapeMismatchError, match="add nn.Flatten"):
        extract_layers(nn.Sequential(*conv, nn.Linear(3, 1)))
    with pytest.raises(ShapeMismatchError, match="expects 9 inputs but the previous layer has 18"):
        extract_layers(nn.Sequential(*conv, nn.Flatten(), nn.Linear(9, 1)))
    with pytest.raises(ShapeMismatchError, match="does not fit"):
        extract_layers(nn.Sequential(nn.Unflatten(1, (1, 2, 2)), nn.Conv2d(1, 1, 3)))


def test_batch_norm_in_training_mode_is_refused():
    net = nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(BatchNormTrainingError, match=r"'2' \(BatchNorm2d\) is in training mode"):
        extract_layers(net.train())
    assert isinstance(BatchNormTrainingError("x"), UnsupportedNetworkError)
    extract_layers(net.eval())
    no_stats = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2, track_running_stats=False)).eval()
    with pytest.raises(UnsupportedNetworkError, match="track_running_stats"):
        extract_layers(no_stats)


def test_input_shape_mismatch_names_both_shapes():
    net = make_cnn(seed=0, h=5, w=5)
    m = quiet_model()
    with pytest.raises(ShapeMismatchError, match=r"\(1, 5, 5\).*\(1, 6, 6\)"):
        add_sparse_predictor_constr(m, net, m.addMVar((1, 6, 6), lb=0, ub=1))
    with pytest.raises(ShapeMismatchError, match=r"25 inputs per sample \(an image of shape"):
        add_sparse_predictor_constr(m, net, m.addMVar(24, lb=0, ub=1))


def test_network_is_not_modified():
    net = make_cnn(seed=2, batch_norm="after", density=0.5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    m = quiet_model()
    add_sparse_predictor_constr(m, net, m.addMVar(25, lb=0, ub=1), bounds="interval")
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])
    assert not net.training
