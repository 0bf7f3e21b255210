"""Extraction of torch networks into sparse layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import forward64, random_network
from torch import nn
from torch.nn.utils import prune

from gurobi_sparse_surrogate.exceptions import (
    NonFiniteWeightError,
    ShapeMismatchError,
    UnsupportedNetworkError,
)
from gurobi_sparse_surrogate.network.extraction import (
    Float64Network,
    extract_layers,
    layers_forward,
    network_forward,
    network_input_size,
)


def test_layers_reproduce_forward_pass_with_masks_in_place():
    net = random_network(0, 5, (7, 6), 3, density=0.5, masks=True)
    layers = extract_layers(net)
    x = np.random.default_rng(1).random((20, 5))
    z = layers_forward(layers, x)[-1]
    np.testing.assert_allclose(z, forward64(net, x), rtol=1e-12, atol=1e-12)
    assert [layer.relu for layer in layers] == [True, True, False]


def test_masked_zeros_are_not_stored_and_module_untouched():
    net = random_network(0, 6, (8,), 2, density=1.0)
    prune.l1_unstructured(net[0], "weight", amount=0.75)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    # make the cached `weight` attribute stale: extraction must use weight_orig * weight_mask
    with torch.no_grad():
        net[0].weight_orig.mul_(2.0)
    layers = extract_layers(net)
    assert layers[0].weight.nnz == 12
    expected = (net[0].weight_orig * net[0].weight_mask).detach().double().numpy()
    np.testing.assert_array_equal(layers[0].weight.toarray(), expected)
    assert hasattr(net[0], "weight_orig") and hasattr(net[0], "weight_mask")
    assert set(net.state_dict()) == set(before)


def test_weights_read_as_float64():
    net = random_network(3, 4, (5,), 2).double()
    layers = extract_layers(net)
    assert layers[0].weight.dtype == np.float64
    np.testing.assert_array_equal(layers[0].weight.toarray(), net[0].weight.detach().numpy())


def test_no_op_modules_and_nested_sequential():
    inner = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.5))
    net = nn.Sequential(nn.Flatten(), inner, nn.Identity(), nn.Linear(4, 2)).eval()
    layers = extract_layers(net)
    assert len(layers) == 2 and layers[0].relu and not layers[1].relu
    x = np.random.default_rng(0).random((4, 3))
    np.testing.assert_allclose(network_forward(net, x), layers_forward(layers, x)[-1])


def test_consecutive_linear_layers_are_kept_apart():
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    layers = extract_layers(net)
    assert [layer.relu for layer in layers] == [False, False]


def test_network_forward_leaves_network_as_it_was():
    net = random_network(0, 3, (4,), 2, masks=True).train()
    network_forward(net, np.zeros(3))
    assert net.training and net[0].weight_orig.dtype == torch.float32


@pytest.mark.parametrize(
    ("net", "match"),
    [
        (
            nn.Sequential(nn.Linear(3, 4), nn.Sigmoid()),
            r"Sigmoid.*supported modules are: Linear, ReLU",
        ),
        (nn.Sequential(nn.ReLU(), nn.Linear(3, 4)), "ReLU before the first Linear"),
        (nn.Sequential(nn.ReLU()), "ReLU before"),
        (nn.Sequential(nn.Identity()), "no nn.Linear"),
        (nn.Linear(3, 4), "expected a torch.nn.Sequential"),
        (nn.Sequential(nn.Linear(3, 4), nn.Conv1d(1, 1, 1)), "Conv1d"),
        (nn.Sequential(nn.Flatten(0), nn.Linear(3, 4)), "only Flatten"),
    ],
)
def test_unsupported_networks_are_named(net, match):
    with pytest.raises(UnsupportedNetworkError, match=match):
        extract_layers(net)


def _with_none_module() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(3, 2))
    net.add_module("gap", None)
    net.add_module("out", nn.Linear(2, 1))
    return net


def _image(*modules: nn.Module) -> nn.Sequential:
    """``modules`` reading a 1x3x3 image through a 1x1 convolution."""
    return nn.Sequential(nn.Unflatten(1, (1, 3, 3)), nn.Conv2d(1, 2, 1), *modules).eval()


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        # torch itself fails on it ('NoneType' object is not callable): named instead
        (_with_none_module, UnsupportedNetworkError, r"module 'gap' is None"),
        (
            lambda: nn.Sequential(nn.Linear(3, 6), nn.Unflatten(2, (2, 3))),
            UnsupportedNetworkError,
            r"'1' of type Unflatten.*only Unflatten\(1, sizes\) of a flat tensor",
        ),
        (
            lambda: _image(nn.Unflatten(1, (2, 9))),
            UnsupportedNetworkError,
            r"'2' of type Unflatten.*only Unflatten\(1, sizes\) of a flat tensor",
        ),
        (
            lambda: nn.Sequential(nn.Linear(3, 6), nn.Unflatten(1, (1, -1, 3))),
            UnsupportedNetworkError,
            "give every size of Unflatten explicitly",
        ),
        (
            lambda: nn.Sequential(nn.Linear(3, 9), nn.Unflatten(1, (1, 2, 2))),
            ShapeMismatchError,
            r"'1' \(Unflatten\) makes a tensor of shape \(1, 2, 2\) \(4 values\) from 9 values",
        ),
        (
            lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(5)).eval(),
            ShapeMismatchError,
            r"'1' \(BatchNorm1d\) expects 5 features .* shape \(4,\)",
        ),
        (
            lambda: _image(nn.MaxPool2d(2, return_indices=True)),
            UnsupportedNetworkError,
            r"'2' of type MaxPool2d .*return_indices=True",
        ),
        (
            lambda: nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.MaxPool2d(2), nn.Flatten()),
            UnsupportedNetworkError,
            "a MaxPool2d before the first Linear or Conv2d layer",
        ),
        (
            lambda: _image(nn.AvgPool2d(4)),
            ShapeMismatchError,
            r"'2' \(AvgPool2d\): the pooling window does not fit the input of shape \(2, 3, 3\)",
        ),
        (
            lambda: _image(nn.MaxPool2d(4)),
            ShapeMismatchError,
            r"'2' \(MaxPool2d\): the pooling window does not fit the input of shape \(2, 3, 3\)",
        ),
    ],
)
def test_malformed_networks_are_refused_naming_the_module(make, error, match):
    with pytest.raises(error, match=match):
        extract_layers(make())


def test_shape_mismatch_between_layers():
    with pytest.raises(ShapeMismatchError, match="expects 5 inputs"):
        extract_layers(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 2)))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights(value):
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        net[2].bias[1] = value
    with pytest.raises(NonFiniteWeightError, match="layer 1"):
        extract_layers(net)


def test_relu_after_max_pooling_moves_before_it():
    """max(relu(a), relu(b)) == relu(max(a, b)): the ReLU goes on the convolution."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Unflatten(1, (1, 4, 4)),
        nn.Conv2d(1, 2, 3, padding=1),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8, 2),
    ).eval()
    layers = extract_layers(net)
    assert [(layer.kind, layer.relu) for layer in layers] == [
        ("affine", True),
        ("maxpool", False),
        ("affine", False),
    ]
    x = np.random.default_rng(0).uniform(-1, 1, (20, 16))
    np.testing.assert_allclose(layers_forward(layers, x)[-1], forward64(net, x), atol=1e-12)


@pytest.mark.parametrize(
    ("net", "expected"),
    [
        (nn.Sequential(nn.Dropout(), nn.Unflatten(1, (2, 3, 4)), nn.Conv2d(2, 1, 1)), 24),
        (nn.Sequential(nn.Identity(), nn.Linear(5, 2)), 5),
        (nn.Sequential(nn.Flatten(), nn.BatchNorm1d(7)), 7),
        (nn.Sequential(nn.Identity(), nn.Conv2d(1, 1, 1)), None),  # the image shape is unknown
        (nn.Sequential(nn.Identity(), nn.Flatten()), None),  # only no-op modules
    ],
)
def test_network_input_size(net, expected):
    assert network_input_size(net) == expected


def test_float64_network_checks_the_input_width_when_known():
    forward = Float64Network(nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(ShapeMismatchError, match=r"3 inputs, got an input of shape \(2, 4\)"):
        forward(np.zeros((2, 4)))
    # no module gives the width: any width runs, as torch runs it
    identity = Float64Network(nn.Sequential(nn.Identity()))
    np.testing.assert_array_equal(identity(np.arange(5.0)), np.arange(5.0))
