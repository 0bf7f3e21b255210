"""Linear-relaxation bounds (CROWN / DeepPoly back-substitution) on sparse matrices.

Every ReLU neuron with pre-activation bounds ``[l, u]`` is replaced by two linear functions of
its pre-activation ``z``:

* stable active (``l >= 0``): ``h = z``; stable inactive (``u <= 0``): ``h = 0``;
* unstable: above by the chord through ``(l, 0)`` and ``(u, u)``, below by ``h >= z`` when
  ``u >= -l`` and ``h >= 0`` otherwise (the CROWN heuristic).

The bound of a neuron of layer ``i`` is a linear function of the values entering layer ``i``;
substituting the relaxations and the affine maps backwards turns it into a linear function
``A x + c`` of the network input, whose extremes over the input box (or the exact support
function of the input domain) bound the neuron. All steps are ``scipy.sparse`` products and
diagonal scalings, so the cost follows the nonzeros. No solver is involved.

The method ``"linear"`` (interval, then this stage) is declared in
:mod:`gurobi_sparse_surrogate.bounds.recipes`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .problem import BoundingProblem

__all__ = [
    "LinearStage",
    "back_substitute",
    "concretize_box",
    "max_pool_relaxation",
    "relu_relaxation",
]

#: Relative outward padding of every linear bound against floating-point rounding.
ROUNDING_PAD = 1e-9


def relu_relaxation(
    lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear relaxation of ``h = max(z, 0)`` for ``lower <= z <= upper``.

    Parameters
    ----------
    lower, upper : numpy.ndarray
        Pre-activation bounds, shape ``(n,)``; infinities are allowed.

    Returns
    -------
    upper_slope, upper_intercept, lower_slope : numpy.ndarray
        ``lower_slope * z <= h <= upper_slope * z + upper_intercept`` on ``[lower, upper]``.
        ``upper_intercept`` is ``+inf`` for an unstable neuron with both bounds infinite.

    Examples
    --------
    >>> relu_relaxation(np.array([-1.0, 1.0, -2.0]), np.array([3.0, 2.0, -1.0]))
    (array([0.75, 1.  , 0.  ]), array([0.75, 0.  , 0.  ]), array([1., 1., 0.]))
    """
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    active = lower >= 0
    unstable = (lower < 0) & (upper > 0)
    slope = active.astype(np.float64)
    intercept = np.zeros_like(slope)
    both = unstable & np.isfinite(lower) & np.isfinite(upper)
    with np.errstate(invalid="ignore", divide="ignore"):
        chord = upper / (upper - lower)
    slope[both] = chord[both]
    intercept[both] = -chord[both] * lower[both]
    low_inf = unstable & ~np.isfinite(lower) & np.isfinite(upper)  # h <= u
    intercept[low_inf] = upper[low_inf]
    up_inf = unstable & np.isfinite(lower) & ~np.isfinite(upper)  # h <= z - l
    slope[up_inf] = 1.0
    intercept[up_inf] = -lower[up_inf]
    intercept[unstable & ~np.isfinite(lower) & ~np.isfinite(upper)] = np.inf
    lower_slope = np.where(active | (unstable & (upper >= -lower)), 1.0, 0.0)
    return slope, intercept, lower_slope


#: Coefficient matrices denser than this are handled as dense arrays (faster than CSR).
DENSE_THRESHOLD = 0.25


def _split(matrix):
    """Positive and negative parts (no stored zeros when sparse)."""
    if not sp.issparse(matrix):
        return np.maximum(matrix, 0.0), np.minimum(matrix, 0.0)
    positive = sp.csr_array(matrix.maximum(0))
    negative = sp.csr_array(matrix.minimum(0))
    positive.eliminate_zeros()
    negative.eliminate_zeros()
    return positive, negative


