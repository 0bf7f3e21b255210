"""Extraction done once per network state: the layers of a network embedded again and again.

A user who builds one model per query (one MILP per wrong class, a batch of models,
:class:`~gurobi_sparse_surrogate.SurrogateSwap`'s rebuilds) embeds the same network many
times. :func:`~gurobi_sparse_surrogate.network.extract_layers` copies the network to float64
and checks the layers against torch's forward pass each time, which costs more than building
the model's rows. :func:`extract_layers_cached` answers from a small cache keyed by a digest of
everything extraction reads: every module's type, name, training flag, hooks,
``extra_repr()`` and plain attributes, and the bytes of every tensor it holds (parameters,
buffers, and tensor attributes such as the masked weight of ``torch.nn.utils.prune``). Changed
weights (in place or replaced), a changed mask, a module put in training mode or a hook added
all give another key, so the cache never returns the layers of another state.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from .extraction import Layer, extract_layers

__all__ = ["clear_layers_cache", "extract_layers_cached", "network_fingerprint"]

_PLAIN = (bool, int, float, str, type(None))
_MAX_ENTRIES = 8
_entries: OrderedDict[str, list[Layer]] = OrderedDict()
_lock = threading.Lock()


def _feed_tensor(digest, tensor: torch.Tensor) -> None:
    t = tensor.detach()
    digest.update(f"t{t.dtype}{tuple(t.shape)}{t.device.type};".encode())
    if t.is_floating_point() or t.dtype in (torch.bool, torch.int64, torch.int32, torch.uint8):
        data = t.cpu().contiguous()
        if data.dtype == torch.bfloat16:
            data = data.float()
        digest.update(np.ascontiguousarray(data.numpy()).tobytes())
    else:
        digest.update(repr(t.tolist()).encode())


def _hook_ids(module: nn.Module) -> list[str]:
    ids = []
    for attr in sorted(vars(module)):
        if "hook" in attr and isinstance(getattr(module, attr), dict):
            hooks = getattr(module, attr)
            ids.append(f"{attr}:{[(k, id(v)) for k, v in hooks.items()]}")
    return ids


def network_fingerprint(network: nn.Module) -> str:
    """A digest of everything :func:`~gurobi_sparse_surrogate.network.extract_layers` reads.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    >>> before = network_fingerprint(net)
    >>> before == network_fingerprint(net)
    True
    >>> with torch.no_grad():
    ...     net[0].weight.data[0, 0] += 1.0  # in place, through .data: seen all the same
    >>> before == network_fingerprint(net)
    False
    """
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{type(network).__module__}.{type(network).__qualname__};".encode())
    for name, module in network.named_modules(remove_duplicate=False):
        digest.update(f"m{name}:{type(module).__module__}.{type(module).__qualname__}".encode())
        digest.update(f"{module.training};{module.extra_repr()};".encode())
        digest.update(repr(_hook_ids(module)).encode())
        for attr, value in sorted(vars(module).items()):
            if attr in ("_parameters", "_buffers"):
                for key, tensor in sorted(value.items()):
                    digest.update(f"{attr}.{key};".encode())
                    if tensor is not None:
                        _feed_tensor(digest, tensor)
            elif isinstance(value, torch.Tensor):
                digest.update(f"a.{attr};".encode())
                _feed_tensor(digest, value)
            elif isinstance(value, _PLAIN) or (
                isinstance(value, tuple) and all(isinstance(v, _PLAIN) for v in value)
            ):
                digest.update(f"p.{attr}={value!r};".encode())
    # global module hooks change every module's forward
    for hooks in (
        getattr(nn.modules.module, "_global_forward_hooks", {}),
        getattr(nn.modules.module, "_global_forward_pre_hooks", {}),
    ):
        digest.update(repr([(k, id(v)) for k, v in hooks.items()]).encode())
    return digest.hexdigest()


def _frozen(layer: Layer) -> Layer:
    """``layer`` with read-only arrays: a caller that writes to a cached layer fails there,
    instead of changing every later embedding of the same network. The weight's indices are
    sorted first (scipy sorts them in place when an operation needs them sorted)."""
    layer.weight.sum_duplicates()  # sorts the indices too
    for array in (layer.bias, layer.weight.data, layer.weight.indices, layer.weight.indptr):
        array.flags.writeable = False
    if layer.windows is not None:
        layer.windows.flags.writeable = False
    return layer


def extract_layers_cached(network: nn.Module) -> list[Layer]:
    """:func:`~gurobi_sparse_surrogate.network.extract_layers`, extracted once per network
    state (the last few states are kept; see the module docstring).

    Returns a new list of the cached (frozen) layers; callers must not modify their arrays.
    Errors are not cached: a network that fails extraction fails again, with the same error.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    >>> first, again = extract_layers_cached(net), extract_layers_cached(net)
    >>> first is again, all(a is b for a, b in zip(first, again))
    (False, True)
    """
    if not isinstance(network, nn.Module):
        return extract_layers(network)  # the same error as without the cache
    key = network_fingerprint(network)
    with _lock:
        found = _entries.get(key)
        if found is not None:
            _entries.move_to_end(key)
            return list(found)
    layers = [_frozen(layer) for layer in extract_layers(network)]
    with _lock:
        _entries[key] = list(layers)
        _entries.move_to_end(key)
        while len(_entries) > _MAX_ENTRIES:
            _entries.popitem(last=False)
    return list(layers)


def clear_layers_cache() -> None:
    """Forget every cached extraction."""
    with _lock:
        _entries.clear()
