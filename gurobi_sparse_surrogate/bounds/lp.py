"""Optimisation-based bounds: LP and MILP on each neuron's cone of influence.

For a neuron of layer ``i`` that is still unstable, the LP stage minimises and maximises its
pre-activation over a relaxation of the network restricted to its *cone of influence*: the
inputs and earlier neurons with a nonzero path to it (stable-inactive neurons cut paths, so a
pruned network has small cones). Unstable ReLUs of the cone get the triangle relaxation from
their already proven bounds; the MILP stage uses a binary and big-M constraints instead. The
input domain adds its own rows (:meth:`~gurobi_sparse_surrogate.domains.Domain.lp_rows`).

Soundness:

* LP bounds are not read from the primal objective: the duals of the optimal basis give a
  Lagrangian bound ``y'b + sum_k min(r_k lb_k, r_k ub_k)`` (``r = c - A'y``, Neumaier and
  Shcherbina) that is valid for *any* multipliers of the right sign, so solver tolerances
  cannot make it cut a reachable value; it is padded by ``1e-9 (1 + |v|)`` against rounding.
  When a variable bound is infinite this bound can be infinite; the padded objective value is
  used then (``1e-6 (1 + |v|) + FeasibilityTol * ||w||_1``).
  The safe bound is also padded by ``1e-12`` of the sum of its terms' absolute values (the
  float64 rounding of a sum of large terms that cancel).
* MILP bounds are the solver's proven bound (``ObjBound``), never the incumbent, padded
  relative to the magnitudes involved: ``1e-6 (1 + |v|) + 1e-6 sum |w| max(|l|, |u|)`` over
  the values the objective reads. The solver cannot be trusted where its tolerances are small
  against the numbers: a cone model whose coefficient range exceeds
  ``milp_max_coefficient_range`` (1e9) or whose bounds exceed ``milp_max_magnitude`` (1e7)
  is not solved, and the stage stops for that layer (a ``"refused"`` record). Every LP and
  MILP bound must also keep the values the neuron takes at known feasible inputs (the known
  points and the solves' own points) and must not cross the neuron's other proven bound;
  a bound that fails this check is discarded and the stage stops for the layer, likewise.
  A solve that does not end OPTIMAL (or, for the MILP, with a bound) changes nothing.

Cost control: neurons already stable are skipped, and so is every solve whose result cannot
change stability because a known feasible input already puts the neuron on that side of zero
(the ``points`` option, the domain's centre, and the inputs of earlier solves, evaluated with
a forward pass). One persistent, single-threaded Gurobi model per group of neurons (groups
whose cones fit the licence) is re-optimised with a new objective, so the simplex
warm-starts. The settings (time budget, size limits, ...) are the fields of
:class:`~gurobi_sparse_surrogate.bounds.BoundOptions`; what each stage did on each layer is
in its :class:`~gurobi_sparse_surrogate.bounds.records.StageRecord`. The methods built from
these stages (``"lp"``, ``"milp"``, ``"auto"``) are declared in
:mod:`gurobi_sparse_surrogate.bounds.recipes`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import gurobipy as gp
import numpy as np
import scipy.sparse as sp
from gurobipy import GRB

from ..network.extraction import layers_forward
from ..verbosity import progress_note
from .problem import BoundingProblem
from .records import StageRecord

__all__ = [
    "LPStage",
    "MILPStage",
    "cones_of_influence",
    "safe_lagrangian_bound",
    "yield_allowance",
]

logger = logging.getLogger(__name__)

_FEAS_TOL = 1e-9
_OBJ_PAD = 1e-6
#: Relative accuracy assumed of a MILP's ``ObjBound`` against the magnitudes in its objective
#: (``sum |w| max(|l|, |u|)``): a thousand times the tolerances the cone models are solved with.
_MILP_REL_PAD = 1e-6


def cones_of_influence(problem: BoundingProblem, index: int, sample: int) -> sp.csr_array:
    """Boolean cone of influence of every neuron of layer ``index``.

    Parameters
    ----------
    problem : BoundingProblem
        With bounds of layers ``0 .. index-1``.
    index, sample : int

    Returns
    -------
    scipy.sparse.csr_array
        Shape ``(n_index, n_in + n_0 + ... + n_{index-1})``, boolean: entry ``(t, v)`` is True
        when input or neuron ``v`` has a nonzero path to neuron ``t`` that avoids neurons proven
        inactive (their output is the constant 0).

    Examples
    --------
    >>> import torch
    >>> from gurobi_sparse_surrogate.network import extract_layers
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
    ...     _ = net[2].weight.copy_(torch.tensor([[1.0, 0]]))
    >>> layers = extract_layers(net)
    >>> p = BoundingProblem(layers, -np.ones((1, 3)), np.ones((1, 3)))
    >>> p.lower.append(np.array([[-1.0, -1.0]])); p.upper.append(np.array([[1.0, 1.0]]))
    >>> cones_of_influence(p, 1, 0).toarray().astype(int)
    array([[1, 0, 0, 1, 0]])
    """
    blocks = []
    reach = _pattern(problem.layers[index].weight)
    for j in range(index - 1, -1, -1):
        layer = problem.layers[j]
        alive = np.ones(layer.n_out, dtype=bool)
        if layer.relu:
            alive = problem.upper[j][sample] > 0
        reach = sp.csr_array(reach @ sp.diags_array(alive.astype(np.float64)))
        reach.eliminate_zeros()
        blocks.append(reach)
        reach = _pattern(reach @ _pattern(layer.weight))
    blocks.append(reach)
    return sp.csr_array(sp.hstack(blocks[::-1], format="csr") != 0)


def _pattern(matrix) -> sp.csr_array:
    out = sp.csr_array(matrix, dtype=np.float64, copy=True)
    out.eliminate_zeros()
    out.data[:] = 1.0
    return out


def safe_lagrangian_bound(
    A: sp.csr_array,
    sense: np.ndarray,
    rhs: np.ndarray,
    obj: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    duals: np.ndarray,
    return_scale: bool = False,
) -> float | tuple[float, float]:
    """A lower bound on ``min obj'x s.t. A x (sense) rhs, lb <= x <= ub`` from any multipliers.

    Multipliers of the wrong sign are clipped (``>=`` rows: ``y >= 0``; ``<=`` rows:
    ``y <= 0``), which keeps the bound valid whatever their accuracy. With ``return_scale``
    the sum of the absolute values of the bound's terms is returned too (the float64 rounding
    of the bound is relative to it).

    Examples
    --------
    >>> A = sp.csr_array(np.array([[1.0, 1.0]]))
    >>> safe_lagrangian_bound(A, np.array(["<"]), np.array([1.0]), np.array([-1.0, -2.0]),
    ...                       np.zeros(2), np.ones(2), np.array([-1.0]))
    -2.0
    """
    y = np.asarray(duals, dtype=np.float64).copy()
    y[sense == ">"] = np.maximum(y[sense == ">"], 0.0)
    y[sense == "<"] = np.minimum(y[sense == "<"], 0.0)
    reduced = obj - A.T @ y
    with np.errstate(invalid="ignore"):
        terms = np.where(reduced > 0, reduced * lb, np.where(reduced < 0, reduced * ub, 0.0))
    value = float(y @ rhs + terms.sum())
    value = -np.inf if np.isnan(value) else value
    if return_scale:
        with np.errstate(invalid="ignore"):
            scale = float(np.abs(y * rhs).sum() + np.abs(terms).sum())
        return value, scale
    return value


# --------------------------------------------------------------------------- known points


def _reference_point(problem: BoundingProblem, sample: int) -> np.ndarray | None:
    """A feasible input: the domain's centre (if it lies in the domain), else the box centre."""
    lo, hi = _domain_box(problem, sample)
    domain = problem.domain
    if domain is None:
        return np.clip(np.where(np.isfinite(lo) & np.isfinite(hi), (lo + hi) / 2, 0.0), lo, hi)
    point = np.clip(np.asarray(domain.center, dtype=np.float64).reshape(-1), lo, hi)
    return point if domain.contains(point) else None


