"""What every formulation strategy shares: sizes, the validated formulation names, and the
lookup of the strategy object that formulates a layer.

A formulation strategy (:mod:`.relu` for affine layers with ReLU, :mod:`.maxpool` for
max-pooling layers) knows how large it makes a layer (``size(plan)``, read by the licence check
before anything is built) and how to build it (``build(model, plan, previous, name)``).
:func:`formulation_for` picks one from a validated name: an unknown name is an error, never a
fall-through to some default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gurobipy as gp
import numpy as np
import scipy.sparse as sp
from gurobipy import GRB

#: Names of the formulations of unstable neurons and windows (``relu_formulation=``).
RELU_FORMULATIONS = ("bigm", "max", "indicator")

#: Maps a base name to a variable or constraint name (or None for no names).
Namer = Callable[[str], "str | None"]


@dataclass
class LayerSize:
    """What one layer's formulation adds: variables, binaries, linear and general
    constraints, and nonzeros of the linear constraints."""

    variables: int = 0
    constraints: int = 0
    general: int = 0
    binaries: int = 0
    nonzeros: int = 0

    def __iadd__(self, other: LayerSize) -> LayerSize:
        self.variables += other.variables
        self.constraints += other.constraints
        self.general += other.general
        self.binaries += other.binaries
        self.nonzeros += other.nonzeros
        return self


def check_formulation(name: str) -> str:
    """Return ``name`` if it names a formulation, else raise ``ValueError`` listing them."""
    if not isinstance(name, str) or name not in RELU_FORMULATIONS:
        raise ValueError(
            f"unknown relu_formulation {name!r}; choose one of {', '.join(RELU_FORMULATIONS)}"
        )
    return name


def formulation_for(layer, relu_formulation: str):
    """The strategy object that formulates ``layer`` under ``relu_formulation``.

    Examples
    --------
    >>> import torch
    >>> from gurobi_sparse_surrogate.network import extract_layers
    >>> layer = extract_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)))[0]
    >>> type(formulation_for(layer, "bigm")).__name__
    'BigMReLU'
    >>> formulation_for(layer, "big-m")
    Traceback (most recent call last):
    ...
    ValueError: unknown relu_formulation 'big-m'; choose one of bigm, max, indicator
    """
    from .maxpool import MAX_POOL_FORMULATIONS
    from .relu import RELU_FORMULATION_OBJECTS

    check_formulation(relu_formulation)
    kind = getattr(layer, "kind", "affine")
    if kind == "maxpool":
        return MAX_POOL_FORMULATIONS[relu_formulation]
    if kind == "affine":
        return RELU_FORMULATION_OBJECTS[relu_formulation]
    raise ValueError(f"no formulation for layers of kind {kind!r} ({layer.name})")


def finite_bounds(a: np.ndarray) -> np.ndarray:
    """Bounds for Gurobi: infinities as ``GRB.INFINITY``."""
    return np.where(np.isfinite(a), a, np.where(a > 0, GRB.INFINITY, -GRB.INFINITY))


def row_nonzeros(weight: sp.csr_array) -> np.ndarray:
    """Stored entries per row."""
    return np.diff(weight.indptr)


def affine_expression(plan, previous: gp.MVar):
    """``W x + b`` of the layer's live neurons, over the previous layer's variables (never
    empty: a live neuron reads at least one variable, or planning makes it a constant)."""
    return plan.weight @ previous + plan.offset
