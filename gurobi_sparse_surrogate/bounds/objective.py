"""Objective-aware bounds: a proven lower bound of ``c' y + d`` over an input domain.

The property a MILP would be built for (for a classifier, ``y_label - y_j`` for each wrong
class ``j``) is bounded directly, before any model exists: ``c`` is back-substituted through
the network, every ReLU replaced by linear relaxations from the intermediate bounds, to a
linear function ``A x + a`` of the input whose minimum over the domain is a lower bound.

The lower relaxation of an unstable ReLU, ``h >= alpha z`` for any ``alpha`` in ``[0, 1]``,
is free: every choice gives a valid bound, so the slopes are optimised by gradient ascent on
the bound (the alpha-CROWN idea: Xu et al., "Fast and Complete", ICLR 2021), one set of
slopes per row of ``c``, with torch autograd on the CPU in float64. Every iterate is sound, so
the best one per row is kept; the first iterate uses CROWN's fixed slopes (``1`` when
``u >= -l``, else ``0``), so the result is never weaker than the fixed-slope bound. The final
bound is recomputed from the kept slopes with the domain's exact support function (greedy
knapsack for an L1 ball inside its box) and padded against rounding.

During the optimisation the minimum over the domain is taken in a differentiable form: the
box term ``a + A centre - |A| radius`` (exact for a box and for an L-infinity ball clipped to
its box), and for an L1 ball also the dual-norm term ``a + A centre - r max|A|``; both are
sound, the larger is used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..domains import Domain, L1Ball
from ..exceptions import (
    InvalidOptionError,
    ShapeMismatchError,
    UnboundedInputError,
    UnsupportedNetworkError,
)
from ..network.extraction import Layer, extract_layers
from ..torch_threads import single_torch_thread
from .options import BoundOptions
from .problem import NetworkBounds

__all__ = ["ObjectiveBound", "bound_output_objective"]

#: Relative outward padding of the final bound against floating-point rounding.
ROUNDING_PAD = 1e-9


@dataclass
class ObjectiveBound:
    """A proven lower bound of ``c' y + d`` over a domain, one entry per row of ``c``.

    Attributes
    ----------
    lower : numpy.ndarray
        Shape ``(m,)``: for every input of the domain, ``c[i] @ network(x) + d[i] >= lower[i]``.
    fixed_slopes : numpy.ndarray
        Shape ``(m,)``: the same bound with CROWN's fixed ReLU slopes (what the optimisation
        started from; ``lower >= fixed_slopes``).
    steps : int
        Gradient steps taken.
    seconds : float
        Time spent, intermediate bounds included.
    bounds_method : str
        The method of the intermediate (pre-activation) bounds used.
    history : list of float
        The sum over rows of the differentiable bound at every step (for diagnostics).
    inputs : numpy.ndarray or None
        Shape ``(m, n_in)``: per row, the input of the domain where the final linear lower
        function is smallest (its minimiser over the input box, projected onto the domain): the
        relaxation's answer, a good start for an attack on that row.
    """

    lower: np.ndarray
    fixed_slopes: np.ndarray
    steps: int
    seconds: float
    bounds_method: str
    history: list[float] = field(default_factory=list)
    inputs: np.ndarray | None = None

    def proven(self, threshold: float = 0.0) -> np.ndarray:
        """Rows whose bound exceeds ``threshold`` (boolean ``(m,)``)."""
        return self.lower > threshold


def _check_layers(layers: Sequence[Layer]) -> None:
    for layer in layers:
        kind = getattr(layer, "kind", "affine")
        if type(layer) is not Layer or kind not in ("affine", "linear"):
            raise UnsupportedNetworkError(
                f"bound_output_objective supports affine layers followed by an optional ReLU; "
                f"{getattr(layer, 'name', layer)!r} is a {type(layer).__name__} ({kind})"
            )


def _domain_terms(domain: Domain) -> tuple[np.ndarray, np.ndarray, float | None]:
    lo = np.asarray(domain.lower, dtype=np.float64)
    hi = np.asarray(domain.upper, dtype=np.float64)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise UnboundedInputError(
            "bound_output_objective needs a bounded domain; the domain has infinite bounds at "
            f"inputs {np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))[:10].tolist()}"
        )
    radius = float(domain.radius) if isinstance(domain, L1Ball) else None
    return lo, hi, radius


class _Backward:
    """The back-substitution of ``c`` with given lower-relaxation slopes, in torch float64."""

    def __init__(self, layers, lower, upper, c, d):
        self.weights = [torch.tensor(layer.weight.toarray()) for layer in layers]
        self.biases = [torch.tensor(layer.bias) for layer in layers]
        self.relu = [bool(layer.relu) for layer in layers]
        self.c = torch.tensor(c)
        self.d = torch.tensor(d)
        self.upper_slope, self.upper_intercept, self.unstable, self.active = [], [], [], []
        for lo, hi, relu in zip(lower, upper, self.relu, strict=True):
            lo = np.asarray(lo, dtype=np.float64)
            hi = np.asarray(hi, dtype=np.float64)
            active = lo >= 0 if relu else np.ones(lo.shape, bool)
            unstable = (lo < 0) & (hi > 0) if relu else np.zeros(lo.shape, bool)
            slope = active.astype(np.float64)
            intercept = np.zeros_like(slope)
            with np.errstate(divide="ignore", invalid="ignore"):
                chord = hi / (hi - lo)
            slope[unstable] = chord[unstable]
            intercept[unstable] = -chord[unstable] * lo[unstable]
            self.upper_slope.append(torch.tensor(slope))
            self.upper_intercept.append(torch.tensor(intercept))
            self.unstable.append(torch.tensor(unstable))
            self.active.append(torch.tensor(active.astype(np.float64)))
        self.initial_alpha = [
            torch.tensor(np.where(np.asarray(hi) >= -np.asarray(lo), 1.0, 0.0))
            for lo, hi in zip(lower, upper, strict=True)
        ]

    def __call__(self, alphas):
        """``(A, a)`` with ``c' y + d >= A x + a``; ``alphas[j]`` is ``(m, n_j)`` or None."""
        m = self.c.shape[0]
        coef = self.c
        const = self.d.clone()
        for j in range(len(self.weights) - 1, -1, -1):
            if self.relu[j]:
                alpha = alphas[j]
                lower_slope = self.active[j].expand(m, -1)
                if alpha is not None:
                    lower_slope = torch.where(self.unstable[j], alpha, lower_slope)  # (m, n_j)
                positive = coef.clamp(min=0)
                negative = coef.clamp(max=0)
                const = const + negative @ self.upper_intercept[j]
                coef = positive * lower_slope + negative * self.upper_slope[j]
            const = const + coef @ self.biases[j]
            coef = coef @ self.weights[j]
        return coef, const


