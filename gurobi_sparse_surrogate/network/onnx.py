"""Reading ONNX networks into torch: :func:`load_onnx`.

The graph is read with the ``onnx`` package (an optional dependency: ``pip install
gurobi-sparse-surrogate[onnx]``) and turned into an ``nn.Sequential`` that takes and returns
flat ``(k, n)`` batches, whatever the shapes in the file: the inputs are the file's input
tensor flattened in row-major order (VNN-LIB's ``X_i`` numbering) and so are the outputs.

Supported: sequential graphs (each node reads the previous node's output and constants) of
``Gemm``, ``MatMul`` (with the activation on either side), ``Add``/``Sub``/``Mul``/``Div`` by
constants, ``Relu``, ``Flatten``, ``Reshape``, ``Squeeze``, ``Unsqueeze``, ``Identity``,
``Dropout``, ``Transpose`` that keeps the element order, ``BatchNormalization``, ``Conv``,
``AveragePool``, ``GlobalAveragePool`` and ``MaxPool``; ``Constant``, ``Shape``, ``Gather``,
``Concat`` and ``Cast`` on constants are evaluated while reading.

Element-wise affine maps (input normalisation ``(x - mean) / std``, batch normalisation, an
``Add`` after a ``MatMul``) are folded into the neighbouring ``Linear`` or ``Conv2d`` layer,
forward into the next affine layer when they come first and backward into the previous one
otherwise, so they cost no layer of their own. A map that cannot be folded exactly (such as a
per-pixel normalisation in front of a padded convolution) becomes a layer of its own.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..exceptions import DatasetFormatError, UnsupportedNetworkError
from .pruning import SparseSequential

__all__ = ["SUPPORTED_OPS", "load_onnx"]

#: ONNX operators that :func:`load_onnx` reads on the network's path.
SUPPORTED_OPS: tuple[str, ...] = (
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "Flatten",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Identity",
    "Dropout",
    "Transpose",
    "BatchNormalization",
    "Conv",
    "AveragePool",
    "GlobalAveragePool",
    "MaxPool",
)


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_onnx needs the onnx package: pip install 'gurobi-sparse-surrogate[onnx]'"
        ) from error
    return onnx, numpy_helper


def _read_model(path: str | os.PathLike) -> Any:
    onnx, _ = _onnx()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file at {path}")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip magic, whatever the suffix
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise DatasetFormatError(f"{path} is not a valid gzip file: {error}") from error
    try:
        model = onnx.load_model_from_string(data)
    except Exception as error:  # protobuf's DecodeError and friends
        raise DatasetFormatError(f"{path} is not an ONNX model: {error}") from error
    if not len(model.graph.node):
        raise DatasetFormatError(f"{path} is not an ONNX model (its graph has no nodes)")
    return model


def _attributes(node: Any) -> dict[str, Any]:
    onnx, numpy_helper = _onnx()
    out = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if a.type == onnx.AttributeProto.TENSOR:
            value = numpy_helper.to_array(value)
        elif isinstance(value, bytes):
            value = value.decode()
        out[a.name] = value
    return out


@dataclass
class _Affine:
    """A pending element-wise map ``x * scale + offset`` on the flat activation."""

    scale: np.ndarray
    offset: np.ndarray

    def then(self, scale: np.ndarray, offset: np.ndarray) -> _Affine:
        return _Affine(self.scale * scale, self.offset * scale + offset)


class _Builder:
    """Walks the graph, keeping the current activation, its shape and the torch modules."""

    def __init__(self, model: Any, source: str) -> None:
        _, numpy_helper = _onnx()
        self.source = source
        graph = model.graph
        self.constants: dict[str, np.ndarray] = {}
        for t in graph.initializer:
            value = numpy_helper.to_array(t)
            self.constants[t.name] = value.astype(np.float64) if value.dtype.kind == "f" else value
        inputs = [i for i in graph.input if i.name not in self.constants]
        if len(inputs) != 1:
            raise UnsupportedNetworkError(
                f"{source}: expected one input tensor, the graph has {len(inputs)} "
                f"({', '.join(i.name for i in inputs)})"
            )
        if len(graph.output) != 1:
            raise UnsupportedNetworkError(
                f"{source}: expected one output tensor, the graph has {len(graph.output)}"
            )
        dims = inputs[0].type.tensor_type.shape.dim
        # dynamic dimensions (a batch) count as 1
        self.shape: tuple[int, ...] = tuple(d.dim_value if d.dim_value > 0 else 1 for d in dims)
        self.input_shape = self.shape
        self.current = inputs[0].name
        self.output = graph.output[0].name
        self.modules: list[nn.Module] = []
        self.spatial = False  # whether the torch tensor is (k, C, H, W) at this point
        self.pending: _Affine | None = None
        self.last_affine: nn.Module | None = None  # Linear/Conv2d whose output is current
        self.has_zero_weights = False

    # ------------------------------------------------------------------ helpers
    @property
    def n(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def fail(self, node: Any, reason: str) -> UnsupportedNetworkError:
        return UnsupportedNetworkError(
            f"{self.source}: node {node.name or '(unnamed)'!r} ({node.op_type}): {reason}"
        )

    def const(self, node: Any, name: str) -> np.ndarray:
        if name not in self.constants:
            raise self.fail(node, f"input {name!r} must be a constant")
        return self.constants[name]

    def to_flat(self) -> None:
        if self.spatial:
            self.modules.append(nn.Flatten())
            self.spatial = False

    def to_spatial(self, node: Any) -> tuple[int, int, int]:
        if len(self.shape) != 4 or self.shape[0] != 1:
            raise self.fail(node, f"expected an input of shape (1, C, H, W), got {self.shape}")
        chw = tuple(int(s) for s in self.shape[1:])
        if not self.spatial:
            self.modules.append(nn.Unflatten(1, chw))
            self.spatial = True
        return chw  # type: ignore[return-value]

    def add_module(self, module: nn.Module, affine: bool) -> None:
        self.modules.append(module)
        self.last_affine = module if affine else None

    # ------------------------------------------------------------------ element-wise maps
    def elementwise(self, scale: Any, offset: Any, node: Any) -> None:
        """Compose ``x * scale + offset`` (broadcast to the activation) into the pending map."""
        try:
            shape = np.broadcast_shapes(self.shape, np.shape(scale), np.shape(offset))
        except ValueError as error:
            raise self.fail(node, f"cannot broadcast a constant to {self.shape}") from error
        if int(np.prod(shape, dtype=np.int64)) != self.n:
            raise self.fail(node, f"a constant of shape {np.shape(scale)} enlarges the tensor")
        s = np.broadcast_to(np.asarray(scale, dtype=np.float64), shape).reshape(-1).copy()
        o = np.broadcast_to(np.asarray(offset, dtype=np.float64), shape).reshape(-1).copy()
        self.shape = tuple(int(d) for d in shape)
        self.pending = _Affine(s, o) if self.pending is None else self.pending.then(s, o)

    def channel_form(self, values: np.ndarray) -> np.ndarray | None:
        """Per-channel values when ``values`` (flat, over (1, C, H, W)) are constant per channel."""
        if len(self.shape) != 4:
            return None
        per = values.reshape(self.shape[1], -1)
        return per[:, 0].copy() if np.all(per == per[:, :1]) else None

    def flush(self) -> None:
        """Apply the pending map before a non-affine operation (ReLU, pooling, the output)."""
        pending, self.pending = self.pending, None
        if pending is None or (np.all(pending.scale == 1.0) and np.all(pending.offset == 0.0)):
            return
        s, o = pending.scale, pending.offset
        last = self.last_affine
        if isinstance(last, nn.Linear):
            with torch.no_grad():
                last.weight.mul_(torch.from_numpy(s)[:, None])
                last.bias.mul_(torch.from_numpy(s)).add_(torch.from_numpy(o))
            return
        if isinstance(last, nn.Conv2d):
            cs, co = self.channel_form(s), self.channel_form(o)
            if cs is not None and co is not None:
                with torch.no_grad():
                    last.weight.mul_(torch.from_numpy(cs)[:, None, None, None])
                    last.bias.mul_(torch.from_numpy(cs)).add_(torch.from_numpy(co))
                return
        # a layer of its own: per-channel on images, diagonal otherwise
        if self.spatial:
            cs, co = self.channel_form(s), self.channel_form(o)
            if cs is not None and co is not None:
                conv = nn.Conv2d(len(cs), len(cs), 1, groups=len(cs)).double()
                with torch.no_grad():
                    conv.weight.copy_(torch.from_numpy(cs).reshape(-1, 1, 1, 1))
                    conv.bias.copy_(torch.from_numpy(co))
                self.add_module(conv, affine=True)
                return
        chw = self.shape[1:] if self.spatial else None
        self.to_flat()
        linear = nn.Linear(s.size, s.size).double()
        with torch.no_grad():
            linear.weight.copy_(torch.diag(torch.from_numpy(s)))
            linear.bias.copy_(torch.from_numpy(o))
        self.add_module(linear, affine=True)
        if chw is not None:
            self.modules.append(nn.Unflatten(1, tuple(chw)))
            self.spatial = True
            self.last_affine = None

    # ------------------------------------------------------------------ affine layers
    def linear(self, weight: np.ndarray, bias: np.ndarray, out_shape: tuple[int, ...]) -> None:
        """Append ``y = weight @ x + bias`` (flat), folding the pending map into it."""
        if self.pending is not None:
            s, o = self.pending.scale, self.pending.offset
            bias = bias + weight @ o
            weight = weight * s[None, :]
            self.pending = None
        self.to_flat()
        self.has_zero_weights |= bool(np.any(weight == 0))
        layer = nn.Linear(weight.shape[1], weight.shape[0]).double()
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            layer.bias.copy_(torch.from_numpy(np.ascontiguousarray(bias)))
        self.add_module(layer, affine=True)
        self.shape = out_shape

    def matmul(self, node: Any, left: np.ndarray | None, right: np.ndarray | None) -> None:
        """``x @ right`` (activation as rows) or ``left @ x`` (activation as a column)."""
        shape = self.shape
        if right is not None:
            if right.ndim != 2 or shape[-1] != right.shape[0] or self.n != right.shape[0]:
                raise self.fail(node, f"cannot multiply a {shape} tensor by {right.shape}")
            out = (*shape[:-1], right.shape[1])
            self.linear(right.T.copy(), np.zeros(right.shape[1]), out)
        else:
            assert left is not None
            vector = len(shape) == 1  # W @ x with a 1-D x, as .nnet conversions write it
            ok = vector or (len(shape) >= 2 and shape[-1] == 1 and shape[-2] == left.shape[-1])
            if left.ndim != 2 or not ok or self.n != left.shape[1]:
                raise self.fail(node, f"cannot multiply {left.shape} by a {shape} tensor")
            out = (left.shape[0],) if vector else (*shape[:-2], left.shape[0], 1)
            self.linear(left.copy(), np.zeros(left.shape[0]), out)

    def gemm(self, node: Any) -> None:
        a = _attributes(node)
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        names = list(node.input)
        x_is_a = names[0] == self.current
        other = self.const(node, names[1] if x_is_a else names[0])
        trans_x, trans_o = (a.get("transA", 0), a.get("transB", 0))
        if not x_is_a:
            trans_x, trans_o = trans_o, trans_x
        other = other.T if trans_o else other
        c = self.const(node, names[2]) if len(names) > 2 and names[2] else 0.0
        if x_is_a:
            if trans_x:  # A is a column (n, 1) used as a row
                if self.shape[-1] != 1:
                    raise self.fail(node, f"transA of a {self.shape} activation")
                self.shape = (1, self.n)
            self.matmul(node, None, alpha * other)
        else:
            if trans_x:
                if self.shape[0] != 1:
                    raise self.fail(node, f"transB of a {self.shape} activation")
                self.shape = (self.n, 1)
            self.matmul(node, alpha * other, None)
        self.elementwise(1.0, beta * np.asarray(c, dtype=np.float64), node)

    # ------------------------------------------------------------------ convolutional ops
    def conv(self, node: Any) -> None:
        a = _attributes(node)
        weight = self.const(node, node.input[1])
        bias = self.const(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if weight.ndim != 4:
            raise self.fail(node, "only 2-D convolutions are supported")
        pads = _padding(self, node, a, weight.shape[2:])
        strides = tuple(a.get("strides", (1, 1)))
        dilations = tuple(a.get("dilations", (1, 1)))
        groups = int(a.get("group", 1))
        if self.pending is not None:
            cs, co = self.channel_form(self.pending.scale), self.channel_form(self.pending.offset)
            if cs is not None and co is not None and (not any(pads) or np.all(co == 0)):
                # fold (x * s + o) into the convolution: scale its input channels
                per_group = weight.shape[1]
                cs_w = cs.reshape(groups, per_group)
                co_w = co.reshape(groups, per_group)
                out_per = weight.shape[0] // groups
                scale = np.repeat(cs_w, out_per, axis=0)  # (C_out, C_in/groups)
                shift = np.repeat(co_w, out_per, axis=0)
                b = np.zeros(weight.shape[0]) if bias is None else bias.astype(np.float64)
                bias = b + (weight * shift[:, :, None, None]).sum(axis=(1, 2, 3))
                weight = weight * scale[:, :, None, None]
                self.pending = None
            else:
                self.flush()
        chw = self.to_spatial(node)
        c, h, w = chw
        if weight.shape[1] * groups != c:
            raise self.fail(node, f"a kernel of shape {weight.shape} on {c} channels")
        self.has_zero_weights |= bool(np.any(weight == 0))
        conv = nn.Conv2d(
            c,
            weight.shape[0],
            tuple(weight.shape[2:]),
            stride=strides,
            padding=pads,
            dilation=dilations,
            groups=groups,
            bias=True,
        ).double()
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float64)))
            conv.bias.copy_(torch.from_numpy(np.zeros(weight.shape[0]) if bias is None else bias))
        self.add_module(conv, affine=True)
        self.shape = (1, *_spatial_out(conv, chw))

    def batch_norm(self, node: Any) -> None:
        a = _attributes(node)
        scale, b, mean, var = (self.const(node, n) for n in node.input[1:5])
        s = scale / np.sqrt(var + float(a.get("epsilon", 1e-5)))
        o = b - mean * s
        extra = (1,) * (len(self.shape) - 2)
        self.elementwise(s.reshape(1, -1, *extra), o.reshape(1, -1, *extra), node)

    def pool(self, node: Any) -> None:
        a = _attributes(node)
        self.flush()
        chw = self.to_spatial(node)
        if node.op_type == "GlobalAveragePool":
            module: nn.Module = nn.AvgPool2d(tuple(chw[1:]))
        else:
            kernel = tuple(a["kernel_shape"])
            pads = _padding(self, node, a, kernel)
            strides = tuple(a.get("strides", (1, 1)))
            ceil = bool(a.get("ceil_mode", 0))
            if node.op_type == "MaxPool":
                if len(node.output) > 1 and node.output[1]:
                    raise self.fail(node, "the indices output of MaxPool is not supported")
                module = nn.MaxPool2d(
                    kernel,
                    strides,
                    pads,
                    dilation=tuple(a.get("dilations", (1, 1))),
                    ceil_mode=ceil,
                )
            else:
                module = nn.AvgPool2d(
                    kernel,
                    strides,
                    pads,
                    ceil_mode=ceil,
                    count_include_pad=bool(a.get("count_include_pad", 0)),
                )
        self.add_module(module, affine=False)
        self.shape = (1, *_spatial_out(module, chw))

    # ------------------------------------------------------------------ shapes
    def reshape(self, node: Any, shape: tuple[int, ...]) -> None:
        if int(np.prod(shape, dtype=np.int64)) != self.n:
            raise self.fail(node, f"cannot reshape {self.shape} to {shape}")
        self.shape = tuple(int(s) for s in shape)


def _padding(builder: _Builder, node: Any, a: dict, kernel: Any) -> tuple[int, int]:
    auto = a.get("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "VALID"):
        raise builder.fail(node, f"auto_pad={auto} is not supported (give explicit pads)")
    pads = tuple(a.get("pads", (0, 0, 0, 0))) if auto == "NOTSET" else (0, 0, 0, 0)
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        raise builder.fail(node, f"asymmetric pads {pads} are not supported")
    return int(pads[0]), int(pads[1])


def _spatial_out(module: nn.Module, chw: tuple[int, int, int]) -> tuple[int, ...]:
    with torch.no_grad():
        probe = torch.zeros(1, *chw, dtype=torch.float64)
        return tuple(module(probe).shape[1:])


def _fold_constant(builder: _Builder, node: Any) -> bool:
    """Evaluate a node whose inputs are all constants (or the activation's shape)."""
    op, a = node.op_type, _attributes(node)
    ins = [n for n in node.input]
    if op == "Shape" and ins[0] == builder.current:
        value = np.array(builder.shape, dtype=np.int64)
    elif op == "Constant":
        keys = [
            k for k in ("value", "value_float", "value_floats", "value_int", "value_ints") if k in a
        ]
        if not keys:
            raise builder.fail(node, f"only numeric constants are supported, got {sorted(a)}")
        value = np.asarray(a[keys[0]])
    elif not all(n in builder.constants for n in ins if n):
        return False
    else:
        args = [builder.constants[n] for n in ins if n]
        if op == "Shape":
            value = np.array(args[0].shape, dtype=np.int64)
        elif op == "Gather":
            value = np.take(args[0], args[1].astype(np.int64), axis=int(a.get("axis", 0)))
        elif op == "Concat":
            value = np.concatenate([np.atleast_1d(x) for x in args], axis=int(a["axis"]))
        elif op == "Cast":
            onnx, _ = _onnx()
            value = args[0].astype(onnx.helper.tensor_dtype_to_np_dtype(int(a["to"])))
        elif op == "Unsqueeze":
            axes = a.get("axes", args[1] if len(args) > 1 else ())
            value = np.expand_dims(args[0], tuple(int(x) for x in axes))
        elif op == "Squeeze":
            axes = a.get("axes", args[1] if len(args) > 1 else None)
            value = np.squeeze(args[0], None if axes is None else tuple(int(x) for x in axes))
        elif op == "Reshape":
            value = args[0].reshape(_target_shape(args[0].shape, args[1], a))
        elif op == "Identity":
            value = args[0]
        elif op in ("Add", "Sub", "Mul", "Div"):
            fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
            value = fn(args[0], args[1])
        else:
            return False
    value = np.asarray(value)
    builder.constants[node.output[0]] = (
        value.astype(np.float64) if value.dtype.kind == "f" else value
    )
    return True


def _target_shape(shape: tuple[int, ...], target: np.ndarray, a: dict) -> tuple[int, ...]:
    out = [int(t) for t in np.asarray(target).reshape(-1)]
    if not a.get("allowzero", 0):
        out = [shape[i] if t == 0 else t for i, t in enumerate(out)]
    if -1 in out:
        known = int(np.prod([t for t in out if t != -1], dtype=np.int64))
        out[out.index(-1)] = int(np.prod(shape, dtype=np.int64)) // max(known, 1)
    return tuple(out)


def _step(builder: _Builder, node: Any) -> None:
    """Apply one node that reads the current activation."""
    op, a = node.op_type, _attributes(node)
    ins = list(node.input)
    b = builder
    if op in ("Identity", "Dropout"):
        pass
    elif op == "Relu":
        b.flush()
        b.add_module(nn.ReLU(), affine=False)
    elif op == "Flatten":
        axis = int(a.get("axis", 1))
        axis = axis + len(b.shape) if axis < 0 else axis
        b.reshape(node, (int(np.prod(b.shape[:axis])), int(np.prod(b.shape[axis:]))))
    elif op == "Reshape":
        b.reshape(node, _target_shape(b.shape, b.const(node, ins[1]), a))
    elif op in ("Squeeze", "Unsqueeze"):
        axes = a.get("axes", b.constants.get(ins[1]) if len(ins) > 1 else None)
        probe = np.empty(b.shape, dtype=np.int8)
        if op == "Squeeze":
            ax = None if axes is None else tuple(int(x) for x in np.ravel(axes))
            b.reshape(node, np.squeeze(probe, ax).shape)
        else:
            b.reshape(node, np.expand_dims(probe, tuple(int(x) for x in np.ravel(axes))).shape)
    elif op == "Transpose":
        perm = a.get("perm", list(range(len(b.shape)))[::-1])
        moved = [p for p in perm if b.shape[p] != 1]
        if moved != sorted(moved):
            raise b.fail(node, "a Transpose that reorders the elements is not supported")
        b.reshape(node, tuple(b.shape[p] for p in perm))
    elif op in ("Add", "Sub", "Mul", "Div"):
        x_first = ins[0] == b.current
        c = b.const(node, ins[1] if x_first else ins[0]).astype(np.float64)
        if op == "Add":
            b.elementwise(1.0, c, node)
        elif op == "Sub" and x_first:
            b.elementwise(1.0, -c, node)
        elif op == "Sub":
            b.elementwise(-1.0, c, node)
        elif op == "Mul":
            b.elementwise(c, 0.0, node)
        elif x_first:
            b.elementwise(1.0 / c, 0.0, node)
        else:
            raise b.fail(node, "division by the network's activation is not affine")
    elif op == "MatMul":
        if ins[0] == b.current:
            b.matmul(node, None, b.const(node, ins[1]).astype(np.float64))
        else:
            b.matmul(node, b.const(node, ins[0]).astype(np.float64), None)
    elif op == "Gemm":
        b.gemm(node)
    elif op == "Conv":
        b.conv(node)
    elif op == "BatchNormalization":
        if a.get("training_mode", 0):
            raise b.fail(node, "BatchNormalization in training mode")
        b.batch_norm(node)
    elif op in ("AveragePool", "GlobalAveragePool", "MaxPool"):
        b.pool(node)
    else:
        raise b.fail(node, f"operator {op} is not supported; supported: {', '.join(SUPPORTED_OPS)}")


def load_onnx(path: str | os.PathLike, *, sparse: bool | None = None) -> nn.Sequential:
    """Read an ONNX network into a torch ``nn.Sequential`` that the whole package accepts.

    The network maps flat ``(k, n_in)`` batches to flat ``(k, n_out)`` outputs: ``n_in`` is
    the number of elements of the file's input tensor, numbered in row-major order as
    VNN-LIB's ``X_i`` are (a convolutional network starts with an ``nn.Unflatten``), and
    the outputs are numbered like ``Y_j``. Parameters are float64.

    Parameters
    ----------
    path : str or path-like
        An ``.onnx`` file, possibly gzip-compressed (``.onnx.gz``).
    sparse : bool, optional
        Return a :class:`~gurobi_sparse_surrogate.SparseSequential` (which
        ``gurobi_ml.add_predictor_constr`` dispatches to this package's formulation). By
        default only when some weight is exactly zero (a pruned network).

    Returns
    -------
    torch.nn.Sequential
        In evaluation mode. Element-wise affine maps (input normalisation, batch
        normalisation, separate bias additions) are folded into the neighbouring layers.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    DatasetFormatError
        When the file is not an ONNX model.
    UnsupportedNetworkError
        For an unsupported operator (named with its node and the supported list), a graph
        that is not sequential (a node reading two computed tensors, or a tensor read by
        two nodes), several inputs or outputs, or an unsupported attribute.

    Examples
    --------
    >>> import torch, tempfile, os, warnings
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "net.onnx")
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     torch.onnx.export(net, torch.zeros(1, 3), path, dynamo=False)
    >>> loaded = load_onnx(path)
    >>> [type(m).__name__ for m in loaded]
    ['Linear', 'ReLU', 'Linear']
    >>> x = torch.rand(5, 3)
    >>> bool(torch.allclose(loaded(x.double()), net(x).double(), atol=1e-6))
    True
    """
    source = os.fspath(path)
    model = _read_model(path)
    builder = _Builder(model, source)
    readers: dict[str, int] = {}  # nodes reading a tensor, Shape nodes apart
    for node in model.graph.node:
        if node.op_type != "Shape":
            for name in node.input:
                readers[name] = readers.get(name, 0) + 1
    for node in model.graph.node:
        if builder.current not in node.input:
            if _fold_constant(builder, node):
                continue
            computed = [n for n in node.input if n and n not in builder.constants]
            if computed:
                raise builder.fail(
                    node,
                    "the graph is not sequential: the node reads "
                    f"{', '.join(repr(n) for n in computed)} instead of the previous "
                    f"layer's output {builder.current!r}",
                )
            raise builder.fail(
                node,
                f"operator {node.op_type} is not supported; supported: {', '.join(SUPPORTED_OPS)}",
            )
        if node.op_type == "Shape" and _fold_constant(builder, node):
            continue
        others = [
            n for n in node.input if n and n != builder.current and n not in builder.constants
        ]
        if others:
            raise builder.fail(
                node,
                "the graph is not sequential: the node combines the computed tensors "
                f"{builder.current!r} and {', '.join(repr(n) for n in others)}",
            )
        if readers.get(builder.current, 0) > 1:
            raise builder.fail(
                node,
                f"the graph is not sequential: the tensor {builder.current!r} is read by "
                f"{readers[builder.current]} nodes",
            )
        _step(builder, node)
        builder.current = node.output[0]
    if builder.current != builder.output:
        raise UnsupportedNetworkError(
            f"{source}: the graph is not sequential: its output {builder.output!r} is not "
            f"the end of the chain of nodes ({builder.current!r})"
        )
    builder.flush()
    builder.to_flat()
    if not any(isinstance(m, (nn.Linear, nn.Conv2d)) for m in builder.modules):
        raise UnsupportedNetworkError(f"{source}: the network has no Gemm, MatMul or Conv layer")
    use_sparse = builder.has_zero_weights if sparse is None else bool(sparse)
    container = SparseSequential if use_sparse else nn.Sequential
    network = container(*builder.modules).double()
    network.eval()
    return network