def _sample_points(problem: BoundingProblem, sample: int) -> np.ndarray:
    """Known feasible inputs of ``sample``: the reference point and the given points inside."""
    known = problem.state.points
    if sample not in known:
        reference = _reference_point(problem, sample)
        pts = [np.zeros((0, problem.layers[0].n_in))]
        if reference is not None:
            pts.append(reference[None, :])
        given = problem.options.points
        if given is not None:
            lo, hi = problem.input_lower[sample], problem.input_upper[sample]
            inside = np.all((given >= lo) & (given <= hi), axis=1)
            if problem.domain is not None:
                inside &= np.asarray(problem.domain.contains(given), dtype=bool).reshape(-1)
            pts.append(given[inside])
        known[sample] = np.vstack(pts)
    return known[sample]


def _domain_box(problem: BoundingProblem, sample: int) -> tuple[np.ndarray, np.ndarray]:
    """The input box intersected with the domain's bounding box."""
    lo = problem.input_lower[sample].copy()
    hi = problem.input_upper[sample].copy()
    if problem.domain is not None:
        lo = np.maximum(lo, problem.domain.lower)
        hi = np.minimum(hi, problem.domain.upper)
    return lo, np.maximum(hi, lo)


# --------------------------------------------------------------------------- the cone model


@dataclass
class _Builder:
    """Columns and rows of a model, accumulated as arrays (rows as COO triplets)."""

    lb: list = field(default_factory=list)
    ub: list = field(default_factory=list)
    vtype: list = field(default_factory=list)
    sense: list = field(default_factory=list)
    rhs: list = field(default_factory=list)
    triplets: list = field(default_factory=list)
    n_cols: int = 0
    n_rows: int = 0

    def cols(self, lower: np.ndarray, upper: np.ndarray, kind: str = "C") -> np.ndarray:
        """Add columns; returns their indices."""
        self.lb.append(lower)
        self.ub.append(upper)
        self.vtype.append(np.full(lower.size, kind))
        idx = np.arange(self.n_cols, self.n_cols + lower.size)
        self.n_cols += lower.size
        return idx

    def rows(self, r, c, v, sense, rhs) -> None:
        """Add ``rhs.size`` rows given by triplets (``r`` counts from 0 for the first new row)."""
        rhs = np.asarray(rhs, dtype=np.float64)
        self.triplets.append((r + self.n_rows, c, v))
        self.sense.append(np.broadcast_to(sense, rhs.shape))
        self.rhs.append(rhs)
        self.n_rows += rhs.size

    def terms(self, columns: list, coefs: list, sense: str, rhs) -> None:
        """Add rows ``sum_i coefs[i][k] * x[columns[i][k]] (sense) rhs[k]``, one per ``k``."""
        n = columns[0].size
        k = np.arange(n)
        self.rows(
            np.tile(k, len(columns)),
            np.concatenate(columns),
            np.concatenate([np.broadcast_to(np.asarray(c, dtype=np.float64), n) for c in coefs]),
            sense,
            np.broadcast_to(np.asarray(rhs, dtype=np.float64), n),
        )

    def arrays(self):
        """``A, lb, ub, sense, rhs, vtype`` of everything added."""
        r, c, v = (
            (np.concatenate([t[i] for t in self.triplets]) for i in range(3))
            if self.triplets
            else (np.array([], int), np.array([], int), np.array([]))
        )
        A = sp.csr_array((v, (r, c)), shape=(self.n_rows, self.n_cols))
        sense = np.concatenate(self.sense) if self.sense else np.array([], dtype="<U1")
        rhs = np.concatenate(self.rhs) if self.rhs else np.array([])
        return (
            A,
            np.concatenate(self.lb),
            np.concatenate(self.ub),
            sense,
            rhs,
            np.concatenate(self.vtype),
        )


