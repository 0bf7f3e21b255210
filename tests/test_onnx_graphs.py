"""load_onnx on hand-made graphs: every operator and attribute path against onnx's own reference
evaluator, and every refusal with an error that names the culprit node."""

from __future__ import annotations

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from gurobi_sparse_surrogate import UnsupportedNetworkError, load_onnx  # noqa: E402
from gurobi_sparse_surrogate.exceptions import DatasetFormatError  # noqa: E402

RNG = np.random.default_rng(0)


def _init(name, value):
    value = np.asarray(value)
    value = value.astype(np.float64) if value.dtype.kind == "f" else value
    return numpy_helper.from_array(value, name)


def save(path, nodes, x_shape, inits=None, outputs=("y",), opset=13):
    """A graph with one double input ``x`` of ``x_shape`` and double outputs ``outputs``."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, list(x_shape))],
        [helper.make_tensor_value_info(o, TensorProto.DOUBLE, None) for o in outputs],
        initializer=[_init(k, v) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return model


def assert_matches_reference(path, model, x_shape, n=25, seed=1):
    """``load_onnx(path)`` computes what onnx's ReferenceEvaluator computes on the file."""
    loaded = load_onnx(path)
    session = ReferenceEvaluator(model)
    x = np.random.default_rng(seed).uniform(-2.0, 2.0, size=(n, int(np.prod(x_shape))))
    want = np.vstack(
        [session.run(None, {"x": row.reshape(x_shape)})[0].reshape(1, -1) for row in x]
    )
    with torch.no_grad():
        got = loaded(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    return loaded


def kinds(network):
    return [type(m).__name__ for m in network]


# --------------------------------------------------------------------------- operators read


def test_per_pixel_offset_after_a_convolution_becomes_a_diagonal_layer(tmp_path):
    """An offset that differs per pixel cannot go into the convolution's bias: it becomes a
    diagonal Linear layer between an Flatten and an Unflatten, before the ReLU."""
    model = save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Conv", ["x", "K", "kb"], ["c"], name="conv"),
            helper.make_node("Add", ["c", "pixel"], ["cp"], name="per_pixel"),
            helper.make_node("Relu", ["cp"], ["r"], name="relu"),
            helper.make_node("Flatten", ["r"], ["f"], name="flat"),
            helper.make_node("Gemm", ["f", "W"], ["y"], name="gemm", transB=1),
        ],
        (1, 1, 3, 3),
        {
            "K": RNG.normal(size=(2, 1, 2, 2)),
            "kb": RNG.normal(size=2),
            "pixel": RNG.normal(size=(1, 2, 2, 2)),
            "W": RNG.normal(size=(3, 8)),
        },
    )
    loaded = assert_matches_reference(tmp_path / "g.onnx", model, (1, 1, 3, 3))
    assert kinds(loaded) == [
        "Unflatten",
        "Conv2d",
        "Flatten",
        "Linear",
        "Unflatten",
        "ReLU",
        "Flatten",
        "Linear",
    ]


def test_flattened_convolution_output_with_an_elementwise_offset(tmp_path):
    """A Flatten (no torch module of its own) then a per-element Add on a convolution's output:
    the offset is not per channel of a (1, C, H, W) tensor, so it gets a diagonal layer."""
    model = save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
            helper.make_node("Flatten", ["c"], ["f"], name="flat"),
            helper.make_node("Add", ["f", "off"], ["fo"], name="offset"),
            helper.make_node("Relu", ["fo"], ["r"], name="relu"),
            helper.make_node("Gemm", ["r", "W", "b"], ["y"], name="gemm", transB=1),
        ],
        (1, 2, 3, 3),
        {
            "K": RNG.normal(size=(2, 2, 2, 2)),
            "off": RNG.normal(size=(1, 8)),
            "W": RNG.normal(size=(2, 8)),
            "b": RNG.normal(size=2),
        },
    )
    loaded = assert_matches_reference(tmp_path / "g.onnx", model, (1, 2, 3, 3))
    assert kinds(loaded).count("Linear") == 2


