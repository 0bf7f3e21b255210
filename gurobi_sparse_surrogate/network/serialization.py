"""Saving and loading networks as plain architecture data plus a state_dict.

Files load with ``torch.load(..., weights_only=True)``: no pickled code is ever executed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from ..exceptions import DatasetFormatError, UnsupportedNetworkError
from .pruning import SparseSequential

__all__ = ["load_network", "save_network"]


_FORMAT = "gurobi_sparse_surrogate.network"
#: Version of the file format written by :func:`save_network`.
FORMAT_VERSION = 1
_CONTAINERS: dict[str, type[nn.Sequential]] = {
    "Sequential": nn.Sequential,
    "SparseSequential": SparseSequential,
}
#: Leaf modules by class name, with the constructor arguments that rebuild them (read back
#: from the module's attributes of the same name).
_LEAVES: dict[str, tuple[str, ...]] = {
    "Linear": ("in_features", "out_features", "bias"),
    "Conv2d": (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
        "bias",
        "padding_mode",
    ),
    "AvgPool2d": (
        "kernel_size",
        "stride",
        "padding",
        "ceil_mode",
        "count_include_pad",
        "divisor_override",
    ),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
    "BatchNorm1d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "BatchNorm2d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "ReLU": (),
    "Identity": (),
    "Dropout": ("p",),
    "Dropout1d": ("p",),
    "Dropout2d": ("p",),
    "Flatten": ("start_dim", "end_dim"),
    "Unflatten": ("dim", "unflattened_size"),
}
_SUPPORTED = ", ".join((*_CONTAINERS, *_LEAVES))


def _unsupported(kind: str, where: str) -> UnsupportedNetworkError:
    return UnsupportedNetworkError(
        f"cannot {where} a network with a {kind} module; supported modules: {_SUPPORTED}"
    )


def _plain(value: Any) -> Any:
    """A constructor argument as plain data (tuples as lists)."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _argument(value: Any) -> Any:
    """Inverse of :func:`_plain` (sizes and strides as tuples, as torch stores them)."""
    return tuple(_argument(v) for v in value) if isinstance(value, list) else value


def _describe(module: nn.Module, path: str) -> dict[str, Any]:
    """Plain-data description of ``module`` (recursing into Sequential containers)."""
    pruned = sorted(
        hook._tensor_name
        for hook in module._forward_pre_hooks.values()
        if isinstance(hook, prune.BasePruningMethod)
    )
    if isinstance(module, nn.Sequential):
        kind = type(module).__name__
        if kind not in _CONTAINERS:  # a subclass of Sequential behaves as Sequential
            kind = "SparseSequential" if isinstance(module, SparseSequential) else "Sequential"
        # _modules, not named_children(): a module used at several places is described at
        # each of them (the state_dict holds its weights under every place)
        children = [
            [name, _describe(child, f"{path}.{name}")]
            for name, child in module._modules.items()
            if child is not None
        ]
        return {"type": kind, "children": children}
    kind = type(module).__name__
    if kind not in _LEAVES or type(module) is not getattr(nn, kind):  # subclasses may differ
        raise _unsupported(f"{kind} (at {path.lstrip('.')})", "save")
    spec: dict[str, Any] = {"type": kind}
    for name in _LEAVES[kind]:
        if name == "bias":  # a pruned bias lives in bias_orig
            spec[name] = module.bias is not None or hasattr(module, "bias_orig")
        else:
            spec[name] = _plain(getattr(module, name))
    spec["pruned"] = pruned
    return spec


