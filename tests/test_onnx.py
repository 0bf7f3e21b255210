"""load_onnx: exported networks of every supported shape load back to the same function."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from gurobi_sparse_surrogate import (  # noqa: E402
    SparseSequential,
    UnsupportedNetworkError,
    add_sparse_predictor_constr,
    load_onnx,
    prune_network,
)
from gurobi_sparse_surrogate.exceptions import DatasetFormatError  # noqa: E402
from gurobi_sparse_surrogate.network.extraction import float64_copy  # noqa: E402
from gurobi_sparse_surrogate.network.onnx import SUPPORTED_OPS  # noqa: E402


def export(net: nn.Module, shape: tuple[int, ...], path, fold: bool = True) -> None:
    """torch's TorchScript-based exporter (``fold=False`` keeps BatchNormalization nodes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(), torch.zeros(shape), str(path), dynamo=False, do_constant_folding=fold
        )


def reference(net: nn.Module, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The torch network itself in float64, on inputs of the file's shape."""
    model = float64_copy(net)
    with torch.no_grad():
        out = model(torch.from_numpy(x).reshape(len(x), *shape[1:]))
    return out.reshape(len(x), -1).numpy()


def assert_same(net, shape, path, seed=0, n=200, tol=1e-9):
    loaded = load_onnx(path)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, size=(n, int(np.prod(shape))))
    with torch.no_grad():
        got = loaded(torch.from_numpy(x)).numpy()
    want = reference(net, x, shape)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    return loaded


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x):
        return (x - self.mean) / self.std


class MatMulAdd(nn.Module):
    """``x @ W + b`` exported as MatMul and Add."""

    def __init__(self, n_in, n_out, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(n_in, n_out, generator=g))
        self.b = nn.Parameter(torch.randn(n_out, generator=g))

    def forward(self, x):
        return torch.matmul(x, self.w) + self.b