def test_per_channel_map_after_relu_becomes_a_depthwise_convolution(tmp_path):
    """A per-channel ``x * s + o`` after a ReLU (nothing to fold into) is a 1x1 depthwise
    convolution; GlobalAveragePool is an average over the whole image."""
    model = save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Conv", ["x", "K", "kb"], ["c"], name="conv", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            helper.make_node("Mul", ["r", "s"], ["rs"], name="scale"),
            helper.make_node("Add", ["rs", "o"], ["ro"], name="shift"),
            helper.make_node("Relu", ["ro"], ["r2"], name="relu2"),
            helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
            helper.make_node("Flatten", ["g"], ["f"], name="flat"),
            helper.make_node("Gemm", ["f", "W"], ["y"], name="gemm", transB=1),
        ],
        (1, 2, 4, 4),
        {
            "K": RNG.normal(size=(3, 2, 3, 3)),
            "kb": RNG.normal(size=3),
            "s": RNG.uniform(0.5, 2.0, size=(1, 3, 1, 1)),
            "o": RNG.normal(size=(1, 3, 1, 1)),
            "W": RNG.normal(size=(2, 3)),
        },
    )
    loaded = assert_matches_reference(tmp_path / "g.onnx", model, (1, 2, 4, 4))
    depthwise = [m for m in loaded if isinstance(m, torch.nn.Conv2d) and m.groups == 3]
    assert len(depthwise) == 1 and depthwise[0].kernel_size == (1, 1)
    assert "AvgPool2d" in kinds(loaded)


@pytest.mark.parametrize(
    "attributes",
    [
        {"kernel_shape": [2, 2], "auto_pad": "VALID", "strides": [2, 1]},
        {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1], "dilations": [2, 1]},
        {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    ],
)
def test_max_pool_attributes(tmp_path, attributes):
    model = save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
            helper.make_node("MaxPool", ["c"], ["p"], name="pool", **attributes),
            helper.make_node("Flatten", ["p"], ["f"], name="flat"),
            helper.make_node("MatMul", ["f", "W"], ["y"], name="mm"),
        ],
        (1, 1, 6, 6),
        {"K": RNG.normal(size=(2, 1, 2, 2))},
    )
    # the flat size after pooling, for W's rows
    pooled = ReferenceEvaluator(
        helper.make_model(
            helper.make_graph(
                model.graph.node[:2],
                "probe",
                list(model.graph.input),
                [helper.make_tensor_value_info("p", TensorProto.DOUBLE, None)],
                initializer=list(model.graph.initializer),
            ),
            opset_imports=[helper.make_opsetid("", 13)],
        )
    ).run(None, {"x": np.zeros((1, 1, 6, 6))})[0]
    model.graph.initializer.append(_init("W", RNG.normal(size=(pooled.size, 2))))
    onnx.save(model, str(tmp_path / "g.onnx"))
    loaded = assert_matches_reference(tmp_path / "g.onnx", model, (1, 1, 6, 6))
    assert "MaxPool2d" in kinds(loaded)


@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool_with_padding(tmp_path, count_include_pad):
    """Whether padded zeros count in the average (they do only with count_include_pad=1)."""
    model = save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Relu", ["x"], ["r"], name="relu"),
            helper.make_node(
                "AveragePool",
                ["r"],
                ["p"],
                name="pool",
                kernel_shape=[2, 2],
                pads=[1, 1, 1, 1],
                count_include_pad=count_include_pad,
            ),
            helper.make_node("Flatten", ["p"], ["f"], name="flat"),
            helper.make_node("Gemm", ["f", "W"], ["y"], name="gemm"),
        ],
        (1, 1, 3, 3),
        {"W": RNG.normal(size=(16, 2))},
    )
    assert_matches_reference(tmp_path / "g.onnx", model, (1, 1, 3, 3))


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_with_the_activation_as_second_operand(tmp_path, trans_b):
    """``Gemm(W, x, c)``: x is B, a column; with transB=1 a row used as a column. alpha and
    beta scale the product and the bias."""
    x_shape = (1, 3) if trans_b else (3, 1)
    model = save(
        tmp_path / "g.onnx",
        [
            helper.make_node(
                "Gemm", ["W", "x", "c"], ["y"], name="gemm", transB=trans_b, alpha=0.5, beta=2.0
            )
        ],
        x_shape,
        {"W": RNG.normal(size=(2, 3)), "c": RNG.normal(size=(2, 1))},
    )
    loaded = assert_matches_reference(tmp_path / "g.onnx", model, x_shape)
    assert kinds(loaded) == ["Linear"]