def bound_output_objective(
    network: Any,
    domain: Domain,
    c: Any,
    offset: Any = None,
    *,
    bounds: str | NetworkBounds = "linear",
    steps: int = 30,
    lr: float = 0.1,
    bound_options: dict | BoundOptions | None = None,
    cache: Any = True,
) -> ObjectiveBound:
    """Prove a lower bound of ``c' network(x) + offset`` over every ``x`` in ``domain``.

    Parameters
    ----------
    network : torch.nn.Sequential or list of Layer
        The network (not modified); Linear and ReLU layers.
    domain : Box, LinfBall or L1Ball
        The inputs.
    c : array_like
        Shape ``(n_out,)`` or ``(m, n_out)``: one linear function of the outputs per row. For
        a classifier, ``e_label - e_j`` bounds the margin of class ``j``; to bound a maximum,
        pass ``-c`` and negate.
    offset : array_like, optional
        Constants ``d``, shape ``(m,)`` (default 0).
    bounds : str or NetworkBounds
        The intermediate pre-activation bounds: a bounding method (``"linear"`` by default;
        ``"auto"`` spends more time on tighter ones) computed for ``domain`` through the
        bounds cache, or bounds computed earlier for this domain.
    steps : int
        Gradient steps on the ReLU slopes (0: CROWN's fixed slopes only).
    lr : float
        Adam's learning rate on the slopes.
    bound_options : dict or BoundOptions, optional
        Options of the bounding method.
    cache : bool or BoundsCache
        Where intermediate bounds are looked up and stored (see
        :func:`~gurobi_sparse_surrogate.bounds.cache.cached_compute_bounds`).

    Returns
    -------
    ObjectiveBound
        ``lower[i]`` bounds row ``i`` from below over the whole domain.

    Raises
    ------
    UnsupportedNetworkError
        For layer kinds other than affine + optional ReLU.
    ShapeMismatchError, UnboundedInputError

    Examples
    --------
    >>> import torch, numpy as np
    >>> from gurobi_sparse_surrogate import LinfBall
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    >>> x0 = np.full(4, 0.5)
    >>> result = bound_output_objective(net, LinfBall(x0, 0.1), [[1.0, -1.0, 0.0], [1.0, 0.0, -1.0]])
    >>> result.lower.shape, bool((result.lower >= result.fixed_slopes).all())
    ((2,), True)
    >>> y = net(torch.tensor(x0, dtype=torch.float32)).detach().numpy()
    >>> bool(result.lower[0] <= y[0] - y[1])
    True
    """
    with single_torch_thread():
        return _bound_output_objective(
            network, domain, c, offset, bounds, steps, lr, bound_options, cache
        )