class View(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


DATA = Path(__file__).parent / "data"


def mlp(seed, sizes=(4, 6, 5, 3), final_relu=False):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_relu:
            layers.append(nn.ReLU())
    return layers


NETWORKS = {
    "mlp": (lambda: nn.Sequential(*mlp(0)), (1, 4)),
    "final relu": (lambda: nn.Sequential(*mlp(1, final_relu=True)), (1, 4)),
    "normalised, dropout, identity": (
        lambda: nn.Sequential(
            Normalize([0.1, -0.2, 0.3, 0.5], [0.5, 2.0, 0.25, 1.0]),
            nn.Flatten(),
            nn.Dropout(0.3),
            *mlp(2),
            nn.Identity(),
        ),
        (1, 4),
    ),
    "scalar normalisation": (lambda: nn.Sequential(Normalize(0.5, 0.2), *mlp(3)), (1, 4)),
    "image input flattened": (
        lambda: nn.Sequential(Normalize(0.3, 0.7), nn.Flatten(), *mlp(4)),
        (1, 1, 2, 2),
    ),
    "view reshape": (lambda: nn.Sequential(View(), *mlp(5)), (1, 1, 2, 2)),
    "matmul add": (
        lambda: nn.Sequential(MatMulAdd(4, 5, 6), nn.ReLU(), MatMulAdd(5, 2, 7)),
        (1, 4),
    ),
    "cnn": (
        lambda: _cnn(8),
        (1, 2, 8, 8),
    ),
    # normalisations that cannot be folded into a padded convolution
    "per-channel normalisation, padded conv": (
        lambda: nn.Sequential(
            Normalize(torch.tensor([0.2, -0.1]).reshape(1, 2, 1, 1), 0.5),
            nn.Conv2d(2, 2, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(18, 2),
        ),
        (1, 2, 3, 3),
    ),
    "per-pixel normalisation, padded conv": (
        lambda: nn.Sequential(
            Normalize(torch.linspace(-0.5, 0.5, 18).reshape(1, 2, 3, 3), 2.0),
            nn.Conv2d(2, 2, 3, padding=1, groups=2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(18, 2),
        ),
        (1, 2, 3, 3),
    ),
}


def _cnn(seed):
    torch.manual_seed(seed)
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
    return nn.Sequential(
        Normalize(torch.tensor([0.2, -0.1]).reshape(1, 2, 1, 1), 0.5),
        nn.Conv2d(2, 3, 3, stride=1, padding=0),
        bn,
        nn.ReLU(),
        nn.Conv2d(3, 4, 3, stride=2, padding=1, groups=1),
        nn.ReLU(),
        nn.AvgPool2d(2, 1),
        nn.MaxPool2d(2, 1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_round_trip(name, tmp_path):
    make, shape = NETWORKS[name]
    net = make()
    path = tmp_path / "net.onnx"
    export(net, shape, path, fold=False)
    loaded = assert_same(net, shape, path)
    assert not loaded.training
    assert not isinstance(loaded, SparseSequential)
    # the input normalisation and batch norm are folded: only these modules are left
    kinds = {type(m).__name__ for m in loaded}
    assert kinds <= {"Linear", "ReLU", "Conv2d", "AvgPool2d", "MaxPool2d", "Flatten", "Unflatten"}


def test_constant_folded_batch_norm(tmp_path):
    """With constant folding the exporter merges batch norm into the convolution in float32."""
    net = _cnn(8)
    path = tmp_path / "net.onnx"
    export(net, (1, 2, 8, 8), path, fold=True)
    assert_same(net, (1, 2, 8, 8), path, tol=1e-6)


@pytest.mark.parametrize(
    "name, shape", [("dynamo_mlp.onnx", (1, 4)), ("dynamo_cnn.onnx", (1, 2, 8, 8))]
)
def test_files_from_the_dynamo_exporter(name, shape):
    """Files written by ``torch.onnx.export(..., dynamo=True)`` (torch 2.13, opset 20),
    against onnx's own reference evaluator (float32)."""
    from onnx.reference import ReferenceEvaluator

    path = DATA / name
    model = onnx.load(str(path))
    rng = np.random.default_rng(1)
    x = rng.uniform(-2.0, 2.0, size=(20, int(np.prod(shape)))).astype(np.float32)
    session = ReferenceEvaluator(model)
    feed = model.graph.input[0].name
    want = np.vstack([session.run(None, {feed: row.reshape(shape)})[0].reshape(1, -1) for row in x])
    with torch.no_grad():
        got = load_onnx(path)(torch.from_numpy(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_gzip_and_embedding(tmp_path):
    """A gzip-compressed file loads, and the package embeds the loaded network exactly."""
    import gurobipy as gp

    net = nn.Sequential(Normalize(0.5, 0.25), *mlp(9))
    plain = tmp_path / "net.onnx"
    export(net, (1, 4), plain)
    packed = tmp_path / "net.onnx.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    loaded = assert_same(net, (1, 4), packed)
    with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as m:
        x = m.addMVar((1, 4), lb=-1.0, ub=1.0)
        pc = add_sparse_predictor_constr(m, loaded, x)
        m.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
        m.optimize()
        assert pc.get_error().max() < 1e-5


def test_pruned_network_loads_as_sparse_sequential(tmp_path):
    torch.manual_seed(0)
    pruned = prune_network(nn.Sequential(*mlp(10, sizes=(4, 8, 3))), 0.5)
    path = tmp_path / "pruned.onnx"
    export(pruned, (1, 4), path)
    loaded = assert_same(pruned, (1, 4), path)
    assert isinstance(loaded, SparseSequential)
    assert not isinstance(load_onnx(path, sparse=False), SparseSequential)


# --------------------------------------------------------------------------- hand-made graphs


def _graph_file(path, nodes, inputs, outputs, initializers, opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))


def _tensor(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def test_column_matmul_and_transposed_gemm(tmp_path):
    """``W @ x`` with a column activation (as nnet-converted files do) and Gemm with transA."""
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    w2, b2 = rng.normal(size=(5, 2)), rng.normal(size=(1, 2))
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["col"], name="to column"),
        helper.make_node("MatMul", ["W1", "col"], ["h"], name="matmul"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="add"),
        helper.make_node("Relu", ["hb"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "W2", "b2"], ["y"], name="gemm", transA=1),
    ]
    inits = [
        _tensor("W1", w1),
        _tensor("b1", b1),
        _tensor("W2", w2),
        _tensor("b2", b2),
        numpy_helper.from_array(np.array([3, 1], dtype=np.int64), "shape"),
    ]
    path = tmp_path / "col.onnx"
    _graph_file(
        path,
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        inits,
    )
    loaded = load_onnx(path)
    x = rng.uniform(-1, 1, size=(50, 3))
    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
    h = np.maximum(x @ f32(w1).T + f32(b1).T, 0.0)
    want = h @ f32(w2) + f32(b2)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(torch.from_numpy(x)).numpy(), want, rtol=1e-9, atol=1e-9)


def _single_op_file(path, node, n=3, extra_inits=()):
    _graph_file(
        path,
        [
            helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="gemm", transB=1),
            node,
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)],
        [_tensor("W", np.ones((n, n))), _tensor("b", np.zeros(n)), *extra_inits],
    )


def test_unsupported_op_names_op_node_and_supported_list(tmp_path):
    path = tmp_path / "sigmoid.onnx"
    _single_op_file(path, helper.make_node("Sigmoid", ["h"], ["y"], name="my_sigmoid"))
    with pytest.raises(UnsupportedNetworkError) as info:
        load_onnx(path)
    message = str(info.value)
    assert "Sigmoid" in message and "my_sigmoid" in message
    assert all(op in message for op in SUPPORTED_OPS)


def test_non_sequential_graphs_are_refused(tmp_path):
    path = tmp_path / "residual.onnx"
    _graph_file(
        path,
        [
            helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="gemm", transB=1),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("Add", ["r", "h"], ["y"], name="skip"),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [_tensor("W", np.eye(3)), _tensor("b", np.zeros(3))],
    )
    with pytest.raises(UnsupportedNetworkError, match="not sequential"):
        load_onnx(path)
    two_inputs = tmp_path / "two.onnx"
    _graph_file(
        two_inputs,
        [helper.make_node("Add", ["x", "z"], ["y"], name="add")],
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [],
    )
    with pytest.raises(UnsupportedNetworkError, match="one input"):
        load_onnx(two_inputs)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_onnx(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \x00\x01\x02" * 10)
    with pytest.raises(DatasetFormatError, match="not an ONNX model"):
        load_onnx(junk)
    bad_gz = tmp_path / "bad.onnx.gz"
    bad_gz.write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(DatasetFormatError):
        load_onnx(bad_gz)


def test_division_by_the_activation_is_refused(tmp_path):
    path = tmp_path / "div.onnx"
    _single_op_file(
        path,
        helper.make_node("Div", ["one", "h"], ["y"], name="inv"),
        extra_inits=[_tensor("one", 1.0)],
    )
    with pytest.raises(UnsupportedNetworkError, match="inv"):
        load_onnx(path)


def test_constant_nodes_and_scalar_scaling_fold_into_the_next_layer(tmp_path):
    rng = np.random.default_rng(2)
    w = rng.normal(size=(2, 3))
    path = tmp_path / "const.onnx"
    _graph_file(
        path,
        [
            helper.make_node("Constant", [], ["two"], name="c", value_float=2.0),
            helper.make_node("Mul", ["x", "two"], ["x2"], name="scale"),
            helper.make_node("Gemm", ["x2", "W"], ["y"], name="gemm", transB=1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [_tensor("W", w)],
    )
    loaded = load_onnx(path)
    assert [type(m).__name__ for m in loaded] == ["Linear"]
    x = rng.uniform(-1, 1, size=(10, 3))
    want = 2.0 * x @ w.astype(np.float32).astype(np.float64).T
    with torch.no_grad():
        np.testing.assert_allclose(loaded(torch.from_numpy(x)).numpy(), want, rtol=1e-12)


def test_one_dimensional_input_times_matrix(tmp_path):
    """``W @ x`` on a 1-D input with 1-D biases (the layout of .nnet conversions)."""
    rng = np.random.default_rng(3)
    w1, b1, w2, b2 = (
        rng.normal(size=(4, 3)),
        rng.normal(size=4),
        rng.normal(size=(2, 4)),
        rng.normal(size=2),
    )
    path = tmp_path / "vector.onnx"
    _graph_file(
        path,
        [
            helper.make_node("MatMul", ["W1", "x"], ["h"], name="m1"),
            helper.make_node("Add", ["h", "b1"], ["hb"], name="a1"),
            helper.make_node("Relu", ["hb"], ["r"], name="relu"),
            helper.make_node("MatMul", ["W2", "r"], ["o"], name="m2"),
            helper.make_node("Add", ["b2", "o"], ["y"], name="a2"),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [_tensor("W1", w1), _tensor("b1", b1), _tensor("W2", w2), _tensor("b2", b2)],
    )
    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
    x = rng.uniform(-1, 1, size=(30, 3))
    want = np.maximum(x @ f32(w1).T + f32(b1), 0.0) @ f32(w2).T + f32(b2)
    with torch.no_grad():
        got = load_onnx(path)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