def test_shape_arithmetic_on_the_activation_is_evaluated(tmp_path):
    """The exporters' ``x.view(x.size(0), -1)``: Shape of the activation, Gather, Unsqueeze,
    Concat with a Constant and Cast give the Reshape target while reading."""
    model = save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Shape", ["x"], ["s"], name="shape"),
            helper.make_node("Gather", ["s", "zero"], ["batch"], name="gather", axis=0),
            helper.make_node("Unsqueeze", ["batch", "axes"], ["b1"], name="unsqueeze"),
            helper.make_node(
                "Constant",
                [],
                ["minus_one"],
                name="constant",
                value=helper.make_tensor("v", TensorProto.INT64, [1], [-1]),
            ),
            helper.make_node("Concat", ["b1", "minus_one"], ["target"], name="concat", axis=0),
            helper.make_node("Cast", ["target"], ["t64"], name="cast", to=TensorProto.INT64),
            helper.make_node("Reshape", ["x", "t64"], ["f"], name="view"),
            helper.make_node("Gemm", ["f", "W", "b"], ["y"], name="gemm", transB=1),
        ],
        (1, 2, 3),
        {
            "zero": np.array(0, dtype=np.int64),
            "axes": np.array([0], dtype=np.int64),
            "W": RNG.normal(size=(2, 6)),
            "b": RNG.normal(size=2),
        },
    )
    loaded = assert_matches_reference(tmp_path / "g.onnx", model, (1, 2, 3))
    assert kinds(loaded) == ["Linear"]


def test_constant_subgraphs_computing_the_weights_are_evaluated(tmp_path):
    """Weights computed from constants (Shape, Reshape, Squeeze, Identity, arithmetic and a
    Cast that truncates to integers) are evaluated while reading, as the file computes them."""
    model = save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Shape", ["M"], ["mshape"], name="shape_of_constant"),
            helper.make_node("Reshape", ["flat", "mshape"], ["W0"], name="reshape"),
            helper.make_node("Squeeze", ["W0", "sq_axes"], ["W1"], name="squeeze"),
            helper.make_node("Identity", ["W1"], ["W2"], name="identity"),
            helper.make_node("Add", ["W2", "M2"], ["W3"], name="add"),
            helper.make_node("Sub", ["W3", "M2"], ["W4"], name="sub"),
            helper.make_node("Mul", ["W4", "three"], ["W5"], name="mul"),
            helper.make_node("Div", ["W5", "three"], ["W6"], name="div"),
            helper.make_node("Cast", ["W6"], ["Wi"], name="to_int", to=TensorProto.INT64),
            helper.make_node("Cast", ["Wi"], ["W"], name="to_double", to=TensorProto.DOUBLE),
            helper.make_node("MatMul", ["x", "W"], ["y"], name="mm"),
        ],
        (1, 3),
        {
            "M": np.zeros((1, 3, 2)),
            "M2": np.ones((3, 2)),
            "flat": RNG.uniform(-5.0, 5.0, size=6),
            "sq_axes": np.array([0], dtype=np.int64),
            "three": np.array(3.0),
        },
    )
    loaded = assert_matches_reference(tmp_path / "g.onnx", model, (1, 3))
    weight = loaded[0].weight.detach().numpy()
    np.testing.assert_array_equal(weight, np.round(weight))  # the Cast to int truncated


