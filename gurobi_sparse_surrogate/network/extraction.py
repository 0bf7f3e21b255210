"""Extraction of a PyTorch ``nn.Sequential`` into framework-neutral sparse layers.

This is the only module of the embedding that knows about torch modules: everything downstream
(bounds, formulation, predictor) works on :class:`Layer` objects, which hold a
``scipy.sparse`` weight matrix with no stored zeros, a bias vector and whether a ReLU follows.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..exceptions import (
    BatchNormTrainingError,
    NonFiniteWeightError,
    ShapeMismatchError,
    UnsupportedNetworkError,
)
from .convolution import (
    avg_pool2d_matrix,
    batch_norm_affine,
    conv2d_matrix,
    max_pool2d_windows,
    pair,
    window_matrix,
)
from .validation import check_layers_match, check_modules, weight_norm_parameter

#: Modules that are the identity on the flattened values in evaluation mode.
NO_OP_MODULES: tuple[type[nn.Module], ...] = (
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Flatten,
    nn.Unflatten,
)
#: Modules folded into the neighbouring affine layer (never a layer of their own when an
#: affine layer is next to them).
FOLDED_MODULES: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool2d)
#: Every module type that :func:`extract_layers` accepts.
SUPPORTED_MODULES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.ReLU,
    nn.Conv2d,
    nn.MaxPool2d,
    *FOLDED_MODULES,
    *NO_OP_MODULES,
)
#: Layer kinds: an affine map (Linear, Conv2d, folded pooling and batch norm) or a max pool.
LAYER_KINDS = ("affine", "maxpool")


@dataclass(frozen=True, eq=False)
class Layer:
    """One affine map (optionally followed by a ReLU), or one max-pooling layer.

    Attributes
    ----------
    weight : scipy.sparse.csr_array
        Shape ``(n_out, n_in)``, float64, with no explicitly stored zeros. For a max-pooling
        layer, the 0/1 matrix of window membership (row ``r`` reads the inputs of window ``r``).
    bias : numpy.ndarray
        Shape ``(n_out,)``, float64 (zeros for a max-pooling layer).
    relu : bool
        Whether a ReLU is applied to the affine map's output (always False for max pooling:
        a ReLU after a pool is moved before it, where it gives the same values).
    name : str
        A readable name such as ``"layer 0 (module 0: Linear 784->64)"``.
    kind : {"affine", "maxpool"}
        ``"maxpool"``: each output is the maximum of its window of inputs (:attr:`windows`).
    input_shape, output_shape : tuple of int
        Per-sample shapes, ``(n,)`` or ``(C, H, W)``; values are flattened in torch's order.
    windows : numpy.ndarray or None
        For a max-pooling layer, ``(n_out, window)`` input indices, ``-1`` for padding.
    kernel : tuple of int or None
        Kernel (window) size of a convolution or pooling layer, for the statistics.
    """

    weight: sp.csr_array
    bias: np.ndarray
    relu: bool
    name: str
    kind: str = "affine"
    input_shape: tuple[int, ...] = ()
    output_shape: tuple[int, ...] = ()
    windows: np.ndarray | None = None
    kernel: tuple[int, ...] | None = None

    @property
    def n_in(self) -> int:
        """Number of inputs of the layer."""
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        """Number of neurons of the layer."""
        return self.weight.shape[0]

    @property
    def nnz(self) -> int:
        """Number of nonzero weights."""
        return self.weight.nnz

    @property
    def is_maxpool(self) -> bool:
        """Whether the layer is a max pool (not an affine map)."""
        return self.kind == "maxpool"

    @property
    def channels(self) -> str:
        """``"C_in->C_out"`` for layers on images, ``""`` otherwise."""
        if len(self.input_shape) == 3 and len(self.output_shape) == 3:
            return f"{self.input_shape[0]}->{self.output_shape[0]}"
        return ""

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """Pre-activation values for ``(k, n_in)`` inputs (a numpy reference)."""
        h = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
        if self.is_maxpool:
            padded = np.concatenate([h, np.full((h.shape[0], 1), -np.inf)], axis=1)
            return padded[:, self.windows].max(axis=2)
        return (self.weight @ h.T).T + self.bias


def _flat_modules(network: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Yield the leaf modules of a (possibly nested) ``nn.Sequential`` with dotted names.

    A module used more than once is yielded at each use, as ``Sequential.forward`` calls it.
    """
    for name, module in network._modules.items():
        if module is None:
            raise UnsupportedNetworkError(
                f"module {name!r} is None: nn.Sequential cannot run it (remove it)"
            )
        if isinstance(module, nn.Sequential):
            for sub_name, sub in _flat_modules(module):
                yield f"{name}.{sub_name}", sub
        else:
            yield name, module