def _add_layer(builder, layer, lo, hi, idx, prev_idx, prev_cols, integral) -> np.ndarray:
    """Neurons ``idx`` of ``layer`` (``z = W h_prev + b``, then the ReLU); their output columns."""
    z_cols = builder.cols(lo.copy(), hi.copy())
    w = sp.coo_array(layer.weight[idx][:, prev_idx])
    builder.rows(
        np.concatenate([np.arange(idx.size), w.row]),
        np.concatenate([z_cols, prev_cols[w.col]]),
        np.concatenate([np.ones(idx.size), -w.data]),
        "=",
        layer.bias[idx],
    )
    if not layer.relu:
        return z_cols
    return _add_relu(builder, z_cols, lo, hi, integral)


def _add_relu(builder, z_cols, lo, hi, integral) -> np.ndarray:
    """``h = max(z, 0)`` relaxed: stable active ``h = z``, unstable a new ``h`` column with
    ``h >= z`` and the chord (LP) or a binary and big-M rows (MILP, finite bounds)."""
    ui = np.flatnonzero((lo < 0) & (hi > 0))
    h = builder.cols(np.zeros(ui.size), np.maximum(hi[ui], 0.0))
    h_cols = z_cols.copy()
    h_cols[ui] = h
    z, lu, uu = z_cols[ui], lo[ui], hi[ui]
    builder.terms([h, z], [1.0, -1.0], ">", 0.0)  # h >= z
    finite = np.isfinite(lu) & np.isfinite(uu)
    triangle = np.arange(ui.size)
    if integral:
        fb = np.flatnonzero(finite)
        a = builder.cols(np.zeros(fb.size), np.ones(fb.size), "B")
        builder.terms([h[fb], z[fb], a], [1.0, -1.0, -lu[fb]], "<", -lu[fb])  # h-z-l a <= -l
        builder.terms([h[fb], a], [1.0, -uu[fb]], "<", 0.0)  # h - u a <= 0
        triangle = np.flatnonzero(~finite)
    tf = triangle[finite[triangle]]
    slope = uu[tf] / (uu[tf] - lu[tf])
    # h - s z <= -s l  (chord); with l = -inf, h <= u is the variable bound.
    builder.terms([h[tf], z[tf]], [1.0, -slope], "<", -slope * lu[tf])
    ti = triangle[np.isfinite(lu[triangle]) & ~np.isfinite(uu[triangle])]
    builder.terms([h[ti], z[ti]], [1.0, -1.0], "<", -lu[ti])  # h - z <= -l
    return h_cols


def _add_max_pool(builder, layer, lo, hi, idx, prev_idx, prev_cols, in_lo, integral):
    """Pooled neurons ``idx`` of a max-pooling layer; their output columns.

    Rows: ``z >= h_c`` for every window input ``c`` in the cone; ``z - L <= sum_c (h_c - l_c)``
    (``L`` the pooled lower bound, the largest ``l_c``: the max exceeds ``L`` by at most the
    winner's own excess over its lower bound); in a MILP a binary ``d_c`` per input with
    ``sum d = 1`` and ``z <= h_c + (U - l_c)(1 - d_c)``. Window inputs outside the cone are
    inactive ReLUs (the constant 0, not above the pooled lower bound) and are left out.
    ``in_lo`` holds the lower bounds of the previous layer's values at ``prev_idx``.
    """
    z_cols = builder.cols(lo.copy(), hi.copy())
    w = sp.coo_array(layer.weight[idx][:, prev_idx])
    builder.terms([z_cols[w.row], prev_cols[w.col]], [1.0, -1.0], ">", 0.0)  # z >= h_c
    member_lo = in_lo[w.col]
    excess = np.zeros(idx.size)
    np.add.at(excess, w.row, member_lo)
    finite = np.isfinite(lo) & np.isfinite(excess) & (np.bincount(w.row, minlength=idx.size) > 0)
    rows = np.flatnonzero(finite)
    keep = finite[w.row]
    remap = np.full(idx.size, -1)
    remap[rows] = np.arange(rows.size)
    builder.rows(  # z - sum_c h_c <= L - sum_c l_c
        np.concatenate([remap[rows], remap[w.row[keep]]]),
        np.concatenate([z_cols[rows], prev_cols[w.col[keep]]]),
        np.concatenate([np.ones(rows.size), -np.ones(int(keep.sum()))]),
        "<",
        lo[rows] - excess[rows],
    )
    if not integral:
        return z_cols
    big_m = hi[w.row] - member_lo
    usable = np.ones(idx.size, dtype=bool)
    np.logical_and.at(usable, w.row, np.isfinite(big_m))
    ku = np.flatnonzero(usable[w.row])
    d = builder.cols(np.zeros(ku.size), np.ones(ku.size), "B")
    builder.terms(  # z - h_c + M d_c <= M
        [z_cols[w.row[ku]], prev_cols[w.col[ku]], d], [1.0, -1.0, big_m[ku]], "<", big_m[ku]
    )
    pooled = np.unique(w.row[ku])
    position = np.full(idx.size, -1)
    position[pooled] = np.arange(pooled.size)
    builder.rows(position[w.row[ku]], d, np.ones(ku.size), "=", np.ones(pooled.size))
    return z_cols