def test_opset_11_squeeze_and_unsqueeze_axes_attributes(tmp_path):
    """Opset 11 gives Squeeze/Unsqueeze axes as attributes, on constants and on the path;
    a Squeeze without axes drops every dimension of size 1."""
    model = save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Unsqueeze", ["b"], ["b2"], name="bias_row", axes=[0]),
            helper.make_node("Squeeze", ["Wc"], ["W"], name="weight", axes=[2]),
            helper.make_node("Unsqueeze", ["x"], ["u"], name="up", axes=[0, 2]),
            helper.make_node("Squeeze", ["u"], ["s"], name="down"),
            helper.make_node("MatMul", ["s", "W"], ["m"], name="mm"),
            helper.make_node("Add", ["m", "b2"], ["y"], name="add"),
        ],
        (3,),
        {"Wc": RNG.normal(size=(3, 2, 1)), "b": RNG.normal(size=2)},
        opset=11,
    )
    loaded = assert_matches_reference(tmp_path / "g.onnx", model, (3,))
    assert kinds(loaded) == ["Linear"]


def test_shape_only_ops_on_the_path(tmp_path):
    """Identity, Dropout (inference: identity), Unsqueeze/Squeeze with axes inputs and a
    Transpose (default perm: reversed) that keeps the element order add no module."""
    model = save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Identity", ["x"], ["i"], name="identity"),
            helper.make_node("Dropout", ["i"], ["d"], name="dropout"),
            helper.make_node("Unsqueeze", ["d", "ax"], ["u"], name="unsqueeze"),
            helper.make_node("Squeeze", ["u", "ax"], ["s"], name="squeeze"),
            helper.make_node("Transpose", ["s"], ["col"], name="transpose"),
            helper.make_node("MatMul", ["W", "col"], ["h"], name="mm"),
            helper.make_node("Sub", ["c", "h"], ["y"], name="c_minus_h"),
        ],
        (1, 4),
        {"ax": np.array([1], dtype=np.int64), "W": RNG.normal(size=(3, 4)), "c": np.ones((3, 1))},
    )
    loaded = assert_matches_reference(tmp_path / "g.onnx", model, (1, 4))
    assert kinds(loaded) == ["Linear"]


# --------------------------------------------------------------------------- refusals


def _gemm_then(path, node, n=3, x_shape=None, inits=None, outputs=None, extra=()):
    """``Gemm(x) -> h`` then ``node`` (and ``extra`` nodes)."""
    return save(
        path,
        [helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="gemm", transB=1), node, *extra],
        x_shape or (1, n),
        {"W": np.eye(n), "b": np.zeros(n), **(inits or {})},
        outputs=outputs or (node.output[0],),
    )


def refused(path, *fragments, error=UnsupportedNetworkError):
    with pytest.raises(error) as info:
        load_onnx(path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_graph_without_nodes_is_not_a_model(tmp_path):
    save(tmp_path / "empty.onnx", [], (1, 3), outputs=("x",))
    refused(tmp_path / "empty.onnx", "no nodes", error=DatasetFormatError)


def test_two_outputs_are_refused(tmp_path):
    save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Gemm", ["x", "W"], ["y"], name="gemm"),
            helper.make_node("Relu", ["y"], ["z"]),
        ],
        (1, 2),
        {"W": np.eye(2)},
        outputs=("y", "z"),
    )
    refused(tmp_path / "g.onnx", "one output tensor", "has 2")


def test_missing_convolution_kernel_is_refused(tmp_path):
    save(
        tmp_path / "g.onnx",
        [helper.make_node("Conv", ["x", ""], ["y"], name="conv_without_kernel")],
        (1, 1, 3, 3),
    )
    refused(tmp_path / "g.onnx", "conv_without_kernel", "must be a constant")


