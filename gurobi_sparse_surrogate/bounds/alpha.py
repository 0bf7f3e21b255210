"""Intermediate bounds with optimised ReLU slopes (alpha-CROWN on the hidden layers).

:func:`~gurobi_sparse_surrogate.bounds.objective.bound_output_objective` optimises the lower
slopes of the unstable ReLUs for the output objective. The same optimisation applied to every
unstable neuron of a hidden layer (its pre-activation ``z_i`` bounded below with ``c = e_i``
and above with ``c = -e_i`` on the network cut after that layer) tightens the layer's bounds,
and through them everything after it: fewer unstable neurons, smaller relaxations, fewer
binaries in the MILP. Layers are treated in order, each with the bounds already tightened for
the earlier ones; the result is intersected with the given bounds, so it is never looser.
Every bound is sound for every choice of slopes (see :mod:`.objective`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..domains import Domain
from ..network.extraction import Layer, extract_layers
from ..torch_threads import single_torch_thread
from .objective import _bound_output_objective, _check_layers
from .problem import NetworkBounds

__all__ = ["optimise_intermediate_bounds"]


def optimise_intermediate_bounds(
    network: Any,
    domain: Domain,
    bounds: NetworkBounds,
    *,
    steps: int = 20,
    lr: float = 0.1,
    time_budget: float | None = None,
    fixed: dict[int, np.ndarray] | None = None,
) -> NetworkBounds:
    """Tighten the unstable neurons' bounds of every hidden ReLU layer by optimised slopes.

    Parameters
    ----------
    network : torch.nn.Sequential or list of Layer
        Affine layers with optional ReLU (not modified).
    domain : Box, LinfBall or L1Ball
        The inputs the bounds must hold over.
    bounds : NetworkBounds
        Sound pre-activation bounds for ``domain`` (one sample); the start point.
    steps : int
        Gradient steps per layer (0: CROWN's fixed slopes with the tightened earlier layers).
    lr : float
        Adam's learning rate on the slopes.
    time_budget : float, optional
        Seconds; layers not reached within it keep their bounds.
    fixed : dict, optional
        Per layer index, a ``(n_i,)`` array of ``+1`` (neuron taken active, ``z >= 0``), ``-1``
        (inactive, ``z <= 0``) or ``0``: the bounds then hold over the part of the domain where
        those signs hold (a branch of a branch and bound), and are clipped accordingly.

    Returns
    -------
    NetworkBounds
        Method ``"<method>+alpha"``, never looser than ``bounds`` on any neuron. With
        ``fixed``, a layer whose bounds become empty (lower above upper) means the branch
        holds no input of the domain.

    Examples
    --------
    >>> import torch, numpy as np
    >>> from gurobi_sparse_surrogate import LinfBall
    >>> from gurobi_sparse_surrogate.bounds import compute_bounds
    >>> from gurobi_sparse_surrogate.network import extract_layers
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(),
    ...                           torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    >>> dom = LinfBall(np.full(4, 0.5), 0.3)
    >>> crown = compute_bounds(extract_layers(net), dom.lower, dom.upper, "linear", dom)
    >>> tight = optimise_intermediate_bounds(net, dom, crown)
    >>> bool(all((t >= c).all() for t, c in zip(tight.lower, crown.lower)))
    True
    """
    with single_torch_thread():
        return _optimise(network, domain, bounds, steps, lr, time_budget, fixed or {})


def _apply_fixed(lo: np.ndarray, hi: np.ndarray, signs: np.ndarray | None):
    if signs is None:
        return lo, hi
    lo, hi = lo.copy(), hi.copy()
    lo[signs > 0] = np.maximum(lo[signs > 0], 0.0)
    hi[signs < 0] = np.minimum(hi[signs < 0], 0.0)
    return lo, hi


def _optimise(network, domain, bounds, steps, lr, time_budget, fixed) -> NetworkBounds:
    start = time.perf_counter()
    layers: Sequence[Layer] = (
        list(network) if isinstance(network, (list, tuple)) else extract_layers(network)
    )
    _check_layers(layers)
    bounds.check_shapes(layers, 1)
    lower = [np.asarray(b[0], dtype=np.float64).copy() for b in bounds.lower]
    upper = [np.asarray(b[0], dtype=np.float64).copy() for b in bounds.upper]
    for k in range(len(layers)):
        lower[k], upper[k] = _apply_fixed(lower[k], upper[k], fixed.get(k))
    for k in range(1, len(layers)):
        if not layers[k].relu:
            continue
        if time_budget is not None and time.perf_counter() - start > time_budget:
            break
        if (lower[k] > upper[k]).any() or any(
            (lo > hi).any() for lo, hi in zip(lower[:k], upper[:k], strict=True)
        ):
            break  # an empty branch: nothing to tighten
        unstable = np.flatnonzero((lower[k] < 0) & (upper[k] > 0))
        if unstable.size == 0:
            continue
        truncated = [*layers[:k], dataclasses.replace(layers[k], relu=False)]
        n_k = layers[k].n_out
        c = np.zeros((2 * unstable.size, n_k))
        c[np.arange(unstable.size), unstable] = 1.0
        c[unstable.size + np.arange(unstable.size), unstable] = -1.0
        earlier = NetworkBounds(
            [lo[None] for lo in lower[: k + 1]], [hi[None] for hi in upper[: k + 1]]
        )
        found = _bound_output_objective(truncated, domain, c, None, earlier, steps, lr, None, False)
        new_lo = found.lower[: unstable.size]
        new_hi = -found.lower[unstable.size :]
        lower[k][unstable] = np.maximum(lower[k][unstable], new_lo)
        upper[k][unstable] = np.minimum(upper[k][unstable], new_hi)
        lower[k], upper[k] = _apply_fixed(lower[k], upper[k], fixed.get(k))
    return NetworkBounds(
        [lo[None] for lo in lower],
        [hi[None] for hi in upper],
        method=f"{bounds.method}+alpha",
        input_lower=bounds.input_lower,
        input_upper=bounds.input_upper,
        domain=bounds.domain,
    )