def _add_domain_rows(builder, domain, input_idx: np.ndarray) -> None:
    """The domain's own rows on the cone's inputs (the first columns of the model)."""
    if domain is None or input_idx.size == 0:
        return
    rows = domain.lp_rows(input_idx)
    if rows.n_rows == 0 and rows.n_aux == 0:
        return
    aux = builder.cols(
        np.asarray(rows.aux_lower, dtype=np.float64), np.asarray(rows.aux_upper, dtype=np.float64)
    )
    local = np.concatenate([np.arange(input_idx.size), aux])
    matrix = sp.coo_array(rows.matrix)
    builder.rows(matrix.row, local[matrix.col], matrix.data, np.asarray(rows.sense), rows.rhs)


class _ConeModel:
    """A Gurobi model of the relaxed network restricted to a set of cone nodes.

    Columns: the cone's inputs first, then per layer its cone neurons' pre-activations ``z``
    and ReLU outputs ``h`` (and binaries), then the domain's auxiliary variables.
    """

    def __init__(self, problem, index, sample, nodes, offsets, integral, env):
        layers = problem.layers
        builder = _Builder()
        self.input_idx = np.flatnonzero(nodes[: layers[0].n_in])
        in_lo, in_hi = _domain_box(problem, sample)
        prev_idx = self.input_idx
        prev_cols = builder.cols(in_lo[prev_idx], in_hi[prev_idx])
        for j in range(index):
            idx = np.flatnonzero(nodes[offsets[j] : offsets[j + 1]])
            lo, hi = problem.lower[j][sample][idx], problem.upper[j][sample][idx]
            if layers[j].is_maxpool:
                in_lo = problem.layer_input_bounds(j)[0][sample][prev_idx]
                prev_cols = _add_max_pool(
                    builder, layers[j], lo, hi, idx, prev_idx, prev_cols, in_lo, integral
                )
                prev_idx = idx
                continue
            prev_cols = _add_layer(builder, layers[j], lo, hi, idx, prev_idx, prev_cols, integral)
            prev_idx = idx
        _add_domain_rows(builder, problem.domain, self.input_idx)
        self.prev_idx, self.prev_cols = prev_idx, prev_cols
        self.A, self.lb, self.ub, self.sense, self.rhs, vtype = builder.arrays()
        self.model = gp.Model(env=env)
        self.x = self.model.addMVar(builder.n_cols, lb=self.lb, ub=self.ub, vtype=vtype.tolist())
        self.constrs = None
        if builder.n_rows:
            self.constrs = self.model.addMConstr(self.A, self.x, self.sense, self.rhs)
        self.integral = integral

    def bound(self, weights: np.ndarray, constant: float, maximise: bool, time_limit: float):
        """Proven bound of ``weights @ h_prev + constant`` (min, or max), or None."""
        obj = np.zeros(self.A.shape[1])
        sign = -1.0 if maximise else 1.0
        obj[self.prev_cols] = sign * weights
        self.model.setObjective(obj @ self.x, GRB.MINIMIZE)
        self.model.Params.TimeLimit = max(time_limit, 1e-3)
        self.model.optimize()
        if self.model.Status == GRB.INTERRUPTED:
            # Gurobi took the Ctrl-C: pass it on, or every later solve would run regardless
            raise KeyboardInterrupt("interrupted while computing bounds")
        # ObjBound and the fallback ObjVal come from LPs solved to tolerances: pad them
        # relative to the magnitudes involved (a MILP is refused where they are too large).
        pad = _FEAS_TOL * (np.abs(weights).sum() + 1.0)
        pad += _MILP_REL_PAD * self.objective_magnitude(weights)
        value = self._milp_bound(pad) if self.integral else self._lp_bound(obj, pad)
        if value is None:
            return None, None
        point = self.x.X[: self.input_idx.size] if self.model.SolCount > 0 else None
        return sign * value + constant, point

    def _milp_bound(self, pad: float) -> float | None:
        """The solver's proven bound, padded; None without one."""
        if self.model.SolCount == 0 and self.model.Status != GRB.OPTIMAL:
            return None
        value = float(self.model.ObjBound)  # defined once there is a solution or an optimum
        if not np.isfinite(value):
            return None
        return value - (_OBJ_PAD * (1 + abs(value)) + pad)

    def _lp_bound(self, obj: np.ndarray, pad: float) -> float | None:
        """The Lagrangian bound of the optimal duals (the padded objective if it is infinite)."""
        if self.model.Status != GRB.OPTIMAL:
            return None
        duals = np.zeros(0) if self.constrs is None else self.constrs.Pi
        value, scale = safe_lagrangian_bound(
            self.A, self.sense, self.rhs, obj, self.lb, self.ub, duals, return_scale=True
        )
        if np.isfinite(value):
            # rounding of the float64 sum: relative to its terms, not only its value
            return value - (1e-9 * (1 + abs(value)) + 1e-12 * scale)
        value = float(self.model.ObjVal)
        return value - (_OBJ_PAD * (1 + abs(value)) + pad)

    def scale_issue(self, max_range: float, max_magnitude: float) -> str | None:
        """Why the solver cannot certify a bound of this model at its scale (None if it can).

        The coefficient range is that of the constraint matrix (nonzeros); the magnitude is
        the largest finite variable bound or right-hand side.
        """
        coefficients = np.abs(self.A.data[self.A.data != 0])
        if coefficients.size:
            spread = float(coefficients.max() / coefficients.min())
            if spread > max_range:
                return (
                    f"coefficient range {spread:.3g} exceeds {max_range:.3g} "
                    "(milp_max_coefficient_range)"
                )
        values = np.concatenate([self.lb, self.ub, self.rhs])
        values = np.abs(values[np.isfinite(values)])
        largest = float(values.max()) if values.size else 0.0
        if largest > max_magnitude:
            return (
                f"bounds of magnitude {largest:.3g} exceed {max_magnitude:.3g} "
                "(milp_max_magnitude): the solver's tolerances are too small at that scale"
            )
        return None

    def objective_magnitude(self, weights: np.ndarray) -> float:
        """``sum |w| max(|l|, |u|)`` over the finite bounds of the previous layer's values."""
        reach = np.maximum(np.abs(self.lb[self.prev_cols]), np.abs(self.ub[self.prev_cols]))
        return float((np.abs(weights) * np.where(np.isfinite(reach), reach, 0.0)).sum())

    def dispose(self):
        self.model.dispose()


