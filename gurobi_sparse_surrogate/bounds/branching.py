"""Branch and bound on unstable ReLUs with optimised linear bounds (the beta-CROWN idea).

To prove ``c' network(x) + d > 0`` on a box, the domain is split on the sign of unstable
neurons: in a branch where ``z_i >= 0`` (or ``<= 0``) the neuron is linear, and its
pre-activation bounds are clipped to ``[0, u]`` (or ``[l, 0]``). The split constraint itself
enters the bound through a Lagrange multiplier ``beta >= 0``: on the branch
``f(x) >= f(x) - beta * s * z(x)`` for the sign ``s``, which is back-substituted with ``f``
(Wang et al., "Beta-CROWN", NeurIPS 2021). ReLU slopes ``alpha`` and multipliers ``beta`` are
optimised by gradient for every branch; every iterate gives a sound bound, and the best one is
kept. The intermediate bounds are those of the whole domain (sound on every branch), clipped
at the split neurons.

A branch whose bound is positive is closed; a branch whose relaxation's minimiser (an input of
the domain) makes the objective negative is a counterexample, checked by the caller with a
forward pass. Branches are processed in batches, the weakest first, within a time budget.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..domains import Domain, L1Ball
from ..network.extraction import Layer, extract_layers
from ..torch_threads import single_torch_thread
from .objective import ROUNDING_PAD, _check_layers
from .problem import NetworkBounds

__all__ = ["BranchResult", "branch_and_bound"]


@dataclass
class BranchResult:
    """What :func:`branch_and_bound` established about ``c' network(x) + d`` on the domain.

    Attributes
    ----------
    status : {"proven", "counterexample", "unknown"}
        ``"proven"``: every branch was closed, the function is positive on the whole domain.
        ``"counterexample"``: :attr:`point` is an input of the domain where the function
        evaluated by this module's float64 forward pass is negative (check it with your own).
        ``"unknown"``: the budget ran out (or the domain is not a box).
    lower : float
        A proven lower bound over the whole domain (the smallest bound of an open branch; the
        root bound when nothing was split).
    nodes : int
        Branches bounded.
    seconds : float
    point : numpy.ndarray or None
        The input of the domain with the smallest function value seen (a relaxation
        minimiser).
    value : float or None
        The function's value at :attr:`point`.
    history : list of tuple of float
        ``(seconds, smallest open bound)`` after the root and after every batch.
    """

    status: str
    lower: float
    nodes: int
    seconds: float
    point: np.ndarray | None = None
    value: float | None = None
    history: list[tuple[float, float]] = field(default_factory=list)


class _Network:
    def __init__(self, layers: Sequence[Layer], lower, upper):
        self.weights = [torch.tensor(layer.weight.toarray()) for layer in layers]
        self.biases = [torch.tensor(layer.bias) for layer in layers]
        self.relu = [bool(layer.relu) for layer in layers]
        self.lower = [torch.tensor(np.asarray(lo, dtype=np.float64)) for lo in lower]
        self.upper = [torch.tensor(np.asarray(hi, dtype=np.float64)) for hi in upper]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for w, b, relu in zip(self.weights, self.biases, self.relu, strict=True):
            h = h @ w.T + b
            if relu:
                h = h.clamp(min=0)
        return h


def _bound_batch(net: _Network, signs, c, d, centre, half, lo_box, hi_box, steps, lr):
    """Optimised bounds of a batch of branches: ``(bound, minimiser, scores)``.

    ``signs[j]`` is a ``(B, n_j)`` tensor of -1/0/+1 per relu layer ``j`` (None otherwise).
    """
    batch = next(s.shape[0] for s in signs if s is not None)
    relax = []
    for j, s in enumerate(signs):
        if s is None:
            relax.append(None)
            continue
        lo = net.lower[j].expand(batch, -1).clone()
        hi = net.upper[j].expand(batch, -1).clone()
        lo = torch.where(s > 0, lo.clamp(min=0), lo)
        hi = torch.where(s < 0, hi.clamp(max=0), hi)
        empty = (lo > hi).any(dim=1)
        active = (lo >= 0).double()
        unstable = (lo < 0) & (hi > 0)
        chord = torch.where(unstable, hi / (hi - lo).clamp(min=1e-300), active)
        intercept = torch.where(unstable, -chord * lo, torch.zeros_like(lo))
        start = torch.where(hi >= -lo, 1.0, 0.0).double()
        relax.append((active, unstable, chord, intercept, start, empty, lo, hi))
    alphas = [None if r is None else r[4].clone().requires_grad_(True) for r in relax]
    betas = [
        None if s is None or not bool((s != 0).any()) else torch.zeros_like(s).requires_grad_(True)
        for s in signs
    ]
    params = [p for p in alphas + betas if p is not None]

    def backward(record: bool = False):
        coef = c.expand(batch, -1)
        const = d.expand(batch).clone()
        scores = [None] * len(relax)
        for j in range(len(net.weights) - 1, -1, -1):
            if relax[j] is not None:
                active, unstable, chord, intercept, _, _, lo, hi = relax[j]
                lower_slope = torch.where(unstable, alphas[j].clamp(0, 1), active)
                positive, negative = coef.clamp(min=0), coef.clamp(max=0)
                const = const + (negative * intercept).sum(dim=1)
                if record:  # what the triangle costs (BaBSR's intercept score), plus a
                    # small share of the neuron's reach so that a split is always found
                    reach = coef.abs() * torch.minimum(hi, -lo) * unstable
                    scores[j] = (-negative * intercept + 1e-3 * reach).detach()
                coef = positive * lower_slope + negative * chord
                if betas[j] is not None:
                    coef = coef - betas[j].clamp(min=0) * signs[j]
            const = const + coef @ net.biases[j]
            coef = coef @ net.weights[j]
        return coef, const, scores

    def value_of(coef, const):
        return const + coef @ centre - coef.abs() @ half

    with torch.no_grad():
        coef, const, _ = backward()
        best = value_of(coef, const)
    best_alphas = [None if a is None else a.detach().clone() for a in alphas]
    best_betas = [None if b is None else b.detach().clone() for b in betas]
    if params and steps:
        # Adam, written out (as in .objective)
        first = [torch.zeros_like(p) for p in params]
        second = [torch.zeros_like(p) for p in params]
        for step in range(1, steps + 1):
            coef, const, _ = backward()
            grads = torch.autograd.grad(-value_of(coef, const).sum(), params)
            with torch.no_grad():
                for p, g, m1, m2 in zip(params, grads, first, second, strict=True):
                    m1.mul_(0.9).add_(g, alpha=0.1)
                    m2.mul_(0.999).addcmul_(g, g, value=0.001)
                    p.sub_(lr * (m1 / (1 - 0.9**step)) / ((m2 / (1 - 0.999**step)).sqrt() + 1e-8))
                for a in alphas:
                    if a is not None:
                        a.clamp_(0, 1)
                for b in betas:
                    if b is not None:
                        b.clamp_(min=0)
                coef, const, _ = backward()
                value = value_of(coef, const)
                better = value > best
                if bool(better.any()):
                    best = torch.where(better, value, best)
                    for keep, now in zip(best_alphas + best_betas, alphas + betas, strict=True):
                        if keep is not None:
                            keep[better] = now.detach()[better]
    with torch.no_grad():
        alphas[:] = best_alphas
        betas[:] = best_betas
        coef, const, scores = backward(record=True)
        exact = value_of(coef, const)
        scale = coef.abs() @ torch.maximum(lo_box.abs(), hi_box.abs()) + const.abs()
        bound = exact - ROUNDING_PAD * (1.0 + exact.abs() + scale)
        for r in relax:
            if r is not None:
                bound = torch.where(r[5], torch.full_like(bound, np.inf), bound)  # empty branch
        point = torch.where(coef > 0, lo_box, hi_box)
    return bound.numpy(), point, scores


def branch_and_bound(
    network: Any,
    domain: Domain,
    c: Any,
    bounds: NetworkBounds,
    offset: float = 0.0,
    *,
    time_budget: float = 10.0,
    batch: int = 16,
    steps: int = 15,
    lr: float = 0.05,
    max_nodes: int = 20000,
) -> BranchResult:
    """Prove ``c' network(x) + offset > 0`` on a box domain by splitting unstable ReLUs.

    Parameters
    ----------
    network : torch.nn.Sequential or list of Layer
        Affine layers with optional ReLU (not modified).
    domain : Box or LinfBall
        The inputs (an :class:`~gurobi_sparse_surrogate.L1Ball` gives ``"unknown"``; another
        domain is bounded over its bounding box, and only its own inputs are counterexamples).
    c : array_like
        Shape ``(n_out,)``: one linear function of the outputs.
    bounds : NetworkBounds
        Sound pre-activation bounds over ``domain`` (the tighter the better, for example from
        :func:`~gurobi_sparse_surrogate.bounds.alpha.optimise_intermediate_bounds`).
    offset : float
        The constant ``d``.
    time_budget : float
        Seconds.
    batch : int
        Branches split and bounded together.
    steps, lr : int, float
        Adam steps and learning rate on the slopes and multipliers of every batch.
    max_nodes : int
        Branches bounded at most.

    Returns
    -------
    BranchResult

    Examples
    --------
    >>> import torch, numpy as np
    >>> from gurobi_sparse_surrogate import LinfBall
    >>> from gurobi_sparse_surrogate.bounds import compute_bounds
    >>> from gurobi_sparse_surrogate.network import extract_layers
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> dom = LinfBall(np.full(3, 0.5), 0.5)
    >>> b = compute_bounds(extract_layers(net), dom.lower, dom.upper, "linear", dom)
    >>> r = branch_and_bound(net, dom, [1.0, -1.0], b, offset=100.0)
    >>> r.status
    'proven'
    """
    with single_torch_thread():
        return _branch_and_bound(
            network, domain, c, bounds, offset, time_budget, batch, steps, lr, max_nodes
        )


def _branch_and_bound(network, domain, c, bounds, offset, time_budget, batch, steps, lr, max_nodes):
    began = time.perf_counter()
    layers = list(network) if isinstance(network, (list, tuple)) else extract_layers(network)
    _check_layers(layers)
    bounds.check_shapes(layers, 1)
    lo_np = np.asarray(domain.lower, dtype=np.float64)
    hi_np = np.asarray(domain.upper, dtype=np.float64)
    if isinstance(domain, L1Ball) or not (np.isfinite(lo_np).all() and np.isfinite(hi_np).all()):
        return BranchResult("unknown", -np.inf, 0, time.perf_counter() - began)
    net = _Network(layers, [b[0] for b in bounds.lower], [b[0] for b in bounds.upper])
    c_t = torch.tensor(np.asarray(c, dtype=np.float64).reshape(1, -1))
    d_t = torch.tensor([float(offset)], dtype=torch.float64)
    lo_box, hi_box = torch.tensor(lo_np), torch.tensor(hi_np)
    centre, half = (lo_box + hi_box) / 2, (hi_box - lo_box) / 2
    relu_layers = [j for j, layer in enumerate(layers) if layer.relu]
    sizes = {j: layers[j].n_out for j in relu_layers}
    best_point, best_value = None, np.inf
    nodes = 0
    closed = np.inf  # the smallest bound of a closed branch
    stuck: list[float] = []  # bounds of branches with nothing left to split
    history: list[tuple[float, float]] = []

    def evaluate(sign_list):
        """Bound a list of branches (dicts layer -> sign array); returns records."""
        nonlocal best_point, best_value, nodes
        stacked = [
            torch.tensor(np.stack([s[j] for s in sign_list])) if j in sizes else None
            for j in range(len(layers))
        ]
        bound, points, scores = _bound_batch(
            net, stacked, c_t, d_t, centre, half, lo_box, hi_box, steps, lr
        )
        nodes += len(sign_list)
        with torch.no_grad():
            values = (net.forward(points) @ c_t[0] + float(offset)).numpy()
        # the minimisers are corners of the box: outside a domain smaller than its box
        values = np.where(domain.contains(points.numpy()), values, np.inf)
        i = int(np.argmin(values))
        if values[i] < best_value:
            best_value, best_point = float(values[i]), points[i].numpy().copy()
        out = []
        for k, s in enumerate(sign_list):
            score = {j: scores[j][k].numpy() * (s[j] == 0) for j in sizes if scores[j] is not None}
            out.append((float(bound[k]), s, score))
        return out

    root_signs = {j: np.zeros(n) for j, n in sizes.items()}
    (root,) = evaluate([root_signs])
    heap: list[tuple[float, int, dict, dict]] = []
    counter = 0
    if root[0] <= 0:
        heapq.heappush(heap, (root[0], counter, root[1], root[2]))
    else:
        closed = root[0]
    history.append((time.perf_counter() - began, root[0]))
    status = "unknown"
    while True:
        if best_value < 0:
            status = "counterexample"
            break
        if not heap:
            status = "unknown" if stuck else "proven"
            break
        if time.perf_counter() - began > time_budget or nodes >= max_nodes:
            break
        take = [heapq.heappop(heap) for _ in range(min(batch, len(heap)))]
        children = []
        for bound_taken, _, signs, score in take:
            best_layer, best_index, best_score = None, None, 0.0
            for j, s in score.items():
                if s.size and float(s.max()) > best_score:
                    best_layer, best_index, best_score = j, int(np.argmax(s)), float(s.max())
            if best_layer is None:
                # every neuron of the branch is split: its bound stays as it is
                stuck.append(bound_taken)
                continue
            for sign in (1.0, -1.0):
                child = {j: s.copy() for j, s in signs.items()}
                child[best_layer][best_index] = sign
                children.append(child)
        for bound, signs, score in evaluate(children) if children else []:
            if bound <= 0:
                counter += 1
                heapq.heappush(heap, (bound, counter, signs, score))
            else:
                closed = min(closed, bound)
        history.append((time.perf_counter() - began, heap[0][0] if heap else np.inf))
    lower = min(heap[0][0] if heap else np.inf, closed, *stuck)
    if status == "proven":
        lower = closed
    if status == "counterexample":
        lower = min(lower, root[0])
    return BranchResult(
        status,
        float(lower),
        nodes,
        time.perf_counter() - began,
        best_point,
        None if best_point is None else best_value,
        history,
    )