def effective_parameter(module: nn.Module, name: str) -> torch.Tensor | None:
    """Return the parameter ``name`` of ``module`` as the forward pass uses it.

    For a module pruned with :mod:`torch.nn.utils.prune` the effective tensor is
    ``<name>_orig * <name>_mask``; it is recomputed here rather than read from the attribute
    the pruning hook caches, which is stale until the next forward pass. The same goes for
    the old-style ``torch.nn.utils.weight_norm`` (recomputed from ``<name>_g`` and
    ``<name>_v``).
    """
    normalised = weight_norm_parameter(module, name)
    if normalised is not None:
        return normalised
    orig = getattr(module, f"{name}_orig", None)
    mask = getattr(module, f"{name}_mask", None)
    if orig is not None and mask is not None:
        return (orig * mask).detach()
    value = getattr(module, name, None)
    return None if value is None else value.detach()


def _to_float64(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(device="cpu", dtype=torch.float64).numpy().copy()


def _unsupported(name: str, module: nn.Module, reason: str = "") -> UnsupportedNetworkError:
    supported = ", ".join(t.__name__ for t in SUPPORTED_MODULES)
    extra = f" ({reason})" if reason else ""
    return UnsupportedNetworkError(
        f"module {name!r} of type {type(module).__name__} is not supported{extra}; "
        f"supported modules are: {supported} (nested nn.Sequential is flattened)"
    )


def _shape_text(shape: tuple[int, ...] | None) -> str:
    return "unknown" if shape is None else "x".join(map(str, shape))


class _Extractor:
    """The state of one pass over the modules: layers so far, the current shape, and an
    affine map (batch norm, average pooling) waiting to be folded into the next layer."""

    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.shape: tuple[int, ...] | None = None
        self.pending: dict | None = None

    # -- shapes ---------------------------------------------------------------------------

    def image_shape(self, name: str, module: nn.Module, channels: int) -> tuple[int, int, int]:
        """The current ``(C, H, W)`` shape, checked against a module reading ``channels``."""
        kind = type(module).__name__
        if self.shape is None or len(self.shape) != 3:
            have = (
                "an input of unknown shape"
                if self.shape is None
                else f"a tensor of shape {self.shape}"
            )
            raise ShapeMismatchError(
                f"module {name!r} ({kind}) reads a (C, H, W) image but gets {have}; "
                "start the network with nn.Unflatten(1, (C, H, W)) so that it reads flat "
                "inputs in torch's order, e.g. nn.Sequential(nn.Unflatten(1, (1, 14, 14)), "
                "*cnn)"
            )
        if channels is not None and self.shape[0] != channels:
            raise ShapeMismatchError(
                f"module {name!r} ({kind}) expects {channels} channels but gets a tensor of "
                f"shape {self.shape}"
            )
        return self.shape  # type: ignore[return-value]

    # -- layers ---------------------------------------------------------------------------

    def check_finite(self, label: str, *arrays: np.ndarray) -> None:
        bad = sum(int((~np.isfinite(a)).sum()) for a in arrays)
        if bad:
            raise NonFiniteWeightError(f"{label} has {bad} NaN or infinite weights or biases")

    def add_affine(self, matrix, bias, label, out_shape, kernel=None) -> None:
        """A Linear or Conv2d layer (with any pending folded map composed in front)."""
        in_shape = self.shape
        if self.pending is not None:
            pending = self.pending
            bias = matrix @ pending["bias"] + bias
            matrix = sp.csr_array(matrix @ pending["matrix"])
            in_shape = pending["input_shape"]
            label = f"{label} after {pending['label']}"
            self.pending = None
        matrix = sp.csr_array(matrix, dtype=np.float64)
        matrix.eliminate_zeros()
        name = f"layer {len(self.layers)} ({label})"
        self.layers.append(
            Layer(
                matrix,
                np.asarray(bias, dtype=np.float64),
                False,
                name,
                "affine",
                tuple(in_shape),
                tuple(out_shape),
                None,
                kernel,
            )
        )
        self.shape = tuple(out_shape)

    def add_folded(self, matrix, bias, label, out_shape) -> None:
        """Batch norm or average pooling: composed into a neighbouring affine map."""
        last = self.layers[-1] if self.layers else None
        if self.pending is not None:
            self.pending = {
                "matrix": sp.csr_array(matrix @ self.pending["matrix"]),
                "bias": matrix @ self.pending["bias"] + bias,
                "input_shape": self.pending["input_shape"],
                "label": f"{self.pending['label']} and {label}",
            }
        elif last is not None and last.kind == "affine" and not last.relu:
            weight = sp.csr_array(matrix @ last.weight)
            weight.eliminate_zeros()
            name = f"{last.name[:-1]}, {label})" if last.name.endswith(")") else last.name
            self.layers[-1] = replace(
                last,
                weight=weight,
                bias=matrix @ last.bias + bias,
                name=name,
                output_shape=tuple(out_shape),
            )
        else:
            self.pending = {
                "matrix": sp.csr_array(matrix),
                "bias": np.asarray(bias, dtype=np.float64),
                "input_shape": self.shape,
                "label": label,
            }
        self.shape = tuple(out_shape)

    def flush(self) -> None:
        """Emit a pending folded map as an affine layer of its own (nothing to fold into)."""
        if self.pending is None:
            return
        pending, self.pending = self.pending, None
        matrix = sp.csr_array(pending["matrix"], dtype=np.float64)
        matrix.eliminate_zeros()
        self.layers.append(
            Layer(
                matrix,
                np.asarray(pending["bias"], dtype=np.float64),
                False,
                f"layer {len(self.layers)} ({pending['label']})",
                "affine",
                tuple(pending["input_shape"]),
                tuple(self.shape),
            )
        )

    # -- modules --------------------------------------------------------------------------

    def linear(self, name: str, module: nn.Linear) -> None:
        w = _to_float64(effective_parameter(module, "weight"))
        bias = effective_parameter(module, "bias")
        b = np.zeros(w.shape[0]) if bias is None else _to_float64(bias).reshape(-1)
        label = f"module {name}: Linear {w.shape[1]}->{w.shape[0]}"
        self.check_finite(f"layer {len(self.layers)} ({label})", w, b)
        if self.shape is not None and len(self.shape) != 1:
            raise ShapeMismatchError(
                f"module {name!r} (Linear) gets a tensor of shape {self.shape} and would act "
                "on its last axis only; add nn.Flatten() before it"
            )
        if self.shape is not None and self.shape[0] != w.shape[1]:
            raise ShapeMismatchError(
                f"layer {len(self.layers)} ({label}) expects {w.shape[1]} inputs but the "
                f"previous layer has {self.shape[0]} outputs"
            )
        if self.shape is None:
            self.shape = (w.shape[1],)
        self.add_affine(sp.csr_array(w), b, label, (w.shape[0],))

    def conv2d(self, name: str, module: nn.Conv2d) -> None:
        shape = self.image_shape(name, module, module.in_channels)
        w = _to_float64(effective_parameter(module, "weight"))
        bias = effective_parameter(module, "bias")
        b = np.zeros(w.shape[0]) if bias is None else _to_float64(bias).reshape(-1)
        kernel = tuple(int(k) for k in module.kernel_size)
        self.check_finite(f"module {name!r} (Conv2d)", w, b)
        try:
            matrix, out_shape = conv2d_matrix(
                w,
                shape,
                module.stride,
                module.padding,
                module.dilation,
                module.groups,
                module.padding_mode,
            )
        except ValueError as error:
            raise ShapeMismatchError(f"module {name!r} (Conv2d): {error}") from None
        label = (
            f"module {name}: Conv2d {_shape_text(shape)}->{_shape_text(out_shape)}, "
            f"kernel {kernel[0]}x{kernel[1]}"
        )
        bias_full = np.repeat(b, out_shape[1] * out_shape[2])
        self.add_affine(matrix, bias_full, label, out_shape, kernel)

    def avg_pool(self, name: str, module: nn.AvgPool2d) -> None:
        shape = self.image_shape(name, module, None)
        try:
            matrix, out_shape = avg_pool2d_matrix(
                shape,
                module.kernel_size,
                module.stride,
                module.padding,
                module.ceil_mode,
                module.count_include_pad,
                module.divisor_override,
            )
        except ValueError as error:
            raise ShapeMismatchError(f"module {name!r} (AvgPool2d): {error}") from None
        kernel = pair(module.kernel_size)
        label = f"module {name}: AvgPool2d {kernel[0]}x{kernel[1]}"
        self.add_folded(matrix, np.zeros(matrix.shape[0]), label, out_shape)

    def batch_norm(self, name: str, module: nn.modules.batchnorm._BatchNorm) -> None:
        kind = type(module).__name__
        if module.training:
            raise BatchNormTrainingError(
                f"module {name!r} ({kind}) is in training mode, where it normalises with the "
                "statistics of each batch; call network.eval() first (evaluation mode uses "
                "the running statistics, which fold into the neighbouring affine layer)"
            )
        if module.running_mean is None or module.running_var is None:
            raise _unsupported(name, module, "track_running_stats=False has no running statistics")
        c = module.num_features
        if isinstance(module, nn.BatchNorm2d):
            shape = self.image_shape(name, module, c)
        else:
            if self.shape is None:
                self.shape = (c,)
            if len(self.shape) not in (1, 2) or self.shape[0] != c:
                raise ShapeMismatchError(
                    f"module {name!r} ({kind}) expects {c} features (shape (C,) or (C, L)) "
                    f"but gets a tensor of shape {self.shape}"
                )
            shape = self.shape
        gamma = effective_parameter(module, "weight") if module.affine else None
        beta = effective_parameter(module, "bias") if module.affine else None
        scale, shift = batch_norm_affine(
            shape,
            _to_float64(module.running_mean),
            _to_float64(module.running_var),
            float(module.eps),
            None if gamma is None else _to_float64(gamma),
            None if beta is None else _to_float64(beta),
        )
        self.check_finite(f"module {name!r} ({kind})", scale, shift)
        self.add_folded(
            sp.diags_array(scale, format="csr"), shift, f"module {name}: {kind} folded", shape
        )

    def max_pool(self, name: str, module: nn.MaxPool2d) -> None:
        if module.return_indices:
            raise _unsupported(name, module, "return_indices=True")
        shape = self.image_shape(name, module, None)
        self.flush()
        if not self.layers:
            raise _unsupported(name, module, "a MaxPool2d before the first Linear or Conv2d layer")
        try:
            windows, out_shape = max_pool2d_windows(
                shape,
                module.kernel_size,
                module.stride,
                module.padding,
                module.dilation,
                module.ceil_mode,
            )
        except ValueError as error:
            raise ShapeMismatchError(f"module {name!r} (MaxPool2d): {error}") from None
        kernel = pair(module.kernel_size)
        label = (
            f"layer {len(self.layers)} (module {name}: MaxPool2d "
            f"{_shape_text(shape)}->{_shape_text(out_shape)}, window {kernel[0]}x{kernel[1]})"
        )
        n_in = math.prod(shape)
        self.layers.append(
            Layer(
                window_matrix(windows, n_in),
                np.zeros(windows.shape[0]),
                False,
                label,
                "maxpool",
                tuple(shape),
                tuple(out_shape),
                windows,
                kernel,
            )
        )
        self.shape = out_shape

    def relu(self, name: str, module: nn.ReLU) -> None:
        self.flush()
        # max(relu(a), relu(b)) == relu(max(a, b)): a ReLU after max pooling moves before it.
        index = len(self.layers) - 1
        while index >= 0 and self.layers[index].is_maxpool:
            index -= 1
        if index < 0:
            raise _unsupported(name, module, "a ReLU before the first Linear or Conv2d layer")
        self.layers[index] = replace(self.layers[index], relu=True)

    def flatten(self, name: str, module: nn.Flatten) -> None:
        if module.start_dim not in (1, -1) or module.end_dim != -1:
            raise _unsupported(name, module, "only Flatten(start_dim=1) is a no-op here")
        if module.start_dim == 1 and self.shape is not None:
            self.shape = (math.prod(self.shape),)

    def unflatten(self, name: str, module: nn.Unflatten) -> None:
        sizes = tuple(int(s) for s in module.unflattened_size)
        if module.dim not in (1, -1) or (self.shape is not None and len(self.shape) != 1):
            raise _unsupported(
                name, module, "only Unflatten(1, sizes) of a flat tensor is supported"
            )
        if any(s < 0 for s in sizes):
            raise _unsupported(name, module, "give every size of Unflatten explicitly")
        if self.shape is not None and self.shape[0] != math.prod(sizes):
            raise ShapeMismatchError(
                f"module {name!r} (Unflatten) makes a tensor of shape {sizes} "
                f"({math.prod(sizes)} values) from {self.shape[0]} values"
            )
        self.shape = sizes


def extract_layers(network: nn.Module) -> list[Layer]:
    """Turn an ``nn.Sequential`` into sparse layers.

    ``Linear`` and ``Conv2d`` become affine layers with sparse weights; an evaluation-mode
    ``BatchNorm1d``/``BatchNorm2d`` and an ``AvgPool2d`` are folded into the previous affine
    layer (when no ReLU is between them) or into the next one; ``MaxPool2d`` becomes a
    max-pooling layer; ``Flatten``, ``Unflatten``, ``Identity`` and ``Dropout`` change no value
    (images are flattened in torch's order). Weights are read as float64 on the CPU, with prune
    masks applied; zero weights are not stored.

    A network with convolutions reads flat inputs: it starts with ``nn.Unflatten(1, (C, H, W))``,
    which gives the package (and the torch forward pass) the image shape.

    Parameters
    ----------
    network : torch.nn.Sequential
        The network. It is not modified.

    Returns
    -------
    list of Layer

    Raises
    ------
    UnsupportedNetworkError
        For a module type that is not supported (the message lists the supported ones), a
        ReLU before the first Linear or Conv2d layer, or a network without any layer to embed.
    BatchNormTrainingError
        For a batch normalization in training mode.
    ShapeMismatchError
        When consecutive layers do not conform (or a convolution has no image shape).
    NonFiniteWeightError
        When a weight or a bias is NaN or infinite.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 2, 3), nn.ReLU(),
    ...                     nn.Flatten(), nn.Linear(8, 1))
    >>> [(layer.n_in, layer.n_out, layer.relu) for layer in extract_layers(net)]
    [(16, 8, True), (8, 1, False)]
    """
    if not isinstance(network, nn.Sequential):
        raise UnsupportedNetworkError(
            f"expected a torch.nn.Sequential, got {type(network).__name__}"
        )
    check_modules(network, SUPPORTED_MODULES)
    state = _Extractor()
    for name, module in _flat_modules(network):
        if isinstance(module, nn.Linear):
            state.linear(name, module)
        elif isinstance(module, nn.Conv2d):
            state.conv2d(name, module)
        elif isinstance(module, nn.AvgPool2d):
            state.avg_pool(name, module)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            state.batch_norm(name, module)
        elif isinstance(module, nn.MaxPool2d):
            state.max_pool(name, module)
        elif isinstance(module, nn.ReLU):
            state.relu(name, module)
        elif isinstance(module, nn.Flatten):
            state.flatten(name, module)
        elif isinstance(module, nn.Unflatten):
            state.unflatten(name, module)
        elif isinstance(module, NO_OP_MODULES):
            if module.training and getattr(module, "p", 0.0) > 0:
                warnings.warn(
                    f"module {name!r} ({type(module).__name__}, p={module.p:g}) is in training "
                    "mode, where it zeroes random values; it is embedded as in evaluation mode "
                    "(the identity), as network.eval() would run it",
                    UserWarning,
                    stacklevel=3,
                )
            continue
        else:
            raise _unsupported(name, module)
    state.flush()
    if not state.layers:
        raise UnsupportedNetworkError("the network has no nn.Linear or nn.Conv2d layer to embed")
    check_layers_match(network, state.layers, network_input_size(network))
    return state.layers


def network_input_size(network: nn.Module) -> int | None:
    """Number of (flat) inputs ``network`` reads, or None when no module says it."""
    for _, module in _flat_modules(network):
        if isinstance(module, nn.Unflatten):
            return math.prod(int(s) for s in module.unflattened_size)
        if isinstance(module, nn.Linear):
            return module.in_features
        if isinstance(module, (nn.BatchNorm1d,)):
            return module.num_features
        if not isinstance(module, NO_OP_MODULES):
            return None
    return None


class Float64Network:
    """The reference forward pass: a float64, CPU, evaluation-mode copy of a network.

    Every result of this package is judged with it. The copy is made once, so the original's
    dtype, device, training flag and prune hooks are left as they are.

    Parameters
    ----------
    network : torch.nn.Module

    Examples
    --------
    >>> import torch, numpy as np
    >>> f = Float64Network(torch.nn.Sequential(torch.nn.Linear(3, 2)))
    >>> f(np.zeros(3)).shape, f(np.zeros((4, 3))).shape
    ((2,), (4, 2))
    """

    def __init__(self, network: nn.Module) -> None:
        self.model = float64_copy(network)
        self.n_inputs = network_input_size(self.model)

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs for ``(n_in,)`` or ``(k, n_in)`` inputs, with the same leading shape."""
        x = np.asarray(inputs, dtype=np.float64)
        if self.n_inputs is not None and x.shape[-1] != self.n_inputs:
            raise ShapeMismatchError(
                f"the network has {self.n_inputs} inputs, got an input of shape {x.shape}"
            )
        with torch.no_grad():
            out = self.model(torch.tensor(np.atleast_2d(x))).numpy()
        return out.reshape(-1) if x.ndim == 1 else out


def network_forward(network: nn.Module, inputs: np.ndarray) -> np.ndarray:
    """Evaluate ``network`` in float64 and evaluation mode on ``inputs`` (one-off use).

    Parameters
    ----------
    network : torch.nn.Module
    inputs : numpy.ndarray
        Shape ``(n_in,)`` or ``(k, n_in)``.

    Returns
    -------
    numpy.ndarray
        Outputs with the leading shape of ``inputs``.
    """
    return Float64Network(network)(inputs)


def clone_network(network: nn.Module) -> nn.Module:
    """A deep copy of ``network`` that also works for modules pruned with ``torch.nn.utils.prune``.

    ``copy.deepcopy`` refuses such modules: the pruning hook caches the masked weight as a
    non-leaf tensor attribute. That attribute is copied detached here (the hook recomputes it
    at the next forward pass); parameters, buffers and hooks are deep-copied as usual.

    Examples
    --------
    >>> import torch
    >>> from torch.nn.utils import prune
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    >>> _ = prune.l1_unstructured(net[0], "weight", amount=2)
    >>> _ = net(torch.ones(1, 3)).sum().backward()
    >>> copy = clone_network(net)
    >>> bool((copy[0].weight == net[0].weight).all())
    True
    """
    memo: dict[int, object] = {}
    for module in network.modules():
        for value in vars(module).values():
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(network, memo)


def float64_copy(network: nn.Module) -> nn.Module:
    """A float64, CPU, evaluation-mode deep copy of ``network`` (prune hooks included)."""
    model = clone_network(network).to(device="cpu", dtype=torch.float64)
    model.eval()
    return model


def layers_forward(layers: list[Layer], inputs: np.ndarray) -> list[np.ndarray]:
    """Pre-activation values of every layer for a batch of inputs (a numpy reference).

    Parameters
    ----------
    layers : list of Layer
    inputs : numpy.ndarray
        Shape ``(k, n_in)``.

    Returns
    -------
    list of numpy.ndarray
        One ``(k, n_out)`` array per layer, before its ReLU.
    """
    h = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
    values = []
    for layer in layers:
        z = layer.forward(h)
        values.append(z)
        h = np.maximum(z, 0.0) if layer.relu else z
    return values