# --------------------------------------------------------------------------- the stages


def yield_allowance(stabilised: int, spent: float, min_yield: float) -> float:
    """Seconds a stage may still spend on a layer before its yield falls below ``min_yield``.

    Each neuron made stable earns ``1 / min_yield`` seconds, and the next solve is credited
    in advance with the one neuron it may make stable: the allowance is
    ``(stabilised + 1) / min_yield - spent``. At or below zero the stage stops (even if its
    next solve stabilised a neuron, the yield would stay under ``min_yield``); above zero it
    bounds the next solve's time. ``min_yield=0`` never stops (infinite allowance).

    Parameters
    ----------
    stabilised : int
        Neurons the stage has made stable on the layer so far.
    spent : float
        Seconds the stage has spent on the layer so far (model building included).
    min_yield : float
        Neurons per second.

    Returns
    -------
    float
        Seconds (``math.inf`` for ``min_yield=0``).

    Examples
    --------
    >>> yield_allowance(0, 0.0, 4.0)  # nothing spent: one neuron's credit
    0.25
    >>> yield_allowance(0, 0.3, 4.0) <= 0  # nothing stabilised in 0.3 s: stop
    True
    >>> yield_allowance(3, 0.5, 4.0)  # three neurons earned 0.75 s, the next may earn 0.25
    0.5
    >>> yield_allowance(0, 1e6, 0.0)
    inf
    """
    if min_yield <= 0:
        return math.inf
    return (stabilised + 1) / min_yield - spent


@dataclass(frozen=True)
class _Settings:
    """A stage's settings for one pass: the options, with the recipe's defaults filled in."""

    budget: float
    max_binaries: int
    abandon_after: int
    milp_time_limit: float
    skip_decided: bool
    max_variables: int
    max_constraints: int
    milp_max_coefficient_range: float
    milp_max_magnitude: float
    min_yield: float = 0.0