def test_convolution_of_a_flat_tensor_is_refused(tmp_path):
    save(
        tmp_path / "g.onnx",
        [helper.make_node("Conv", ["x", "K"], ["y"], name="conv")],
        (1, 9),
        {"K": np.ones((1, 1, 2, 2))},
    )
    refused(tmp_path / "g.onnx", "'conv'", "(1, C, H, W)", "(1, 9)")


@pytest.mark.parametrize(
    "constant, reason",
    [(np.ones(4), "cannot broadcast"), (np.ones((2, 3)), "enlarges the tensor")],
)
def test_constants_that_do_not_fit_the_activation_are_refused(tmp_path, constant, reason):
    _gemm_then(
        tmp_path / "g.onnx",
        helper.make_node("Add", ["h", "c"], ["y"], name="bad_add"),
        inits={"c": constant},
    )
    refused(tmp_path / "g.onnx", "bad_add", reason)


def test_matmul_shape_mismatches_are_refused(tmp_path):
    _gemm_then(
        tmp_path / "right.onnx",
        helper.make_node("MatMul", ["h", "M"], ["y"], name="too_tall"),
        inits={"M": np.ones((4, 2))},
    )
    refused(tmp_path / "right.onnx", "too_tall", "(1, 3)", "(4, 2)")
    save(
        tmp_path / "left.onnx",
        [helper.make_node("MatMul", ["M", "x"], ["y"], name="too_wide")],
        (3, 1),
        {"M": np.ones((2, 4))},
    )
    refused(tmp_path / "left.onnx", "too_wide", "(2, 4)", "(3, 1)")


def test_gemm_transposes_of_the_wrong_shape_are_refused(tmp_path):
    save(
        tmp_path / "a.onnx",
        [helper.make_node("Gemm", ["x", "W"], ["y"], name="trans_a", transA=1)],
        (1, 3),
        {"W": np.ones((3, 2))},
    )
    refused(tmp_path / "a.onnx", "trans_a", "transA of a (1, 3) activation")
    save(
        tmp_path / "b.onnx",
        [helper.make_node("Gemm", ["W", "x"], ["y"], name="trans_b", transB=1)],
        (3, 1),
        {"W": np.ones((2, 3))},
    )
    refused(tmp_path / "b.onnx", "trans_b", "transB of a (3, 1) activation")


def test_convolution_refusals(tmp_path):
    save(
        tmp_path / "1d.onnx",
        [helper.make_node("Conv", ["x", "K"], ["y"], name="conv1d")],
        (1, 1, 5),
        {"K": np.ones((1, 1, 2))},
    )
    refused(tmp_path / "1d.onnx", "conv1d", "only 2-D convolutions")
    save(
        tmp_path / "channels.onnx",
        [helper.make_node("Conv", ["x", "K"], ["y"], name="three_channel_kernel")],
        (1, 2, 4, 4),
        {"K": np.ones((1, 3, 2, 2))},
    )
    refused(tmp_path / "channels.onnx", "three_channel_kernel", "on 2 channels")


@pytest.mark.parametrize(
    "attributes, outputs, reason",
    [
        ({"kernel_shape": [2, 2]}, ["p", "indices"], "indices output"),
        ({"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}, ["p"], "auto_pad=SAME_UPPER"),
        ({"kernel_shape": [2, 2], "pads": [1, 0, 0, 0]}, ["p"], "asymmetric pads (1, 0, 0, 0)"),
    ],
)
def test_max_pool_refusals(tmp_path, attributes, outputs, reason):
    save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
            helper.make_node("MaxPool", ["c"], outputs, name="the_pool", **attributes),
        ],
        (1, 1, 4, 4),
        {"K": np.ones((1, 1, 1, 1))},
        outputs=("p",),
    )
    refused(tmp_path / "g.onnx", "the_pool", reason)


