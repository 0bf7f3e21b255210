"""Interval arithmetic on sparse matrices: the first bounding stage of every method.

On the first layer, an input domain gives the exact range of every neuron (its support
function, :meth:`~gurobi_sparse_surrogate.domains.Domain.first_layer_bounds`), intersected
with the interval bounds of the input box.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from .problem import BoundingProblem

__all__ = ["IntervalStage", "interval_affine", "max_pool_bounds", "post_activation"]


def post_activation(
    lower: np.ndarray, upper: np.ndarray, relu: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds after the layer's activation."""
    if relu:
        return np.maximum(lower, 0.0), np.maximum(upper, 0.0)
    return lower, upper


def interval_affine(
    weight: sp.csr_array, bias: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Interval arithmetic for ``W x + b`` with ``lower <= x <= upper`` (rows are samples).

    Only stored nonzeros take part, so an infinite input bound read by a zero weight does not
    turn into NaN.

    Examples
    --------
    >>> lo, hi = interval_affine(sp.csr_array(np.array([[1.0, -2.0]])), np.array([0.5]),
    ...                          np.zeros((1, 2)), np.ones((1, 2)))
    >>> lo.tolist(), hi.tolist()
    ([[-1.5]], [[1.5]])
    """
    positive = weight.maximum(0)
    negative = weight.minimum(0)
    lo = (positive @ lower.T + negative @ upper.T).T + bias
    hi = (positive @ upper.T + negative @ lower.T).T + bias
    return np.asarray(lo), np.asarray(hi)


def max_pool_bounds(layer, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of a max-pooling layer: the max of its window's lower and upper bounds.

    ``lower`` and ``upper`` are ``(k, n_in)`` bounds of the pooled values. The upper bound is
    exact when the inputs' upper bounds are; the lower bound is sound (the max is at least any
    input).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> pool = SimpleNamespace(windows=np.array([[0, 1], [1, -1]]))
    >>> max_pool_bounds(pool, np.array([[0.0, -1.0]]), np.array([[1.0, 3.0]]))
    (array([[ 0., -1.]]), array([[3., 3.]]))
    """
    pad = np.full((lower.shape[0], 1), -np.inf)
    lo = np.concatenate([lower, pad], axis=1)[:, layer.windows].max(axis=2)
    hi = np.concatenate([upper, pad], axis=1)[:, layer.windows].max(axis=2)
    return lo, hi


class IntervalStage:
    """Interval arithmetic; on the first layer the domain's exact bounds when a domain is given."""

    name = "interval"
    supports_max_pool = True

    def layer_bounds(
        self, problem: BoundingProblem, index: int, lower: np.ndarray, upper: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        layer = problem.layers[index]
        in_lo, in_hi = problem.layer_input_bounds(index)
        lo, hi = interval_affine(layer.weight, layer.bias, in_lo, in_hi)
        if index == 0 and problem.domain is not None:
            d_lo, d_hi = problem.domain.first_layer_bounds(layer.weight, layer.bias)
            lo = np.maximum(lo, np.asarray(d_lo)[None, :])
            hi = np.minimum(hi, np.asarray(d_hi)[None, :])
        return lo, hi