@dataclass
class _LayerSolve:
    """The solves for one layer and sample: bounds tightened in place and what is known.

    A bound is accepted only when it is consistent: it keeps every value witnessed at a
    feasible input (``seen_lo``/``seen_hi``: the known points and the solves' own points)
    and does not cross the neuron's other proven bound. An inconsistent bound, or a MILP
    model beyond the solver's scale, means the solver's tolerances do not hold: the stage
    stops for this layer and sample, with a ``"refused"`` record.

    With ``min_yield`` the solves go on only while they pay (:func:`yield_allowance`, counted
    from ``started``: the time spent on the sample's cones and models counts); the first
    solve always runs, with one neuron's credit as its time limit.
    """

    stage: LPStage
    problem: BoundingProblem
    index: int
    sample: int
    lo: np.ndarray
    hi: np.ndarray
    need_min: np.ndarray
    need_max: np.ndarray
    neg_seen: np.ndarray
    pos_seen: np.ndarray
    seen_lo: np.ndarray
    seen_hi: np.ndarray
    reference: np.ndarray | None
    offsets: np.ndarray
    deadline: float
    env: gp.Env
    settings: _Settings
    record: StageRecord
    started: float = field(default_factory=time.perf_counter)
    solves: int = 0
    stabilised: int = 0

    def run(self, groups: list[tuple[list[int], np.ndarray]]) -> None:
        """Solve the groups' models in turn, until done, out of time or abandoned."""
        for g, (group, nodes) in enumerate(groups):
            model = None
            try:
                for t in group:
                    for maximise in (False, True):
                        if not self._wanted(t, maximise):
                            continue
                        if self.hi[t] <= 0 or self.lo[t] >= 0:
                            break
                        now = time.perf_counter()
                        if now >= self.deadline:
                            self._stop(groups[g:], "time budget spent; earlier bounds kept")
                            return
                        allowance = self._allowance(now)
                        if allowance <= 0:
                            self._stop(groups[g:], self._low_yield(now))
                            return
                        if model is None:
                            model = _ConeModel(
                                self.problem,
                                self.index,
                                self.sample,
                                nodes,
                                self.offsets,
                                self.stage.integral,
                                self.env,
                            )
                            issue = self._scale_issue(model)
                            if issue is not None:
                                self._stop(groups[g:], f"{issue}; earlier bounds kept", "refused")
                                return
                        refused = self._solve(model, t, maximise, now, allowance)
                        if refused is not None:
                            self._stop(groups[g:], refused, "refused")
                            return
                        if self._abandon():
                            self._stop(
                                groups[g:],
                                f"no neuron became stable in the first "
                                f"{self.settings.abandon_after} solves of this layer; "
                                "earlier bounds kept",
                            )
                            return
            finally:
                if model is not None:
                    model.dispose()

    def _wanted(self, t: int, maximise: bool) -> bool:
        """Whether this side of neuron ``t`` needs a solve (counts the ones points decide)."""
        if not (self.need_max[t] if maximise else self.need_min[t]):
            return False
        if self.settings.skip_decided and (self.pos_seen[t] if maximise else self.neg_seen[t]):
            self.record.skipped_by_points += 1
            return False
        return True

    def _scale_issue(self, model: _ConeModel) -> str | None:
        if not self.stage.integral:
            return None
        return model.scale_issue(
            self.settings.milp_max_coefficient_range, self.settings.milp_max_magnitude
        )

    def _allowance(self, now: float) -> float:
        """The yield allowance (:func:`yield_allowance`); the first solve always gets one
        neuron's credit, whatever the setup cost (nothing is measured before it)."""
        if self.solves == 0:
            return yield_allowance(0, 0.0, self.settings.min_yield)
        return yield_allowance(self.stabilised, now - self.started, self.settings.min_yield)

    def _low_yield(self, now: float) -> str:
        spent = now - self.started
        return (
            f"stopped for yield: {self.stabilised} neurons made stable in {self.solves} "
            f"solves and {spent:.3g} s ({self.stabilised / max(spent, 1e-9):.3g} per second), "
            f"below min_yield={self.settings.min_yield:g} per second; earlier bounds kept"
        )

    def _solve(
        self, model: _ConeModel, t: int, maximise: bool, now: float, allowance: float = math.inf
    ) -> str | None:
        """One solve; tightens the bound of neuron ``t``, or says why its bound was refused.
        It gets at most the time left of the deadline and of the yield ``allowance``."""
        layer = self.problem.layers[self.index]
        limit = min(self.deadline - now, allowance)
        if self.stage.integral:
            limit = min(limit, self.settings.milp_time_limit)
        weights = layer.weight[[t]][:, model.prev_idx].toarray().ravel()
        self.solves += 1
        self.record.solves += 1
        progress_note(f"layer {self.index} {self.stage.name}: {self.record.solves} solves")
        bound, point = model.bound(weights, float(layer.bias[t]), maximise, min(limit, 1e30))
        if point is not None and self.reference is not None:
            self._learn(model, point)
        if bound is None:
            return None
        tol = _OBJ_PAD * (1 + abs(bound)) + _MILP_REL_PAD * model.objective_magnitude(weights)
        witness, other = (
            (self.seen_hi[t], self.lo[t]) if maximise else (self.seen_lo[t], self.hi[t])
        )
        sign = 1.0 if maximise else -1.0
        if sign * (witness - bound) > tol or sign * (other - bound) > tol:
            return (
                f"the solver's bound {bound:.6g} on neuron {int(t)} cuts off a value it takes "
                f"({witness:.6g}) or crosses its other bound ({other:.6g}): its tolerances do "
                "not hold at this scale; earlier bounds kept"
            )
        if maximise:
            self.hi[t] = min(self.hi[t], bound)
        else:
            self.lo[t] = max(self.lo[t], bound)
        self.stabilised += int(self.hi[t] <= 0 or self.lo[t] >= 0)
        return None

    def _learn(self, model: _ConeModel, point: np.ndarray) -> None:
        """The solve's input (completed by the reference point) shows signs of other neurons,
        and, when it lies in the domain, values they take."""
        full = self.reference.copy()
        full[model.input_idx] = point
        in_lo, in_hi = _domain_box(self.problem, self.sample)
        full = np.clip(full, in_lo, in_hi)
        layers = list(self.problem.layers[: self.index + 1])
        z = layers_forward(layers, full[None, :])[self.index][0]
        self.neg_seen |= z < 0
        self.pos_seen |= z > 0
        domain = self.problem.domain
        if domain is None or bool(np.all(domain.contains(full))):
            np.minimum(self.seen_lo, z, out=self.seen_lo)
            np.maximum(self.seen_hi, z, out=self.seen_hi)

    def _abandon(self) -> bool:
        abandon = self.settings.abandon_after
        return bool(abandon) and self.solves >= abandon and not self.stabilised

    def _stop(self, groups, reason: str, kind: str = "fallback") -> None:
        neurons = sum(len(group) for group, _ in groups)
        self.record.keep(self.sample, neurons, reason, kind)
        self.record.stopped = reason
        logger.info(
            "%s on layer %d (sample %d): %s (%d neurons)",
            self.stage.name,
            self.index,
            self.sample,
            reason,
            neurons,
        )


