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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gurobipy as gp
import numpy as np
import scipy.sparse as sp
from gurobipy import GRB

from ..network.extraction import Layer

#: ReLU formulations for unstable neurons.
RELU_FORMULATIONS = ("bigm", "max", "indicator")

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
    for layer, lo, hi in zip(layers, lower, upper, strict=True):
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
        forward.append((category, post_constant, pre_constant))
        has_var = (category == "active") | (category == "unstable")
        values = post_constant
    # Backward: drop neurons with a variable that no needed neuron reads.
    needed = np.ones(layers[-1].n_out, dtype=bool)
    for index in range(len(layers) - 1, -1, -1):
        category = forward[index][0]
        category[((category == "active") | (category == "unstable")) & ~needed] = "unread"
        rows = np.flatnonzero((category == "active") | (category == "unstable"))
        needed = _columns_read(layers[index].weight, rows, layers[index].n_in)
    # Restrict each layer's weights to the variables of both ends.
    plans: list[LayerPlan] = []
    prev_rows = np.arange(layers[0].n_in)
    for index, layer in enumerate(layers):
        category, post_constant, pre_constant = forward[index]
        rows = np.flatnonzero((category == "active") | (category == "unstable"))
        weight = sp.csr_array(layer.weight[rows][:, prev_rows])
        weight.eliminate_zeros()
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
            )
        )
        prev_rows = rows
    return plans


@dataclass
class LayerSize:
    """Variables and constraints that one layer's formulation adds."""

    variables: int = 0
    constraints: int = 0
    general: int = 0
    binaries: int = 0

    def __iadd__(self, other: LayerSize) -> LayerSize:
        self.variables += other.variables
        self.constraints += other.constraints
        self.general += other.general
        self.binaries += other.binaries
        return self


def layer_size(plan: LayerPlan, relu_formulation: str) -> LayerSize:
    """What :func:`build_layer` adds for ``plan`` (without output variables or links)."""
    n = len(plan.rows)
    n_unstable = int(plan.unstable.sum())
    if relu_formulation == "bigm":
        return LayerSize(n + n_unstable, n + 2 * n_unstable, 0, n_unstable)
    if relu_formulation == "max":
        return LayerSize(n + n_unstable, n, n_unstable, 0)
    return LayerSize(n + n_unstable, n, 2 * n_unstable, n_unstable)


def _finite(a: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(a), a, np.where(a > 0, GRB.INFINITY, -GRB.INFINITY))


def affine_expression(plan: LayerPlan, previous: gp.MVar) -> gp.MLinExpr | np.ndarray:
    """``W x + b`` of the layer's live neurons, over the previous layer's variables."""
    if previous.size == 0:
        return plan.offset.copy()
    return plan.weight @ previous + plan.offset


def build_layer(
    model: gp.Model,
    plan: LayerPlan,
    previous: gp.MVar,
    relu_formulation: str,
    name: Callable[[str], str | None],
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
    n = len(plan.rows)
    if n == 0:
        return model.addMVar(0)
    lo, hi = plan.lower, plan.upper
    affine = affine_expression(plan, previous)
    if not plan.layer.relu:
        out = model.addMVar(n, lb=_finite(lo), ub=_finite(hi), name=name("z"))
        model.addConstr(out == affine, name=name("linear"))
        return out
    out = model.addMVar(n, lb=_finite(np.maximum(lo, 0.0)), ub=_finite(hi), name=name("h"))
    active = ~plan.unstable
    if active.any():
        model.addConstr(out[active] == affine[active], name=name("active"))
    if not plan.unstable.any():
        return out
    u = plan.unstable
    h, z_expr = out[u], affine[u]
    if relu_formulation == "bigm":
        delta = model.addMVar(int(u.sum()), vtype=GRB.BINARY, name=name("relu_on"))
        model.addConstr(h >= z_expr, name=name("relu_lower"))
        model.addConstr(h <= z_expr - lo[u] + lo[u] * delta, name=name("relu_upper_on"))
        model.addConstr(h <= hi[u] * delta, name=name("relu_upper_off"))
    elif relu_formulation == "max":
        z = model.addMVar(int(u.sum()), lb=_finite(lo[u]), ub=_finite(hi[u]), name=name("z"))
        model.addConstr(z == z_expr, name=name("pre_activation"))
        for j in range(z.size):
            model.addGenConstrMax(h[j].item(), [z[j].item()], constant=0.0, name=name("relu"))
    elif relu_formulation == "indicator":
        delta = model.addMVar(int(u.sum()), vtype=GRB.BINARY, name=name("relu_on"))
        model.addConstr(h >= z_expr, name=name("relu_lower"))
        model.addGenConstrIndicator(delta, True, h - z_expr == 0.0, name=name("relu_on_eq"))
        model.addGenConstrIndicator(delta, False, h <= 0.0, name=name("relu_off"))
    else:  # pragma: no cover - validated by the caller
        raise ValueError(relu_formulation)
    return out
