"""Extraction of a PyTorch ``nn.Sequential`` into framework-neutral sparse layers.

This is the only module of the embedding that knows about torch modules: everything downstream
(bounds, formulation, predictor) works on :class:`Layer` objects, which hold a
``scipy.sparse`` weight matrix with no stored zeros, a bias vector and whether a ReLU follows.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..exceptions import NonFiniteWeightError, ShapeMismatchError, UnsupportedNetworkError

#: Modules that are the identity on a batch of flat inputs in evaluation mode.
NO_OP_MODULES: tuple[type[nn.Module], ...] = (nn.Identity, nn.Dropout, nn.Flatten)
#: Every module type that :func:`extract_layers` accepts.
SUPPORTED_MODULES: tuple[type[nn.Module], ...] = (nn.Linear, nn.ReLU, *NO_OP_MODULES)


@dataclass(frozen=True, eq=False)
class Layer:
    """One affine map, optionally followed by a ReLU.

    Attributes
    ----------
    weight : scipy.sparse.csr_array
        Shape ``(n_out, n_in)``, float64, with no explicitly stored zeros.
    bias : numpy.ndarray
        Shape ``(n_out,)``, float64.
    relu : bool
        Whether a ReLU is applied to the affine map's output.
    name : str
        A readable name such as ``"layer 0 (Linear 784->64)"``.
    """

    weight: sp.csr_array
    bias: np.ndarray
    relu: bool
    name: str

    @property
    def n_in(self) -> int:
        """Number of inputs of the affine map."""
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        """Number of neurons of the layer."""
        return self.weight.shape[0]

    @property
    def nnz(self) -> int:
        """Number of nonzero weights."""
        return self.weight.nnz


def _flat_modules(network: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Yield the leaf modules of a (possibly nested) ``nn.Sequential`` with dotted names."""
    for name, module in network.named_children():
        if isinstance(module, nn.Sequential):
            for sub_name, sub in _flat_modules(module):
                yield f"{name}.{sub_name}", sub
        else:
            yield name, module


def effective_parameter(module: nn.Module, name: str) -> torch.Tensor | None:
    """Return the parameter ``name`` of ``module`` as the forward pass uses it.

    For a module pruned with :mod:`torch.nn.utils.prune` the effective tensor is
    ``<name>_orig * <name>_mask``; it is recomputed here rather than read from the attribute
    the pruning hook caches, which is stale until the next forward pass.
    """
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


def extract_layers(network: nn.Module) -> list[Layer]:
    """Turn an ``nn.Sequential`` of Linear and ReLU modules into sparse layers.

    ``Flatten``, ``Identity`` and ``Dropout`` are no-ops (evaluation mode). Weights are read
    as float64 on the CPU, with prune masks applied; zero weights are not stored.

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
        For a module type that is not supported, a ReLU before the first Linear layer, or a
        network without any Linear layer.
    ShapeMismatchError
        When consecutive Linear layers do not conform.
    NonFiniteWeightError
        When a weight or a bias is NaN or infinite.
    """
    if not isinstance(network, nn.Sequential):
        raise UnsupportedNetworkError(
            f"expected a torch.nn.Sequential, got {type(network).__name__}"
        )
    layers: list[Layer] = []
    for name, module in _flat_modules(network):
        if isinstance(module, nn.Linear):
            weight = effective_parameter(module, "weight")
            bias = effective_parameter(module, "bias")
            w = _to_float64(weight)
            b = np.zeros(w.shape[0]) if bias is None else _to_float64(bias).reshape(-1)
            label = f"layer {len(layers)} (module {name}: Linear {w.shape[1]}->{w.shape[0]})"
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                bad = int((~np.isfinite(w)).sum() + (~np.isfinite(b)).sum())
                raise NonFiniteWeightError(f"{label} has {bad} NaN or infinite weights or biases")
            if layers and layers[-1].n_out != w.shape[1]:
                raise ShapeMismatchError(
                    f"{label} expects {w.shape[1]} inputs but the previous Linear layer "
                    f"has {layers[-1].n_out} outputs"
                )
            matrix = sp.csr_array(w)
            matrix.eliminate_zeros()
            layers.append(Layer(matrix, b, False, label))
        elif isinstance(module, nn.ReLU):
            if not layers:
                raise _unsupported(name, module, "a ReLU before the first Linear layer")
            last = layers[-1]
            layers[-1] = Layer(last.weight, last.bias, True, last.name)
        elif isinstance(module, nn.Flatten):
            if module.start_dim not in (1, -1) or module.end_dim != -1:
                raise _unsupported(name, module, "only Flatten(start_dim=1) is a no-op here")
        elif isinstance(module, NO_OP_MODULES):
            continue
        else:
            raise _unsupported(name, module)
    if not layers:
        raise UnsupportedNetworkError("the network has no nn.Linear layer to embed")
    return layers


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
        first = next((m for m in self.model.modules() if isinstance(m, nn.Linear)), None)
        self.n_inputs = None if first is None else first.in_features

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
        z = (layer.weight @ h.T).T + layer.bias
        values.append(z)
        h = np.maximum(z, 0.0) if layer.relu else z
    return values