class LPStage:
    """Per-neuron LP (``integral=False``) or MILP bounds on cones of influence.

    The parameters are the recipe's defaults for options left at ``None`` in
    :class:`~gurobi_sparse_surrogate.bounds.BoundOptions`.

    Parameters
    ----------
    integral : bool
        Binaries for the unstable ReLUs of the cone (MILP) instead of the triangle relaxation.
    default_budget : float or None
        Time budget of the bounding pass (``None``: no limit) for ``time_budget=None``.
    max_binaries : int
        For ``milp_max_binaries=None``.
    abandon_after : int or None
        For ``abandon_after=None`` (``None`` or 0: never).
    min_yield : float
        For ``min_yield=None`` (neurons made stable per second; 0: never stop for yield).

    Examples
    --------
    >>> import torch
    >>> from gurobi_sparse_surrogate.bounds import compute_bounds
    >>> from gurobi_sparse_surrogate.network import extract_layers
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
    ...                           torch.nn.ReLU(), torch.nn.Linear(8, 1))
    >>> b = compute_bounds(extract_layers(net), -np.ones(2), np.ones(2), method="lp")
    >>> [row["stage"] for row in b.report if row["layer"] == 1]
    ['linear pass', 'interval', 'linear', 'lp']
    """

    supports_max_pool = True

    def __init__(
        self,
        integral: bool = False,
        default_budget: float | None = None,
        max_binaries: int = 60,
        abandon_after: int | None = None,
        min_yield: float = 0.0,
    ):
        self.integral = integral
        self.name = "milp" if integral else "lp"
        self.default_budget = default_budget
        self.max_binaries = max_binaries
        self.abandon_after = abandon_after
        self.min_yield = min_yield

    def settings(self, problem: BoundingProblem) -> _Settings:
        """The options of ``problem`` with this stage's defaults for those left at None."""
        o = problem.options

        def given(value, default):
            return default if value is None else value

        budget = given(o.time_budget, self.default_budget)
        return _Settings(
            budget=math.inf if budget is None else float(budget),
            max_binaries=int(given(o.milp_max_binaries, self.max_binaries)),
            abandon_after=int(given(o.abandon_after, self.abandon_after) or 0),
            milp_time_limit=o.milp_time_limit,
            skip_decided=o.skip_decided,
            max_variables=o.max_variables,
            max_constraints=o.max_constraints,
            milp_max_coefficient_range=o.milp_max_coefficient_range,
            milp_max_magnitude=o.milp_max_magnitude,
            min_yield=float(given(o.min_yield, self.min_yield)),
        )

    def layer_bounds(self, problem, index, lower, upper):
        new_lo, new_hi = lower.copy(), upper.copy()
        record = problem.current_record()
        if index == 0:
            record.skip("first layer: its bounds are exact already (box or domain)")
            return new_lo, new_hi
        if not problem.layers[index].relu:
            record.skip("not a ReLU layer")
            return new_lo, new_hi
        if not np.any((new_lo < 0) & (new_hi > 0)):
            record.skip("no unstable neurons")
            return new_lo, new_hi
        settings = self.settings(problem)
        deadline = self._layer_deadline(problem, index, settings.budget)
        with gp.Env(params=self._solver_params()) as env:
            for s in range(problem.n_samples):
                self._sample(problem, index, s, new_lo[s], new_hi[s], deadline, env, settings)
        return new_lo, new_hi

    def _solver_params(self) -> dict:
        params = {
            "OutputFlag": 0,
            "Threads": 1,
            "FeasibilityTol": _FEAS_TOL,
            "OptimalityTol": _FEAS_TOL,
        }
        if self.integral:
            params.update({"IntFeasTol": 1e-9, "MIPGap": 1e-7, "MIPGapAbs": 1e-7})
        else:
            params.update({"Method": 0, "Presolve": 0})
        return params

    def _layer_deadline(self, problem, index, budget: float) -> float:
        """End of this layer's share of the time budget (inf without a budget)."""
        if math.isinf(budget):
            return math.inf
        deadlines = problem.state.deadlines
        if index not in deadlines:
            left = sum(1 for layer in problem.layers[index:] if layer.relu)
            remaining = problem.state.start + budget - time.perf_counter()
            deadlines[index] = time.perf_counter() + max(remaining, 0.0) / max(left, 1)
        return deadlines[index]

    def _sample(self, problem, index, s, lo, hi, deadline, env, settings):
        """Tighten ``lo`` and ``hi`` (one sample's bounds of layer ``index``) in place."""
        started = time.perf_counter()
        layer = problem.layers[index]
        record = problem.current_record()
        unstable = (lo < 0) & (hi > 0)
        if not unstable.any():
            return
        points = _sample_points(problem, s)
        values = layers_forward(list(problem.layers[: index + 1]), points)[index]
        values = values.reshape(len(points), layer.n_out)
        neg_seen, pos_seen = (values < 0).any(axis=0), (values > 0).any(axis=0)
        skip = settings.skip_decided
        need_min = unstable & ~(skip & neg_seen)
        need_max = unstable & ~(skip & pos_seen)
        record.skipped_by_points += int(unstable.sum() * 2 - need_min.sum() - need_max.sum())
        targets = np.flatnonzero(need_min | need_max)
        if self.integral:
            targets = self._few_direct_binaries(problem, index, s, targets, settings)
        if targets.size == 0:
            return
        cones = cones_of_influence(problem, index, s)
        sizes = [problem.layers[0].n_in] + [problem.layers[j].n_out for j in range(index)]
        offsets = np.concatenate([[0], np.cumsum(sizes)])[1:]  # offsets[j]: start of layer j
        weights = self._node_weights(problem, index, s)
        targets = self._fitting(problem, s, cones, targets, weights, settings)
        groups = self._groups(cones, targets, weights, settings)
        _LayerSolve(
            stage=self,
            problem=problem,
            index=index,
            sample=s,
            lo=lo,
            hi=hi,
            need_min=need_min,
            need_max=need_max,
            neg_seen=neg_seen,
            pos_seen=pos_seen,
            # values the neuron takes at feasible inputs: a proven bound may not cut them off
            seen_lo=values.min(axis=0, initial=np.inf),
            seen_hi=values.max(axis=0, initial=-np.inf),
            reference=_reference_point(problem, s),
            offsets=offsets,
            deadline=deadline,
            env=env,
            settings=settings,
            record=record,
            started=started,
        ).run(groups)

    def _few_direct_binaries(self, problem, index, s, targets, settings):
        """The targets whose cone may hold at most ``max_binaries`` binaries, judged from the
        layer before alone (its unstable ReLUs with a weight into the target are in the cone):
        a quick test that spares the cones of a dense layer none of whose neurons fits."""
        j = index - 1
        previous = problem.layers[j]
        if targets.size == 0 or not previous.relu or previous.is_maxpool:
            return targets
        lo, hi = problem.lower[j][s], problem.upper[j][s]
        binary = (lo < 0) & (hi > 0) & np.isfinite(lo) & np.isfinite(hi)
        direct = _pattern(problem.layers[index].weight[targets]) @ binary.astype(np.float64)
        small = direct <= settings.max_binaries
        if not small.all():
            problem.current_record().keep(
                s,
                int((~small).sum()),
                f"more than milp_max_binaries={settings.max_binaries} unstable ReLUs in the "
                f"cone (at least {int(direct[~small].min())} in the layer before); earlier "
                "bounds kept",
            )
        return targets[small]

    def _node_weights(self, problem, index, s):
        """Variables, constraints and binaries each cone node brings to a model, and the
        domain's fixed variables and constraints."""
        n_in = problem.layers[0].n_in
        domain = problem.domain
        size = domain.lp_size() if domain is not None else None
        var_w = [1.0 + (size.variables if size else np.zeros(n_in))]
        con_w = [np.asarray(size.constraints, dtype=np.float64) if size else np.zeros(n_in)]
        bin_w = [np.zeros(n_in)]
        for j in range(index):
            lo, hi = problem.lower[j][s], problem.upper[j][s]
            if problem.layers[j].is_maxpool:
                members = np.diff(problem.layers[j].weight.indptr).astype(np.float64)
                binary = members * self.integral
                var_w.append(1.0 + binary)
                con_w.append(members + 1.0 + binary + float(self.integral))
                bin_w.append(binary)
                continue
            unstable = (lo < 0) & (hi > 0) if problem.layers[j].relu else np.zeros(lo.size, bool)
            binary = unstable & np.isfinite(lo) & np.isfinite(hi) & self.integral
            var_w.append(1.0 + unstable + binary)
            con_w.append(1.0 + 2.0 * unstable + binary)
            bin_w.append(binary.astype(np.float64))
        fixed = (size.fixed_variables, size.fixed_constraints) if size else (0, 0)
        return np.concatenate(var_w), np.concatenate(con_w), np.concatenate(bin_w), fixed

    def _fitting(self, problem, s, cones, targets, weights, settings):
        """The targets whose cone fits the size limits (and, for a MILP, the binary limit);
        the others are recorded as kept with their earlier bounds. Smallest cones first."""
        var_w, con_w, bin_w, (fixed_v, fixed_c) = weights
        record = problem.current_record()
        n_vars, n_cons = cones @ var_w + fixed_v, cones @ con_w + fixed_c
        max_v, max_c = settings.max_variables, settings.max_constraints
        fits = (n_vars[targets] <= max_v) & (n_cons[targets] <= max_c)
        if not fits.all():
            big = targets[~fits]
            record.keep(
                s,
                big.size,
                f"cone of influence too large: up to {int(n_vars[big].max())} variables and "
                f"{int(n_cons[big].max())} linear constraints, over the limit "
                f"({max_v} variables, {max_c} constraints; the size-limited licence); "
                "earlier bounds kept",
            )
            targets = targets[fits]
        if self.integral:
            small = (cones @ bin_w)[targets] <= settings.max_binaries
            if not small.all():
                record.keep(
                    s,
                    int((~small).sum()),
                    f"more than milp_max_binaries={settings.max_binaries} unstable ReLUs in "
                    "the cone; earlier bounds kept",
                )
            targets = targets[small]
        return targets[np.argsort(n_vars[targets], kind="stable")]

    def _groups(self, cones, targets, weights, settings):
        """Pack targets greedily into groups whose union of cones fits the limits."""
        var_w, con_w, _, (fixed_v, fixed_c) = weights
        max_v, max_c = settings.max_variables - fixed_v, settings.max_constraints - fixed_c
        groups: list[tuple[list[int], np.ndarray]] = []
        union = None
        group: list[int] = []
        for t in targets:
            cone = cones[[t]].toarray().ravel()
            if union is not None and not self.integral:
                candidate = union | cone
                if candidate @ var_w <= max_v and candidate @ con_w <= max_c:
                    union = candidate
                    group.append(int(t))
                    continue
            if union is not None:
                groups.append((group, union))
            union, group = cone, [int(t)]
        if union is not None:
            groups.append((group, union))
        return groups


class MILPStage(LPStage):
    """Per-neuron MILP bounds (binaries for the cone's unstable ReLUs); see :class:`LPStage`."""

    def __init__(
        self,
        default_budget: float | None = None,
        max_binaries: int = 60,
        abandon_after: int | None = None,
        min_yield: float = 0.0,
    ):
        super().__init__(True, default_budget, max_binaries, abandon_after, min_yield)