def _build(spec: Any, path: str) -> nn.Module:
    """Inverse of :func:`_describe`."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise DatasetFormatError(f"malformed architecture entry at {path or 'top level'}: {spec!r}")
    kind = spec["type"]
    try:
        if kind in _CONTAINERS:
            container = _CONTAINERS[kind]()
            for name, child in spec["children"]:
                container.add_module(str(name), _build(child, f"{path}.{name}"))
            return container
        if kind not in _LEAVES:
            raise _unsupported(f"{kind} (at {path.lstrip('.')})", "load")
        arguments = {name: _argument(spec[name]) for name in _LEAVES[kind]}
        module = getattr(nn, kind)(**arguments)
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, (UnsupportedNetworkError, DatasetFormatError)):
            raise  # already names the entry
        problem = f"missing {error}" if isinstance(error, KeyError) else str(error)
        raise DatasetFormatError(
            f"malformed {kind} entry at {path.lstrip('.')}: {problem}"
        ) from error
    for name in spec.get("pruned", []):
        prune.identity(module, name)  # creates <name>_orig and <name>_mask, filled by the state
    return module


def save_network(network: nn.Module, path: str | os.PathLike) -> None:
    """Save a network's architecture (as plain data) and its ``state_dict`` in one file.

    Supported are (nested) ``nn.Sequential`` / :class:`SparseSequential` containers of the
    modules the package embeds: ``Linear``, ``Conv2d``, ``AvgPool2d``, ``MaxPool2d``,
    ``BatchNorm1d``, ``BatchNorm2d``, ``ReLU``, ``Identity``, ``Dropout`` (also 1d and 2d),
    ``Flatten`` and ``Unflatten``. Batch-norm running statistics are part of the state. Modules
    pruned with :mod:`torch.nn.utils.prune` keep their masks: they are pruned again on loading.

    Parameters
    ----------
    network : torch.nn.Module
        The network; it is not modified.
    path : str or os.PathLike
        The file to write (conventionally ``*.pt``).

    Raises
    ------
    UnsupportedNetworkError
        If the network is not a Sequential or contains another module type (named).

    Examples
    --------
    >>> import tempfile, os
    >>> from gurobi_sparse_surrogate.datasets import make_mlp
    >>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
    >>> save_network(make_mlp(4, (8,), 2), path)
    >>> load_network(path)[0]
    Linear(in_features=4, out_features=8, bias=True)
    """
    if not isinstance(network, nn.Sequential):
        raise UnsupportedNetworkError(
            f"save_network takes an nn.Sequential, got {type(network).__name__}"
        )
    payload = {
        "format": _FORMAT,
        "version": FORMAT_VERSION,
        "architecture": _describe(network, ""),
        "state_dict": {
            key: value.detach().cpu().clone() for key, value in network.state_dict().items()
        },
    }
    torch.save(payload, Path(path))


def load_network(path: str | os.PathLike) -> nn.Sequential:
    """Load a network written by :func:`save_network` (safely: ``weights_only=True``).

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    torch.nn.Sequential
        The network (a :class:`SparseSequential` if one was saved) in evaluation mode, with the
        saved parameter dtype (the widest one if they were mixed) and prune masks.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DatasetFormatError
        If the file was not written by :func:`save_network`.
    UnsupportedNetworkError
        If the architecture names a module type that is not supported.

    Examples
    --------
    >>> import tempfile, os
    >>> from gurobi_sparse_surrogate.datasets import random_relu_network
    >>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
    >>> net = random_relu_network(10, depth=2, width=5)
    >>> save_network(net, path)
    >>> bool(torch.equal(load_network(path)(torch.ones(1, 10)), net(torch.ones(1, 10))))
    True
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"network file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors of all kinds
        raise DatasetFormatError(
            f"{path} is not a network file of save_network: {error}"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise DatasetFormatError(f"{path} is not a network file written by save_network")
    if payload.get("version") != FORMAT_VERSION:
        raise DatasetFormatError(
            f"{path} has network file version {payload.get('version')}, "
            f"this version of the package reads version {FORMAT_VERSION}"
        )
    network = _build(payload["architecture"], "")
    if not isinstance(network, nn.Sequential):
        raise DatasetFormatError(f"{path} does not hold a Sequential network")
    state = payload["state_dict"]
    if not isinstance(state, dict):
        raise DatasetFormatError(f"{path} holds no state_dict")
    dtypes = {value.dtype for value in state.values() if value.is_floating_point()}
    if dtypes:  # keep the saved precision; the widest if it was mixed (no value is rounded)
        network.to(max(dtypes, key=lambda dtype: torch.finfo(dtype).bits))
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise DatasetFormatError(
            f"{path}: weights do not match the architecture: {error}"
        ) from error
    for module in network.modules():  # refresh what prune hooks cache (stale until a forward)
        for hook in module._forward_pre_hooks.values():  # _build adds prune's hooks only
            setattr(module, hook._tensor_name, hook.apply_mask(module))
    return network.eval()