def _bound_output_objective(network, domain, c, offset, bounds, steps, lr, bound_options, cache):
    from .cache import cached_compute_bounds

    start = time.perf_counter()
    if not isinstance(domain, Domain):
        raise InvalidOptionError(
            f"domain must be a Box, LinfBall or L1Ball, got {type(domain).__name__}"
        )
    layers = list(network) if isinstance(network, (list, tuple)) else extract_layers(network)
    _check_layers(layers)
    if layers[0].n_in != domain.n:
        raise ShapeMismatchError(
            f"the network has {layers[0].n_in} inputs but the domain has dimension {domain.n}"
        )
    n_out = layers[-1].n_out
    c = np.atleast_2d(np.asarray(c, dtype=np.float64))
    if c.ndim != 2 or c.shape[1] != n_out:
        raise ShapeMismatchError(
            f"c must have shape ({n_out},) or (m, {n_out}) for a network with {n_out} outputs, "
            f"got {np.shape(c)}"
        )
    m = c.shape[0]
    d = np.zeros(m) if offset is None else np.asarray(offset, dtype=np.float64).reshape(-1)
    if d.shape != (m,):
        raise ShapeMismatchError(f"offset must have shape ({m},), got {d.shape}")
    if not (np.isfinite(c).all() and np.isfinite(d).all()):
        raise ValueError("c and offset must be finite")
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    lo, hi, radius = _domain_terms(domain)
    if isinstance(bounds, NetworkBounds):
        bounds.check_shapes(layers, 1)
        net_bounds = bounds
    else:
        net_bounds = cached_compute_bounds(
            layers, lo[None], hi[None], bounds, domain, cache=cache, options=bound_options
        )
    lower = [b[0] for b in net_bounds.lower]
    upper = [b[0] for b in net_bounds.upper]
    hidden_relu = [j for j, layer in enumerate(layers) if layer.relu]
    for j in hidden_relu:
        if not (np.isfinite(lower[j]).all() and np.isfinite(upper[j]).all()):
            raise UnboundedInputError(f"the intermediate bounds of {layers[j].name} are not finite")
    backward = _Backward(layers, lower, upper, c, d)
    centre = torch.tensor((lo + hi) / 2)
    half = torch.tensor((hi - lo) / 2)
    ball_centre = None if radius is None else torch.tensor(np.asarray(domain.center, np.float64))

    def relaxed_lower(alphas):
        coef, const = backward(alphas)
        value = const + coef @ centre - coef.abs() @ half
        if ball_centre is not None:
            dual = const + coef @ ball_centre - radius * coef.abs().amax(dim=1)
            value = torch.maximum(value, dual)
        return value

    alphas = [
        backward.initial_alpha[j].expand(m, -1).clone().requires_grad_(True)
        if layers[j].relu and bool(backward.unstable[j].any())
        else None
        for j in range(len(layers))
    ]
    params = [a for a in alphas if a is not None]
    with torch.no_grad():
        first = relaxed_lower(alphas)
    best_value = first.clone()
    best_alphas = [None if a is None else a.detach().clone() for a in alphas]
    history = [float(first.sum())]
    taken = 0
    if params and steps:
        # Adam, written out: torch.optim's first step imports seconds of machinery.
        first_moment = [torch.zeros_like(a) for a in params]
        second_moment = [torch.zeros_like(a) for a in params]
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        for step in range(1, steps + 1):
            value = relaxed_lower(alphas)
            grads = torch.autograd.grad(-value.sum(), params)
            with torch.no_grad():
                for a, g, m1, m2 in zip(params, grads, first_moment, second_moment, strict=True):
                    m1.mul_(beta1).add_(g, alpha=1 - beta1)
                    m2.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    m1_hat = m1 / (1 - beta1**step)
                    m2_hat = m2 / (1 - beta2**step)
                    a.sub_(lr * m1_hat / (m2_hat.sqrt() + eps)).clamp_(0.0, 1.0)
                value = relaxed_lower(alphas)
            taken += 1
            history.append(float(value.sum()))
            better = value > best_value
            if bool(better.any()):
                best_value = torch.where(better, value, best_value)
                for j, a in enumerate(alphas):
                    if a is not None:
                        best_alphas[j][better] = a.detach()[better]

    minimisers = []

    def exact(alpha_list) -> np.ndarray:
        with torch.no_grad():
            coef, const = backward(alpha_list)
        coef_np = coef.numpy()
        minimisers.append(np.where(coef_np > 0, lo[None, :], hi[None, :]))
        const_np = const.numpy()
        value, _ = domain.first_layer_bounds(coef_np, const_np)
        value = np.asarray(value, dtype=np.float64)
        scale = np.abs(coef_np) @ np.maximum(np.abs(lo), np.abs(hi)) + np.abs(const_np)
        return value - ROUNDING_PAD * (1.0 + np.abs(value) + scale)

    fixed = exact(
        [
            None if a is None else backward.initial_alpha[j].expand(m, -1)
            for j, a in enumerate(alphas)
        ]
    )
    optimised = exact(best_alphas) if taken else fixed
    # Both are sound; the exact concretisation may rank them differently than the relaxed one.
    result = np.maximum(optimised, fixed)
    return ObjectiveBound(
        result,
        fixed,
        taken,
        time.perf_counter() - start,
        net_bounds.method,
        history,
        np.asarray(domain.project(minimisers[-1]), dtype=np.float64),
    )
