"""The MILP formulation of a network: which neurons get variables, and their constraints.

Formulating happens in two steps. :func:`plan_network` is pure numpy: from the sparse layers
and the pre-activation bounds of one input row it decides, per neuron, whether the neuron is

* ``constant``: no incoming weight from a neuron that has a variable (its value is folded into
  the next layer's constant term),
* ``inactive``: a ReLU neuron with upper bound <= 0 (constant 0),
* ``active``: a ReLU neuron with lower bound >= 0, or a neuron without ReLU (linear),
* ``unstable``: a ReLU neuron whose bounds straddle 0 (the only ones needing a disjunction),
* ``unread``: a neuron that no neuron with a variable reads (dropped).

:func:`build_layer` then adds variables and constraints to a Gurobi model for the neurons that
have a variable, using only the nonzero weights between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gurobipy as gp
import numpy as np
import scipy.sparse as sp

from ..network.extraction import Layer
from .strategy import (
    RELU_FORMULATIONS,
    LayerSize,
    Namer,
    affine_expression,
    formulation_for,
)

CATEGORIES = ("constant", "inactive", "active", "unstable", "unread")


@dataclass(eq=False)
class LayerPlan:
    """How one layer of one input row is formulated.

    Attributes
    ----------
    layer : Layer
    category : numpy.ndarray
        ``(n_out,)`` array of category names (see module docstring).
    rows : numpy.ndarray
        Indices of the neurons that get a variable, in the order of the layer's variables.
    unstable : numpy.ndarray
        Boolean mask over ``rows``: neurons needing a disjunction.
    weight : scipy.sparse.csr_array
        Weights from the previous layer's variables to ``rows``.
    offset : numpy.ndarray
        Bias of ``rows`` plus the contribution of the previous layer's constant neurons.
    lower, upper : numpy.ndarray
        Pre-activation bounds of ``rows``.
    constant_values : numpy.ndarray
        ``(n_out,)`` post-activation values of the neurons without variable (0 where unread).
    candidate_lower, candidate_upper : numpy.ndarray or None
        Max pooling only: bounds of the previous layer's live values (the pooled inputs).

    For a max-pooling layer, ``weight`` is the 0/1 matrix of each window's *surviving* inputs
    among the previous layer's variables, ``offset`` the window's surviving constant input
    (``-inf`` when there is none), and ``unstable`` marks the windows with more than one
    surviving input (the others are ``y = x``).
    """

    layer: Layer
    category: np.ndarray
    rows: np.ndarray
    unstable: np.ndarray
    weight: sp.csr_array
    offset: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    constant_values: np.ndarray
    candidate_lower: np.ndarray | None = None
    candidate_upper: np.ndarray | None = None

    def count(self, category: str) -> int:
        """Number of neurons of ``category``."""
        return int(np.count_nonzero(self.category == category))


def _columns_read(weight: sp.csr_array, rows: np.ndarray, n_cols: int) -> np.ndarray:
    """Boolean mask of the columns with a nonzero weight in any of ``rows``."""
    used = np.zeros(n_cols, dtype=bool)
    used[weight[rows].indices] = True
    return used


def plan_network(
    layers: Sequence[Layer], lower: Sequence[np.ndarray], upper: Sequence[np.ndarray]
) -> list[LayerPlan]:
    """Classify every neuron of one input row and restrict the weights to live neurons.

    Parameters
    ----------
    layers : list of Layer
    lower, upper : list of numpy.ndarray
        Pre-activation bounds of each layer for this row, ``(n_i,)`` arrays.

    Returns
    -------
    list of LayerPlan
    """
    # Forward: which neurons are constant, stable or unstable given the live inputs.
    has_var = np.ones(layers[0].n_in, dtype=bool)
    values = np.zeros(layers[0].n_in)
    forward = []
    post_lo, post_hi = None, None
    for layer, lo, hi in zip(layers, lower, upper, strict=True):
        if layer.is_maxpool:
            category, post_constant, pre_constant, w = _plan_max_pool(
                layer, lo, hi, has_var, values, post_lo, post_hi
            )
            forward.append((category, post_constant, pre_constant, w))
            has_var = (category == "active") | (category == "unstable")
            values = post_constant
            post_lo, post_hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
            continue
        w = layer.weight
        reads_var = np.diff(w[:, has_var].indptr) > 0
        pre_constant = w[:, ~has_var] @ values[~has_var] + layer.bias
        category = np.full(layer.n_out, "active", dtype=object)
        category[~reads_var] = "constant"
        post_constant = np.where(~reads_var, pre_constant, 0.0)
        if layer.relu:
            post_constant = np.maximum(post_constant, 0.0)
            category[reads_var & (hi <= 0)] = "inactive"
            category[reads_var & (hi > 0) & (lo < 0)] = "unstable"
        forward.append((category, post_constant, pre_constant, w))
        has_var = (category == "active") | (category == "unstable")
        values = post_constant
        post_lo = np.maximum(lo, 0.0) if layer.relu else np.asarray(lo, dtype=np.float64)
        post_hi = np.maximum(hi, 0.0) if layer.relu else np.asarray(hi, dtype=np.float64)
    # Backward: drop neurons with a variable that no needed neuron reads.
    needed = np.ones(layers[-1].n_out, dtype=bool)
    for index in range(len(layers) - 1, -1, -1):
        category = forward[index][0]
        category[((category == "active") | (category == "unstable")) & ~needed] = "unread"
        rows = np.flatnonzero((category == "active") | (category == "unstable"))
        needed = _columns_read(forward[index][3], rows, layers[index].n_in)
    # Restrict each layer's weights to the variables of both ends.
    plans: list[LayerPlan] = []
    prev_rows = np.arange(layers[0].n_in)
    prev_lo, prev_hi = None, None
    for index, layer in enumerate(layers):
        category, post_constant, pre_constant, structure = forward[index]
        rows = np.flatnonzero((category == "active") | (category == "unstable"))
        weight = sp.csr_array(structure[rows][:, prev_rows])
        weight.eliminate_zeros()
        candidates = (None, None)
        if layer.is_maxpool:
            candidates = (prev_lo[prev_rows], prev_hi[prev_rows])
        plans.append(
            LayerPlan(
                layer=layer,
                category=category.astype(str),
                rows=rows,
                unstable=category[rows] == "unstable",
                weight=weight,
                offset=pre_constant[rows],
                lower=np.asarray(lower[index])[rows],
                upper=np.asarray(upper[index])[rows],
                constant_values=post_constant,
                candidate_lower=candidates[0],
                candidate_upper=candidates[1],
            )
        )
        prev_rows = rows
        lo_i, hi_i = np.asarray(lower[index]), np.asarray(upper[index])
        prev_lo = np.maximum(lo_i, 0.0) if layer.relu else lo_i
        prev_hi = np.maximum(hi_i, 0.0) if layer.relu else hi_i
    return plans


def _plan_max_pool(layer, lo, hi, has_var, values, in_lo, in_hi):
    """Survivors of every window of a max-pooling layer for one input row.

    An input whose upper bound is at most the largest lower bound in its window (attained by
    another input, the first such one kept) can never exceed the maximum and drops out. A
    window whose survivors are all constants is constant; one surviving variable makes it
    linear (``active``); several make it ``unstable``. ``in_lo``/``in_hi`` are the bounds of
    the previous layer's outputs: a max pool is never the first layer (refused at extraction).
    """
    windows = layer.windows
    n_in = layer.n_in
    valid = windows >= 0
    safe = np.where(valid, windows, 0)
    # bounds of each member: a constant member is [value, value]
    member_lo = np.where(has_var, in_lo, values)[safe]
    member_hi = np.where(has_var, in_hi, values)[safe]
    member_lo = np.where(valid, member_lo, -np.inf)
    member_hi = np.where(valid, member_hi, -np.inf)
    best = np.argmax(member_lo, axis=1)
    best_lo = member_lo[np.arange(windows.shape[0]), best]
    survive = valid & (member_hi > best_lo[:, None])
    survive[np.arange(windows.shape[0]), best] = True
    is_var = has_var[safe] & valid
    var_survivor = survive & is_var
    const_survivor = survive & ~is_var
    n_var = var_survivor.sum(axis=1)
    n_const = const_survivor.sum(axis=1)
    # constant survivors: at most the best one (another constant with a higher value
    # would have the largest lower bound); keep the largest value to be safe
    const_value = np.where(const_survivor, member_lo, -np.inf).max(axis=1)
    category = np.full(windows.shape[0], "active", dtype=object)
    category[n_var == 0] = "constant"
    category[(n_var + (n_const > 0)) > 1] = "unstable"
    rows = np.broadcast_to(np.arange(windows.shape[0])[:, None], windows.shape)
    structure = sp.csr_array(
        (np.ones(int(var_survivor.sum())), (rows[var_survivor], windows[var_survivor])),
        shape=(windows.shape[0], n_in),
    )
    post_constant = np.where(n_var == 0, const_value, 0.0)
    pre_constant = np.where(n_var == 0, const_value, np.where(n_const > 0, const_value, -np.inf))
    return category, post_constant, pre_constant, structure


def layer_size(plan: LayerPlan, relu_formulation: str) -> LayerSize:
    """What the formulation strategy adds for ``plan`` (without output variables or links)."""
    return formulation_for(plan.layer, relu_formulation).size(plan)


def build_layer(
    model: gp.Model,
    plan: LayerPlan,
    previous: gp.MVar,
    relu_formulation: str,
    name: Namer,
) -> gp.MVar:
    """Add the variables and constraints of one layer; return its variables (``plan.rows``).

    Parameters
    ----------
    model : gurobipy.Model
    plan : LayerPlan
    previous : gurobipy.MVar
        1-D variables of the previous layer's live neurons (or the input row).
    relu_formulation : {"bigm", "max", "indicator"}
    name : callable
        Maps a base name to a variable name (or None for no names).
    """
    return formulation_for(plan.layer, relu_formulation).build(model, plan, previous, name)


__all__ = [
    "CATEGORIES",
    "RELU_FORMULATIONS",
    "LayerPlan",
    "LayerSize",
    "affine_expression",
    "build_layer",
    "layer_size",
    "plan_network",
]