def _matvec(matrix, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` where a zero coefficient times an infinite entry counts as 0."""
    if sp.issparse(matrix):
        return np.asarray(matrix @ vector)
    finite = np.isfinite(vector)
    if finite.all():
        return matrix @ vector
    out = matrix[:, finite] @ vector[finite]
    block = matrix[:, ~finite]
    with np.errstate(invalid="ignore"):
        infinite = np.where(block != 0, block * vector[~finite], 0.0).sum(axis=1)
    return out + infinite


def _maybe_dense(matrix):
    if sp.issparse(matrix) and matrix.nnz > DENSE_THRESHOLD * np.prod(matrix.shape):
        return matrix.toarray()
    return matrix


def back_substitute(
    problem: BoundingProblem, index: int, sample: int, coef: sp.csr_array, const: np.ndarray
) -> tuple[sp.csr_array, np.ndarray]:
    """Upper-bound ``coef @ h + const`` (``h`` enters layer ``index``) by a function of the input.

    Parameters
    ----------
    problem : BoundingProblem
        With the bounds of layers ``0 .. index-1`` computed.
    index : int
        The layer whose input ``h`` is read.
    sample : int
        Which row of the bound arrays to use.
    coef : scipy.sparse.csr_array
        Shape ``(m, n_in of layer index)``.
    const : numpy.ndarray
        Shape ``(m,)``.

    Returns
    -------
    A, c : scipy.sparse.csr_array or numpy.ndarray, numpy.ndarray
        ``coef @ h + const <= A @ x + c`` for every input ``x`` of the domain (``c`` may hold
        ``+inf``). ``A`` turns into a dense array once it is denser than
        :data:`DENSE_THRESHOLD`.

    Examples
    --------
    >>> import torch
    >>> from gurobi_sparse_surrogate.network import extract_layers
    >>> from gurobi_sparse_surrogate.bounds import BoundingProblem
    >>> layers = extract_layers(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()))
    >>> p = BoundingProblem(layers, np.zeros((1, 2)), np.ones((1, 2)))
    >>> A, c = back_substitute(p, 0, 0, sp.csr_array(np.eye(2)), np.zeros(2))
    >>> A.shape
    (2, 2)
    """
    coef = _maybe_dense(sp.csr_array(coef, dtype=np.float64))
    const = np.asarray(const, dtype=np.float64).copy()
    for j in range(index - 1, -1, -1):
        layer = problem.layers[j]
        if layer.is_maxpool:
            in_lo, in_hi = problem.layer_input_bounds(j)
            coef, const = _through_max_pool(coef, const, layer, in_lo[sample], in_hi[sample])
            continue
        if layer.relu:
            slope, intercept, lower_slope = relu_relaxation(
                problem.lower[j][sample], problem.upper[j][sample]
            )
            positive, negative = _split(coef)
            const = const + _matvec(positive, intercept)
            if sp.issparse(coef):
                coef = sp.csr_array(positive @ sp.diags_array(slope)) + sp.csr_array(
                    negative @ sp.diags_array(lower_slope)
                )
                coef.eliminate_zeros()
            else:
                coef = positive * slope + negative * lower_slope
        const = const + coef @ layer.bias
        if sp.issparse(coef):
            coef = sp.csr_array(coef @ layer.weight)
            coef.eliminate_zeros()
            coef = _maybe_dense(coef)
        else:
            coef = np.asarray((layer.weight.T @ coef.T).T)
    return coef, const


def max_pool_relaxation(
    windows: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[sp.csr_array, sp.csr_array, np.ndarray]:
    """Linear relaxation of ``y_r = max(x_i : i in window r)`` for ``lower <= x <= upper``.

    Below: ``y_r >= x_b`` for the input ``b`` with the largest lower bound. Above: ``y_r = x_b``
    when ``b`` dominates (its lower bound is at least every other input's upper bound), else
    the constant ``y_r <= max_i upper_i``.

    Returns
    -------
    upper_select, lower_select : scipy.sparse.csr_array
        ``(n_out, n_in)`` 0/1 matrices.
    upper_constant : numpy.ndarray
        ``x`` of ``y <= upper_select @ x + upper_constant`` (``+inf`` possible).

    Examples
    --------
    >>> up, low, c = max_pool_relaxation(np.array([[0, 1]]), np.array([0.0, 2.0]),
    ...                                  np.array([1.0, 3.0]))
    >>> up.toarray(), low.toarray(), c
    (array([[0., 1.]]), array([[0., 1.]]), array([0.]))
    """
    n_out, n_in = windows.shape[0], lower.size
    valid = windows >= 0
    safe = np.where(valid, windows, 0)
    lo = np.where(valid, lower[safe], -np.inf)
    hi = np.where(valid, upper[safe], -np.inf)
    best = np.argmax(lo, axis=1)
    rows = np.arange(n_out)
    best_lo = lo[rows, best]
    others = hi.copy()
    others[rows, best] = -np.inf
    dominant = best_lo >= others.max(axis=1)
    pick = windows[rows, best]
    lower_select = sp.csr_array((np.ones(n_out), (rows, pick)), shape=(n_out, n_in))
    upper_select = sp.csr_array(
        (np.ones(int(dominant.sum())), (rows[dominant], pick[dominant])), shape=(n_out, n_in)
    )
    upper_constant = np.where(dominant, 0.0, hi.max(axis=1))
    return upper_select, lower_select, upper_constant


def _through_max_pool(coef, const, layer, in_lo, in_hi):
    """Upper-bound ``coef @ y + const`` (``y`` the pool's output) by a function of its input."""
    upper_select, lower_select, upper_constant = max_pool_relaxation(layer.windows, in_lo, in_hi)
    positive, negative = _split(coef)
    const = const + _matvec(positive, upper_constant)
    if sp.issparse(coef):
        coef = sp.csr_array(positive @ upper_select) + sp.csr_array(negative @ lower_select)
        coef.eliminate_zeros()
        return _maybe_dense(coef), const
    coef = np.asarray((upper_select.T @ positive.T).T) + np.asarray((lower_select.T @ negative.T).T)
    return coef, const


def concretize_box(coef, const: np.ndarray, lower: np.ndarray, upper: np.ndarray):
    """Maximum of ``coef @ x + const`` over the box ``lower <= x <= upper``.

    Only stored nonzeros read the box, so an infinite bound multiplied by a zero coefficient
    contributes nothing (never NaN).

    Examples
    --------
    >>> concretize_box(sp.csr_array(np.array([[1.0, -2.0, 0.0]])), np.array([1.0]),
    ...                np.array([0.0, 0.0, -np.inf]), np.array([1.0, 1.0, np.inf]))
    array([2.])
    """
    positive, negative = _split(coef)
    return const + _matvec(positive, upper) + _matvec(negative, lower)


class LinearStage:
    """Back-substitution of linear ReLU relaxations to the input (CROWN / DeepPoly).

    Uses the domain's exact support function (``domain.first_layer_bounds``) at the input when
    the problem has a domain, intersected with the input box. One loop over the samples; the
    rest is sparse linear algebra.
    """

    name = "linear"
    supports_max_pool = True

    def layer_bounds(self, problem, index, lower, upper):
        layer = problem.layers[index]
        m = layer.n_out
        stacked = sp.csr_array(sp.vstack([layer.weight, -layer.weight], format="csr"))
        stacked_bias = np.concatenate([layer.bias, -layer.bias])
        new_lo = np.full_like(lower, -np.inf)
        new_hi = np.full_like(upper, np.inf)
        for s in range(problem.n_samples):
            coef, const = back_substitute(problem, index, s, stacked, stacked_bias)
            best = concretize_box(coef, const, problem.input_lower[s], problem.input_upper[s])
            if problem.domain is not None:
                best = np.minimum(best, _domain_maximum(problem.domain, coef, const))
            best = np.where(np.isnan(best), np.inf, best)
            best = best + ROUNDING_PAD * (1.0 + np.abs(best))
            new_hi[s] = best[:m]
            new_lo[s] = -best[m:]
        return new_lo, new_hi


def _domain_maximum(domain, coef: sp.csr_array, const: np.ndarray) -> np.ndarray:
    """Exact maximum of each row of ``coef @ x + const`` over the domain (inf rows kept)."""
    finite = np.isfinite(const)
    _, d_hi = domain.first_layer_bounds(sp.csr_array(coef), np.where(finite, const, 0.0))
    return np.where(finite, np.asarray(d_hi, dtype=np.float64).reshape(-1), np.inf)