def test_reshape_to_another_size_is_refused(tmp_path):
    _gemm_then(
        tmp_path / "g.onnx",
        helper.make_node("Reshape", ["h", "t"], ["y"], name="resize"),
        inits={"t": np.array([2, 2], dtype=np.int64)},
    )
    refused(tmp_path / "g.onnx", "resize", "cannot reshape (1, 3) to (2, 2)")


def test_string_constant_is_refused(tmp_path):
    _gemm_then(
        tmp_path / "g.onnx",
        helper.make_node("Relu", ["h"], ["y"], name="relu"),
        extra=[helper.make_node("Constant", [], ["s"], name="text", value_string="hello")],
    )
    refused(tmp_path / "g.onnx", "text", "only numeric constants", "value_string")


def test_transpose_that_reorders_elements_is_refused(tmp_path):
    save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Transpose", ["x"], ["t"], name="swap", perm=[0, 2, 1]),
            helper.make_node("Flatten", ["t"], ["f"]),
            helper.make_node("Gemm", ["f", "W"], ["y"]),
        ],
        (1, 2, 3),
        {"W": np.ones((6, 2))},
    )
    refused(tmp_path / "g.onnx", "swap", "reorders the elements")


def test_batch_norm_in_training_mode_is_refused(tmp_path):
    save(
        tmp_path / "g.onnx",
        [
            helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
            helper.make_node(
                "BatchNormalization",
                ["c", "s", "o", "m", "v"],
                ["y"],
                name="bn_train",
                training_mode=1,
            ),
        ],
        (1, 1, 3, 3),
        {
            "K": np.ones((2, 1, 1, 1)),
            "s": np.ones(2),
            "o": np.zeros(2),
            "m": np.zeros(2),
            "v": np.ones(2),
        },
        opset=15,
    )
    refused(tmp_path / "g.onnx", "bn_train", "training mode")


def test_a_node_reading_an_earlier_tensor_is_refused(tmp_path):
    """Dropout's mask is a second computed tensor: a node reading it alone, or combining it with
    the activation, makes the graph not sequential."""
    dropout = helper.make_node("Dropout", ["h"], ["d", "mask"], name="dropout")
    _gemm_then(
        tmp_path / "alone.onnx",
        dropout,
        extra=[helper.make_node("Cast", ["mask"], ["y"], name="cast_mask", to=TensorProto.DOUBLE)],
        outputs=("y",),
    )
    refused(tmp_path / "alone.onnx", "cast_mask", "not sequential", "'mask'", "'d'")
    _gemm_then(
        tmp_path / "combined.onnx",
        dropout,
        extra=[helper.make_node("Mul", ["d", "mask"], ["y"], name="masked")],
        outputs=("y",),
    )
    refused(tmp_path / "combined.onnx", "masked", "combines the computed tensors 'd' and 'mask'")


def test_unsupported_operator_on_constants_is_refused(tmp_path):
    _gemm_then(
        tmp_path / "g.onnx",
        helper.make_node("Add", ["h", "sig"], ["y"], name="add"),
        extra=[],
    )
    model = onnx.load(str(tmp_path / "g.onnx"))
    model.graph.node.insert(0, helper.make_node("Sigmoid", ["b"], ["sig"], name="const_sigmoid"))
    onnx.save(model, str(tmp_path / "g.onnx"))
    refused(tmp_path / "g.onnx", "const_sigmoid", "operator Sigmoid is not supported", "Gemm")


def test_output_before_the_end_of_the_chain_is_refused(tmp_path):
    _gemm_then(tmp_path / "g.onnx", helper.make_node("Relu", ["h"], ["r"]), outputs=("h",))
    refused(tmp_path / "g.onnx", "its output 'h' is not the end", "('r')")


def test_network_without_an_affine_layer_is_refused(tmp_path):
    save(tmp_path / "g.onnx", [helper.make_node("Relu", ["x"], ["y"])], (1, 3))
    refused(tmp_path / "g.onnx", "no Gemm, MatMul or Conv layer")
