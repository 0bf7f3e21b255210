"""Importance scores of weights for pruning: magnitude and instance-aware criteria.

:func:`~gurobi_sparse_surrogate.prune_network` removes the weights with the smallest scores.
Magnitude pruning (the paper's MP) scores a weight by ``|w|``. A surrogate is solved over one
instance's input domain, so two criteria here look at that domain:

``"activation"``
    ``|w_ij| * ||a_j||_2``: the weight's magnitude times the root of the sum of squares of the
    activation it multiplies, over points sampled from the domain (Wanda, Sun et al. 2023,
    arXiv 2306.11695). A large weight that reads an input which is small everywhere on the
    domain matters little there.
``"bound"``
    ``|w_ij| * max(|l_j|, |u_j|)``: the largest contribution the weight can make over the domain,
    from sound bounds ``[l_j, u_j]`` of the activation it multiplies. Neurons that are inactive
    everywhere on the domain are removed first (their incoming weights and bias are zeroed,
    which changes no output on the domain), and the weights they feed score 0.

Both need the domain (``domain=`` of :func:`prune_network`); neither looks at labels or data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..exceptions import InvalidOptionError, ShapeMismatchError
from .extraction import _flat_modules, effective_parameter, extract_layers, float64_copy

#: Criteria that need the instance's input domain.
INSTANCE_AWARE: tuple[str, ...] = ("activation", "bound")


def _check_domain(domain: Any, method: str, n_inputs: int) -> Any:
    from ..domains import Domain

    if domain is None:
        raise ValueError(
            f"pruning method {method!r} scores weights over the instance's input domain: pass "
            "domain=Box(...), LinfBall(...) or L1Ball(...)"
        )
    if not isinstance(domain, Domain):
        raise InvalidOptionError(
            f"domain must be a Box, LinfBall or L1Ball (a gurobi_sparse_surrogate Domain), got "
            f"{type(domain).__name__}"
        )
    if domain.n != n_inputs:
        raise ShapeMismatchError(f"the domain has {domain.n} inputs but the network has {n_inputs}")
    return domain


def activation_scores(
    network: nn.Module, modules: Sequence[nn.Linear], domain: Any, n_samples: int, seed: int | None
) -> list[torch.Tensor]:
    """``|w_ij| * ||a_j||_2`` over ``n_samples`` points of ``domain``, one tensor per module.

    ``modules`` are modules of ``network``; the activations are recorded by forward pre-hooks on
    a float64 copy of the network, so ``network`` is not run or modified.
    """
    model = float64_copy(network)
    originals = [m for m in network.modules() if isinstance(m, nn.Linear)]
    copies = [m for m in model.modules() if isinstance(m, nn.Linear)]
    copy_of = {id(o): c for o, c in zip(originals, copies, strict=True)}
    norms: list[torch.Tensor | None] = [None] * len(modules)
    hooks = []
    for index, module in enumerate(modules):

        def record(_mod: nn.Module, args: tuple, index: int = index) -> None:
            x = args[0].reshape(args[0].shape[0], -1)
            norms[index] = torch.linalg.vector_norm(x, dim=0)

        hooks.append(copy_of[id(module)].register_forward_pre_hook(record))
    points = domain.sample(int(n_samples), rng=seed)
    try:
        with torch.no_grad():
            model(torch.as_tensor(points, dtype=torch.float64))
    finally:
        for hook in hooks:
            hook.remove()
    scores = []
    for module, norm in zip(modules, norms, strict=True):
        w = effective_parameter(module, "weight").to(torch.float64).abs()
        scores.append((w * norm.reshape(1, -1)).to(module.weight.dtype))
    return scores


def bound_scores(
    network: nn.Module,
    module_names: Sequence[str],
    modules: Sequence[nn.Linear],
    domain: Any,
    bound_method: str,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``|w_ij| * max(|l_j|, |u_j|)`` for each module, and the rows of its dead neurons.

    Returns
    -------
    scores : list of torch.Tensor
        One per module, shaped like its weight.
    dead : list of torch.Tensor
        One boolean vector per module: the neurons whose pre-activation upper bound over the
        domain is at most 0 and that are followed by a ReLU (they output 0 everywhere), at
        every place of the network the module is used.
    """
    from ..bounds import compute_bounds

    layers = extract_layers(network)
    bounds = compute_bounds(
        layers,
        domain.lower,
        domain.upper,
        method=bound_method,
        domain=domain,
    )
    # One module object may sit at several places of the network (its weights shared): every
    # place makes a layer named "layer i (module <place>: ...", and all of them count.
    places: dict[int, list[str]] = {}
    for place, flat in _flat_modules(network):
        places.setdefault(id(flat), []).append(place)
    scores, dead = [], []
    for name, module in zip(module_names, modules, strict=True):
        uses = [
            (i, place)
            for place in places.get(id(module), [name])
            for i, layer in enumerate(layers)
            if f"(module {place}: " in layer.name
        ]
        reach = np.zeros(layers[uses[0][0]].n_in)
        rows_dead = np.ones(layers[uses[0][0]].n_out, dtype=bool)
        for i, place in uses:
            if i == 0:
                lo, hi = np.asarray(domain.lower), np.asarray(domain.upper)
            else:
                lo, hi = bounds.lower[i - 1][0], bounds.upper[i - 1][0]
                if layers[i - 1].relu:
                    lo, hi = np.maximum(lo, 0.0), np.maximum(hi, 0.0)
            reach = np.maximum(reach, np.maximum(np.abs(lo), np.abs(hi)))
            # Zeroing the module's rows keeps a neuron at 0 only when nothing affine follows
            # it inside the layer: a batch norm folded after it would turn the zero into its
            # shift. A neuron is dead only if it is at every place the module is used.
            label = layers[i].name
            folded_after = "module " in label[label.index(f"module {place}:") + 1 :]
            if layers[i].relu and not folded_after:
                rows_dead &= bounds.upper[i][0] <= 0
            else:
                rows_dead[:] = False
        w = effective_parameter(module, "weight").to(torch.float64).abs()
        reach_t = torch.as_tensor(reach, dtype=torch.float64)
        scores.append((w * reach_t.reshape(1, -1)).to(module.weight.dtype))
        dead.append(torch.as_tensor(rows_dead))
    return scores, dead
