"""A cache of computed bounds, keyed by what the bounds depend on.

Hidden-layer bounds depend only on the network's effective weights, the input domain (the
input variables' bounds and the :class:`~gurobi_sparse_surrogate.domains.Domain`), the
bounding method and its options. Embedding the same network over the same inputs again (one
model per wrong class, a batch of models, :class:`~gurobi_sparse_surrogate.SurrogateSwap`'s
rebuilds, the benchmark's methods) then costs a hash instead of a bounding pass.

The key is a digest of the float64 arrays themselves (weights with prune masks applied, as
:func:`~gurobi_sparse_surrogate.network.extract_layers` returns them, biases, activations,
input bounds, the domain's parameters) plus the method and every option, so changed weights,
changed input bounds, a pruned copy or another network with the same shapes all miss. The
options are validated (:class:`~gurobi_sparse_surrogate.bounds.BoundOptions`) before the
cache is consulted, so a misspelled option fails here as it does without the cache. Entries
are copied in and out: a caller that mutates the bounds it was given never changes the cache.

The module-level :data:`BOUNDS_CACHE` is what
:func:`~gurobi_sparse_surrogate.add_sparse_predictor_constr` uses (``bound_cache=False``
bypasses it); ``BOUNDS_CACHE.clear()`` empties it and ``BOUNDS_CACHE.enabled = False`` turns
it off for the whole process. Explicit reuse stays available and costs nothing: pass
``bounds=pc.bounds`` (any :class:`~gurobi_sparse_surrogate.NetworkBounds`) to embed with
bounds computed earlier.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..network.extraction import Layer
from .options import BoundOptions
from .problem import NetworkBounds, compute_bounds

logger = logging.getLogger(__name__)

__all__ = ["BOUNDS_CACHE", "BoundsCache", "bounds_key", "cached_compute_bounds"]


class _Unhashable(Exception):
    pass


def _feed(digest, value: Any) -> None:
    """Feed ``value`` to ``digest`` with its type, shape and bytes (unambiguous)."""
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        digest.update(f"nd{arr.dtype.str}{arr.shape};".encode())
        digest.update(arr.tobytes())
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__}{len(value)}[".encode())
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
    elif isinstance(value, dict):
        digest.update(f"dict{len(value)}{{".encode())
        for k in sorted(value, key=repr):
            _feed(digest, k)
            _feed(digest, value[k])
        digest.update(b"}")
    elif hasattr(value, "tocsr"):  # scipy.sparse
        csr = value.tocsr()
        digest.update(f"csr{csr.shape};".encode())
        for part in (csr.indptr, csr.indices, csr.data):
            _feed(digest, np.asarray(part))
    elif hasattr(value, "cache_key"):
        _feed(digest, value.cache_key())
    elif _is_domain(value):
        _feed(digest, _domain_parameters(value))
    else:
        raise _Unhashable(type(value).__name__)


def _is_domain(value: Any) -> bool:
    from ..domains import Domain

    return isinstance(value, Domain)


def _domain_parameters(domain: Any) -> tuple:
    """Everything that defines a domain: its class and every attribute (a domain holding a
    value that cannot be hashed is not cached, rather than cached without it)."""
    kind = type(domain)
    params: list[Any] = [f"{kind.__module__}.{kind.__qualname__}"]
    for name, value in sorted(vars(domain).items()):
        params += [name, value]
    return tuple(params)


def domain_fingerprint(domain: Any) -> str | None:
    """A digest of what defines ``domain`` (its class and parameters, or its ``cache_key``),
    as the cache key reads it; None when a part of it cannot be hashed."""
    digest = hashlib.blake2b(digest_size=20)
    try:
        _feed(digest, domain)
    except _Unhashable:
        return None
    return digest.hexdigest()


def layers_fingerprint(layers: Sequence[Layer]) -> str:
    """A digest of the layers' effective weights, biases and activations.

    Examples
    --------
    >>> import torch
    >>> from gurobi_sparse_surrogate.network import extract_layers
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> a = extract_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    >>> b = extract_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    >>> layers_fingerprint(a) == layers_fingerprint(a), layers_fingerprint(a) == layers_fingerprint(b)
    (True, False)
    """
    digest = hashlib.blake2b(digest_size=20)
    for layer in layers:
        _feed(digest, (type(layer).__qualname__, layer.weight, layer.bias, bool(layer.relu)))
        for name in ("kind", "windows", "input_shape", "output_shape"):
            _feed(digest, getattr(layer, name))
    return digest.hexdigest()


def bounds_key(
    layers: Sequence[Layer],
    input_lower: np.ndarray,
    input_upper: np.ndarray,
    method: str,
    domain: Any = None,
    options: BoundOptions | Mapping[str, Any] | None = None,
) -> str | None:
    """The cache key of a bounding pass, or None when a part of it cannot be hashed."""
    explicit = BoundOptions.from_value(options).explicit()
    digest = hashlib.blake2b(digest_size=20)
    try:
        digest.update(layers_fingerprint(layers).encode())
        _feed(digest, np.atleast_2d(np.asarray(input_lower, dtype=np.float64)))
        _feed(digest, np.atleast_2d(np.asarray(input_upper, dtype=np.float64)))
        _feed(digest, method)
        _feed(digest, domain)
        _feed(digest, explicit)
    except _Unhashable:
        return None
    return digest.hexdigest()


def _copy_bounds(bounds: NetworkBounds) -> NetworkBounds:
    return copy.deepcopy(bounds)


class BoundsCache:
    """A bounded (least recently used) map from bounding passes to their bounds.

    Parameters
    ----------
    max_entries : int
        How many bounding results to keep (default 32).
    enabled : bool
        When False, :meth:`compute` always computes and stores nothing.

    Attributes
    ----------
    hits, misses : int
        Counters since the last :meth:`clear`.

    Examples
    --------
    >>> import torch, numpy as np
    >>> from gurobi_sparse_surrogate.network import extract_layers
    >>> layers = extract_layers(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU()))
    >>> cache = BoundsCache(max_entries=4)
    >>> first = cache.compute(layers, np.zeros(2), np.ones(2), "linear")
    >>> again = cache.compute(layers, np.zeros(2), np.ones(2), "linear")
    >>> cache.hits, cache.misses, bool(np.array_equal(first.lower[0], again.lower[0]))
    (1, 1, True)
    """

    def __init__(self, max_entries: int = 32, enabled: bool = True) -> None:
        if int(max_entries) < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self.max_entries = int(max_entries)
        self.enabled = bool(enabled)
        self._entries: OrderedDict[str, NetworkBounds] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry and reset the counters."""
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def get(self, key: str) -> NetworkBounds | None:
        """A copy of the bounds stored under ``key``, or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return _copy_bounds(found)

    def put(self, key: str, bounds: NetworkBounds) -> None:
        """Store a copy of ``bounds`` under ``key`` (evicting the least recently used)."""
        if self.max_entries == 0:
            return
        with self._lock:
            self._entries[key] = _copy_bounds(bounds)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def compute(
        self,
        layers: Sequence[Layer],
        input_lower: np.ndarray,
        input_upper: np.ndarray,
        method: str = "interval",
        domain: Any = None,
        verbose: bool = False,
        *,
        options: BoundOptions | Mapping[str, Any] | None = None,
        **option_values: Any,
    ) -> NetworkBounds:
        """:func:`~gurobi_sparse_surrogate.bounds.compute_bounds`, answered from the cache
        when the same pass was computed before.

        A hit returns a copy with ``cache_hit`` True: its ``seconds`` and report rows' seconds
        are 0 (nothing was computed, ``saved_seconds`` says what it saved), and its notes end
        with ``{"kind": "cache", "reason": "hit", "saved_seconds": ...}``.
        """
        settings = BoundOptions.from_value(options, **option_values)
        key = None
        if self.enabled:
            key = bounds_key(layers, input_lower, input_upper, method, domain, settings)
        if key is not None:
            found = self.get(key)
            if found is not None:
                self.hits += 1
                found.saved_seconds = found.seconds
                found.cache_hit = True
                logger.info(
                    "bounds %s: reused from the cache (%.3f s saved)", method, found.saved_seconds
                )
                return found
            self.misses += 1
        bounds = compute_bounds(
            layers, input_lower, input_upper, method, domain, verbose, options=settings
        )
        if key is not None:
            self.put(key, bounds)
        return bounds


#: The process-wide cache used by :func:`~gurobi_sparse_surrogate.add_sparse_predictor_constr`.
BOUNDS_CACHE = BoundsCache()


def cached_compute_bounds(
    layers: Sequence[Layer],
    input_lower: np.ndarray,
    input_upper: np.ndarray,
    method: str = "interval",
    domain: Any = None,
    verbose: bool = False,
    *,
    cache: bool | BoundsCache = True,
    options: BoundOptions | Mapping[str, Any] | None = None,
    **option_values: Any,
) -> NetworkBounds:
    """:func:`~gurobi_sparse_surrogate.bounds.compute_bounds` through a cache.

    Parameters
    ----------
    cache : bool or BoundsCache
        True: the process-wide :data:`BOUNDS_CACHE`; False: compute without caching; or a
        cache of your own.
    """
    if cache is False:
        return compute_bounds(
            layers,
            input_lower,
            input_upper,
            method,
            domain,
            verbose,
            options=options,
            **option_values,
        )
    store = BOUNDS_CACHE if cache is True else cache
    if not isinstance(store, BoundsCache):
        raise TypeError(f"cache must be a bool or a BoundsCache, got {type(cache).__name__}")
    return store.compute(
        layers,
        input_lower,
        input_upper,
        method,
        domain,
        verbose,
        options=options,
        **option_values,
    )
