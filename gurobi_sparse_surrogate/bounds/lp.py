"""Optimisation-based bounds: LP and MILP on each neuron's cone of influence, and ``"auto"``.

For a neuron of layer ``i`` that is still unstable, the LP stage minimises and maximises its
pre-activation over a relaxation of the network restricted to its *cone of influence*: the
inputs and earlier neurons with a nonzero path to it (stable-inactive neurons cut paths, so a
pruned network has small cones). Unstable ReLUs of the cone get the triangle relaxation from
their already proven bounds; the MILP stage uses a binary and big-M constraints instead.

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
  is not solved, and the stage stops for that layer with a ``"refused"`` note. Every LP and
  MILP bound must also keep the values the neuron takes at known feasible inputs (the known
  points and the solves' own points) and must not cross the neuron's other proven bound;
  a bound that fails this check is discarded and the stage stops for the layer, with a note.
  A solve that does not end OPTIMAL (or, for the MILP, with a bound) changes nothing.

Cost control: neurons already stable are skipped, and so is every solve whose result cannot
change stability because a known feasible input already puts the neuron on both sides of
zero (user points in ``options["points"]``, the input box centre, and the inputs of earlier
solves, evaluated with a forward pass). One persistent, single-threaded Gurobi model per layer
and sample (split into groups of neurons whose cones fit the licence) is re-optimised with
a new objective, so the simplex warm-starts.

Options read from :attr:`BoundingProblem.options` (``compute_bounds(..., **options)``):

``time_budget`` : float or None
    Seconds for the whole bounding pass (``"auto"``: 5 by default; ``"lp"`` and ``"milp"``:
    no limit), counted from the start of the pass; each ReLU layer may use an equal share of
    what is left when its solves start. When spent, remaining neurons keep their linear bounds
    (the linear relaxation itself always runs). ``"milp"`` runs a complete ``"lp"`` pass first
    (to be at least as tight), which gets the same budget.
``milp_time_limit`` : float
    Seconds per MILP solve (default 1).
``milp_max_binaries`` : int
    Largest number of unstable ReLUs in a cone for which a MILP is built (``"milp"``: 60,
    ``"auto"``: 20).
``milp_max_coefficient_range``, ``milp_max_magnitude`` : float
    Where the MILP stage refuses to solve (see Soundness; defaults 1e9 and 1e7).
``max_variables``, ``max_constraints`` : int
    Size limit of each model (default 2000, the size-limited licence). Neurons whose cone
    exceeds it keep their earlier bounds.
``skip_decided`` : bool
    Skip solves that cannot change stability (default True). Set False to tighten the bounds
    of truly unstable neurons too (smaller big-M, more solves).
``abandon_after`` : int or None
    Stop a layer's LP (MILP) solves when the first this many made no neuron stable: the rest
    would likely only shrink big-M constants (``"auto"``: 16 LP and 8 MILP solves; ``"lp"`` and
    ``"milp"``: never).
``auto_min_unstable`` : int
    ``"auto"`` only: run the LP and MILP stages only when the linear bounds leave at least
    this many unstable neurons (default 32); below it the main MILP is small anyway.
``points`` : array_like
    Known inputs, ``(p, n_in)``; those inside a sample's input box seed the skip test.
``notes`` : list
    Entries (dicts with ``stage``, ``layer``, ``sample``, ``neurons``, ``reason``) are appended
    here for every neuron group left with its earlier bounds and why. Pass your own list to
    read them after :func:`~gurobi_sparse_surrogate.bounds.compute_bounds` returns.

Importing this module registers the methods ``"lp"``, ``"milp"`` and ``"auto"``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import gurobipy as gp
import numpy as np
import scipy.sparse as sp
from gurobipy import GRB

from ..domains import L1Ball
from ..license import SIZE_LIMITED_MAX_CONSTRAINTS, SIZE_LIMITED_MAX_VARIABLES
from ..network.extraction import layers_forward
from .linear import LinearStage
from .problem import BoundingProblem, IntervalStage, compute_bounds, register_method

__all__ = ["LPStage", "MILPStage", "MethodPassStage", "cones_of_influence", "safe_lagrangian_bound"]

_FEAS_TOL = 1e-9
_OBJ_PAD = 1e-6
#: Relative accuracy assumed of a MILP's ``ObjBound`` against the magnitudes in its objective
#: (``sum |w| max(|l|, |u|)``): a thousand times the tolerances the cone models are solved with.
_MILP_REL_PAD = 1e-6
#: Defaults of the options ``milp_max_coefficient_range`` and ``milp_max_magnitude``: beyond
#: them the MILP's proven bound cannot be trusted to the tolerances, and the stage is refused.
MILP_MAX_COEFFICIENT_RANGE = 1e9
MILP_MAX_MAGNITUDE = 1e7


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


@dataclass
class _PassState:
    """Per bounding pass: start time, feasible points per sample."""

    start: float
    points: dict[int, np.ndarray] = field(default_factory=dict)
    deadlines: dict[int, float] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _state(problem: BoundingProblem) -> _PassState:
    state = problem.options.get("_optimization_state")
    if state is None:
        state = _PassState(time.perf_counter())
        problem.options["_optimization_state"] = state
    return state


def _note(problem: BoundingProblem, kind: str = "fallback", **entry) -> None:
    problem.options.setdefault("notes", []).append({"kind": kind, **entry})


def _reference_point(problem: BoundingProblem, sample: int) -> np.ndarray:
    """A feasible input: the domain centre if there is one, else the box centre (clipped)."""
    lo, hi = problem.input_lower[sample], problem.input_upper[sample]
    centre = getattr(problem.domain, "center", None)
    if centre is not None:
        point = np.asarray(centre, dtype=np.float64).reshape(-1)
    else:
        point = np.where(np.isfinite(lo) & np.isfinite(hi), (lo + hi) / 2, 0.0)
    return np.clip(point, lo, hi)


def _sample_points(problem: BoundingProblem, sample: int) -> np.ndarray:
    state = _state(problem)
    if sample not in state.points:
        pts = [_reference_point(problem, sample)[None, :]]
        given = problem.options.get("points")
        if given is not None:
            given = np.atleast_2d(np.asarray(given, dtype=np.float64))
            if given.shape[1] == problem.layers[0].n_in:
                lo, hi = problem.input_lower[sample], problem.input_upper[sample]
                inside = np.all((given >= lo) & (given <= hi), axis=1)
                if problem.domain is not None and hasattr(problem.domain, "contains"):
                    inside &= np.asarray(problem.domain.contains(given), dtype=bool).reshape(-1)
                pts.append(given[inside])
        state.points[sample] = np.vstack(pts)
    return state.points[sample]


class _ConeModel:
    """A Gurobi model of the relaxed network restricted to a set of cone nodes."""

    def __init__(self, problem, index, sample, nodes, offsets, integral, env):
        self.problem, self.index, self.sample = problem, index, sample
        layers = problem.layers
        n_in = layers[0].n_in
        in_lo, in_hi = _domain_box(problem, sample)
        # Column layout: x (cone inputs), z (cone neurons), h (unstable cone neurons), a, d.
        lb, ub, vtype = [], [], []
        sense, rhs = [], []
        self.input_idx = np.flatnonzero(nodes[:n_in])
        n_cols = 0

        def add_cols(lo, hi, kind="C"):
            nonlocal n_cols
            lb.append(lo)
            ub.append(hi)
            vtype.append(np.full(lo.size, kind))
            idx = np.arange(n_cols, n_cols + lo.size)
            n_cols += lo.size
            return idx

        out_cols = add_cols(in_lo[self.input_idx], in_hi[self.input_idx])  # cols of h_{-1}
        self.rows_A: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        n_rows = 0

        def add_rows(r, c, v, s, b):
            nonlocal n_rows
            self.rows_A.append((r + n_rows, c, v))
            sense.append(s)
            rhs.append(b)
            n_rows += b.size

        prev_idx = self.input_idx
        prev_cols = out_cols
        for j in range(index):
            layer = layers[j]
            idx = np.flatnonzero(nodes[offsets[j] : offsets[j + 1]])
            lo, hi = problem.lower[j][sample][idx], problem.upper[j][sample][idx]
            z_cols = add_cols(lo.copy(), hi.copy())
            # z - W h_prev = b
            w = sp.coo_array(layer.weight[idx][:, prev_idx])
            r = np.concatenate([np.arange(idx.size), w.row])
            c = np.concatenate([z_cols, prev_cols[w.col]])
            v = np.concatenate([np.ones(idx.size), -w.data])
            add_rows(r, c, v, np.full(idx.size, "="), layer.bias[idx])
            h_cols = z_cols
            if layer.relu:
                unstable = (lo < 0) & (hi > 0)
                ui = np.flatnonzero(unstable)
                # stable active: h = z (z >= l >= 0 already); unstable: a new h variable.
                h_new = add_cols(np.zeros(ui.size), np.maximum(hi[ui], 0.0))
                h_cols = z_cols.copy()
                h_cols[ui] = h_new
                lu, uu = lo[ui], hi[ui]
                k = np.arange(ui.size)
                # h >= z
                add_rows(
                    np.concatenate([k, k]),
                    np.concatenate([h_new, z_cols[ui]]),
                    np.concatenate([np.ones(ui.size), -np.ones(ui.size)]),
                    np.full(ui.size, ">"),
                    np.zeros(ui.size),
                )
                finite = np.isfinite(lu) & np.isfinite(uu)
                if integral:
                    fb = np.flatnonzero(finite)
                    a_cols = add_cols(np.zeros(fb.size), np.ones(fb.size), "B")
                    kb = np.arange(fb.size)
                    # h - z - l a <= -l  and  h - u a <= 0
                    add_rows(
                        np.concatenate([kb, kb, kb]),
                        np.concatenate([h_new[fb], z_cols[ui][fb], a_cols]),
                        np.concatenate([np.ones(fb.size), -np.ones(fb.size), -lu[fb]]),
                        np.full(fb.size, "<"),
                        -lu[fb],
                    )
                    add_rows(
                        np.concatenate([kb, kb]),
                        np.concatenate([h_new[fb], a_cols]),
                        np.concatenate([np.ones(fb.size), -uu[fb]]),
                        np.full(fb.size, "<"),
                        np.zeros(fb.size),
                    )
                    tri = np.flatnonzero(~finite)
                else:
                    tri = np.arange(ui.size)
                tf = tri[finite[tri]]
                slope = uu[tf] / (uu[tf] - lu[tf])
                kt = np.arange(tf.size)
                # h - s z <= -s l  (chord); with l = -inf, h <= u is the variable bound.
                add_rows(
                    np.concatenate([kt, kt]),
                    np.concatenate([h_new[tf], z_cols[ui][tf]]),
                    np.concatenate([np.ones(tf.size), -slope]),
                    np.full(tf.size, "<"),
                    -slope * lu[tf],
                )
                ti = tri[np.isfinite(lu[tri]) & ~np.isfinite(uu[tri])]
                ki = np.arange(ti.size)
                add_rows(  # h - z <= -l
                    np.concatenate([ki, ki]),
                    np.concatenate([h_new[ti], z_cols[ui][ti]]),
                    np.concatenate([np.ones(ti.size), -np.ones(ti.size)]),
                    np.full(ti.size, "<"),
                    -lu[ti],
                )
            prev_idx, prev_cols = idx, h_cols
        self._add_domain_rows(problem, add_cols, add_rows)
        self.prev_idx, self.prev_cols = prev_idx, prev_cols
        self.lb = np.concatenate(lb)
        self.ub = np.concatenate(ub)
        self.sense = np.concatenate(sense) if sense else np.array([], dtype="<U1")
        self.rhs = np.concatenate(rhs) if rhs else np.array([])
        r = np.concatenate([t[0] for t in self.rows_A]) if self.rows_A else np.array([], int)
        c = np.concatenate([t[1] for t in self.rows_A]) if self.rows_A else np.array([], int)
        v = np.concatenate([t[2] for t in self.rows_A]) if self.rows_A else np.array([])
        self.A = sp.csr_array((v, (r, c)), shape=(n_rows, n_cols))
        self.model = gp.Model(env=env)
        self.x = self.model.addMVar(
            n_cols, lb=self.lb, ub=self.ub, vtype=np.concatenate(vtype).tolist()
        )
        self.constrs = None
        if n_rows:
            self.constrs = self.model.addMConstr(self.A, self.x, self.sense, self.rhs)
        self.integral = integral

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
        cols = self.prev_cols
        reach = np.maximum(np.abs(self.lb[cols]), np.abs(self.ub[cols]))
        terms = np.abs(weights) * np.where(np.isfinite(reach), reach, 0.0)
        return float(terms.sum())

    def _add_domain_rows(self, problem, add_cols, add_rows):
        domain = problem.domain
        if not isinstance(domain, L1Ball) or self.input_idx.size == 0:
            return
        centre = np.asarray(domain.center, dtype=np.float64).reshape(-1)[self.input_idx]
        n = self.input_idx.size
        radius = float(domain.radius)
        d = add_cols(np.zeros(n), np.full(n, radius))
        k = np.arange(n)
        x = np.arange(n)  # input columns come first
        # d - x >= -c ; d + x >= c ; sum d <= r
        add_rows(
            np.concatenate([k, k]),
            np.concatenate([d, x]),
            np.concatenate([np.ones(n), -np.ones(n)]),
            np.full(n, ">"),
            -centre,
        )
        add_rows(
            np.concatenate([k, k]),
            np.concatenate([d, x]),
            np.ones(2 * n),
            np.full(n, ">"),
            centre,
        )
        add_rows(np.zeros(n, int), d, np.ones(n), np.array(["<"]), np.array([radius]))

    def bound(self, weights: np.ndarray, constant: float, maximise: bool, time_limit: float):
        """Proven bound of ``weights @ h_prev + constant`` (min, or max), or None."""
        obj = np.zeros(self.A.shape[1])
        sign = -1.0 if maximise else 1.0
        obj[self.prev_cols] = sign * weights
        self.model.setObjective(obj @ self.x, GRB.MINIMIZE)
        self.model.Params.TimeLimit = max(time_limit, 1e-3)
        self.model.optimize()
        status = self.model.Status
        magnitude = self.objective_magnitude(weights)
        pad_feas = _FEAS_TOL * (np.abs(weights).sum() + 1.0)
        if self.integral:
            if self.model.SolCount == 0 and status != GRB.OPTIMAL:
                return None, None
            try:
                value = float(self.model.ObjBound)
            except gp.GurobiError:
                return None, None
            if not np.isfinite(value):
                return None, None
            # ObjBound comes from LP relaxations solved to tolerances: pad it relative to the
            # magnitudes involved (the stage is refused where they are too large to certify).
            value -= _OBJ_PAD * (1 + abs(value)) + _MILP_REL_PAD * magnitude + pad_feas
        else:
            if status != GRB.OPTIMAL:
                return None, None
            value, scale = safe_lagrangian_bound(
                self.A,
                self.sense,
                self.rhs,
                obj,
                self.lb,
                self.ub,
                np.zeros(0) if self.constrs is None else self.constrs.Pi,
                return_scale=True,
            )
            if np.isfinite(value):
                # rounding of the float64 sum: relative to its terms, not only its value
                value -= 1e-9 * (1 + abs(value)) + 1e-12 * scale
            else:
                value = float(self.model.ObjVal)
                value -= _OBJ_PAD * (1 + abs(value)) + _MILP_REL_PAD * magnitude + pad_feas
        point = None
        if self.model.SolCount > 0:
            point = self.x.X[: self.input_idx.size]
        bound = sign * value + constant
        return bound, point

    def dispose(self):
        self.model.dispose()


def _inside(domain, point: np.ndarray) -> bool:
    """Whether ``point`` lies in ``domain`` (True without a domain or a membership test)."""
    if domain is None or not hasattr(domain, "contains"):
        return True
    return bool(np.all(domain.contains(point)))


def _domain_box(problem: BoundingProblem, sample: int) -> tuple[np.ndarray, np.ndarray]:
    """The input box intersected with the domain's bounding box (``domain.lower/upper``)."""
    lo = problem.input_lower[sample].copy()
    hi = problem.input_upper[sample].copy()
    domain = problem.domain
    if domain is not None and hasattr(domain, "lower") and hasattr(domain, "upper"):
        lo = np.maximum(lo, np.asarray(domain.lower, dtype=np.float64).reshape(-1))
        hi = np.minimum(hi, np.asarray(domain.upper, dtype=np.float64).reshape(-1))
    return lo, np.maximum(hi, lo)


class LPStage:
    """Per-neuron LP (``integral=False``) or MILP bounds on cones of influence.

    Parameters
    ----------
    integral : bool
        Binaries for the unstable ReLUs of the cone (MILP) instead of the triangle relaxation.
    default_budget : float or None
        Time budget of the bounding pass when the ``time_budget`` option is not given.
    max_binaries : int
        Default of the ``milp_max_binaries`` option.

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

    def __init__(
        self,
        integral: bool = False,
        default_budget: float | None = None,
        max_binaries: int = 60,
        abandon_after: int | None = None,
    ):
        self.integral = integral
        self.name = "milp" if integral else "lp"
        self.default_budget = default_budget
        self.max_binaries = max_binaries
        self.abandon_after = abandon_after

    def layer_bounds(self, problem, index, lower, upper):
        new_lo, new_hi = lower.copy(), upper.copy()
        if index == 0 or not problem.layers[index].relu:
            # The first layer's bounds are exact already (box or domain support function).
            return new_lo, new_hi
        deadline = self._layer_deadline(problem, index)
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
        with gp.Env(params=params) as env:
            for s in range(problem.n_samples):
                self._sample(problem, index, s, new_lo[s], new_hi[s], deadline, env)
        return new_lo, new_hi

    def _layer_deadline(self, problem, index) -> float:
        """End of this layer's share of the time budget (inf without a budget)."""
        state = _state(problem)
        budget = problem.options.get("time_budget", self.default_budget)
        if budget is None:
            return np.inf
        if index not in state.deadlines:
            left = sum(1 for layer in problem.layers[index:] if layer.relu)
            remaining = state.start + float(budget) - time.perf_counter()
            state.deadlines[index] = time.perf_counter() + max(remaining, 0.0) / max(left, 1)
        return state.deadlines[index]

    def _sample(self, problem, index, s, lo, hi, deadline, env):
        layers = problem.layers
        layer = layers[index]
        unstable = (lo < 0) & (hi > 0)
        if not unstable.any():
            return
        skip = problem.options.get("skip_decided", True)
        known = problem.domain is None or hasattr(problem.domain, "center")
        points = _sample_points(problem, s) if known else np.zeros((0, layer.n_in))
        values = layers_forward(list(layers[: index + 1]), points)[index] if len(points) else None
        neg_seen = np.zeros(layer.n_out, bool) if values is None else (values < 0).any(axis=0)
        pos_seen = np.zeros(layer.n_out, bool) if values is None else (values > 0).any(axis=0)
        # values the neuron takes at feasible inputs: a proven bound may not cut them off
        witnessed = (
            np.full(layer.n_out, np.inf) if values is None else values.min(axis=0),
            np.full(layer.n_out, -np.inf) if values is None else values.max(axis=0),
        )
        need_min = unstable & ~(skip & neg_seen)
        need_max = unstable & ~(skip & pos_seen)
        targets = np.flatnonzero(need_min | need_max)
        if targets.size == 0:
            return
        cones = cones_of_influence(problem, index, s)
        sizes_n = [layers[0].n_in] + [layers[j].n_out for j in range(index)]
        offsets = np.concatenate([[0], np.cumsum(sizes_n)])[1:]  # offsets[j]: start of layer j
        var_w, con_w, bin_w = self._node_weights(problem, index, s)
        n_vars = cones @ var_w
        n_cons = cones @ con_w
        n_bins = cones @ bin_w
        extra_c = 1 if isinstance(problem.domain, L1Ball) else 0
        max_v = int(problem.options.get("max_variables", SIZE_LIMITED_MAX_VARIABLES))
        max_c = int(problem.options.get("max_constraints", SIZE_LIMITED_MAX_CONSTRAINTS))
        fits = (n_vars[targets] <= max_v) & (n_cons[targets] + extra_c <= max_c)
        if not fits.all():
            big = targets[~fits]
            _note(
                problem,
                stage=self.name,
                layer=index,
                sample=s,
                neurons=int(big.size),
                reason=(
                    f"cone of influence too large: up to {int(n_vars[big].max())} variables and "
                    f"{int(n_cons[big].max()) + extra_c} linear constraints, over the limit "
                    f"({max_v} variables, {max_c} constraints; the size-limited licence); "
                    "earlier bounds kept"
                ),
            )
            targets = targets[fits]
        if self.integral:
            max_b = int(problem.options.get("milp_max_binaries", self.max_binaries))
            small = n_bins[targets] <= max_b
            if not small.all():
                _note(
                    problem,
                    stage=self.name,
                    layer=index,
                    sample=s,
                    neurons=int((~small).sum()),
                    reason=f"more than milp_max_binaries={max_b} unstable ReLUs in the cone; "
                    "earlier bounds kept",
                )
            targets = targets[small]
        targets = targets[np.argsort(n_vars[targets], kind="stable")]
        groups = self._groups(cones, targets, var_w, con_w, max_v, max_c - extra_c)
        reference = _reference_point(problem, s) if known else None
        time_limit = float(problem.options.get("milp_time_limit", 1.0))
        counts = {
            "solves": 0,
            "stabilised": 0,
            "skipped": int(unstable.sum() * 2 - need_min.sum() - need_max.sum()),
        }
        try:
            self._solve_groups(
                problem,
                index,
                s,
                lo,
                hi,
                groups,
                offsets,
                deadline,
                env,
                counts,
                need_min,
                need_max,
                neg_seen,
                pos_seen,
                reference,
                time_limit,
                witnessed,
            )
        finally:
            _note(
                problem,
                kind="summary",
                stage=self.name,
                layer=index,
                sample=s,
                unstable_before=int(unstable.sum()),
                unstable_after=int(((lo < 0) & (hi > 0)).sum()),
                solves=counts["solves"],
                skipped_by_points=counts["skipped"],
            )

    def _solve_groups(
        self,
        problem,
        index,
        s,
        lo,
        hi,
        groups,
        offsets,
        deadline,
        env,
        counts,
        need_min,
        need_max,
        neg_seen,
        pos_seen,
        reference,
        time_limit,
        witnessed,
    ):
        """Solve the groups' models in turn, tightening ``lo`` and ``hi`` in place.

        A bound is accepted only when it is consistent: it keeps every value ``witnessed`` at
        a feasible input (the known points and the solves' own points) and does not cross the
        neuron's other proven bound. An inconsistent bound means the solver's tolerances do
        not hold at this scale: the stage stops for this layer and sample, with a note.
        """
        layers = problem.layers
        layer = layers[index]
        skip = problem.options.get("skip_decided", True)
        seen_lo, seen_hi = witnessed
        max_range = float(
            problem.options.get("milp_max_coefficient_range", MILP_MAX_COEFFICIENT_RANGE)
        )
        max_magnitude = float(problem.options.get("milp_max_magnitude", MILP_MAX_MAGNITUDE))
        for g, (group, nodes) in enumerate(groups):
            model = None
            try:
                for t in group:
                    for maximise in (False, True):
                        if not (need_max[t] if maximise else need_min[t]):
                            continue
                        if skip and (pos_seen[t] if maximise else neg_seen[t]):
                            counts["skipped"] += 1
                            continue
                        if hi[t] <= 0 or lo[t] >= 0:
                            break
                        now = time.perf_counter()
                        if now >= deadline:
                            left = sum(len(gr) for gr, _ in groups[g:])
                            _note(
                                problem,
                                stage=self.name,
                                layer=index,
                                sample=s,
                                neurons=left,
                                reason="time budget spent; earlier bounds kept",
                            )
                            return
                        if model is None:
                            model = _ConeModel(
                                problem, index, s, nodes, offsets, self.integral, env
                            )
                            issue = (
                                model.scale_issue(max_range, max_magnitude)
                                if self.integral
                                else None
                            )
                            if issue is not None:
                                _note(
                                    problem,
                                    kind="refused",
                                    stage=self.name,
                                    layer=index,
                                    sample=s,
                                    neurons=sum(len(gr) for gr, _ in groups[g:]),
                                    reason=f"{issue}; earlier bounds kept",
                                )
                                return
                        limit = deadline - now
                        if self.integral:
                            limit = min(limit, time_limit)
                        weights = layer.weight[[t]][:, model.prev_idx].toarray().ravel()
                        counts["solves"] += 1
                        bound, point = model.bound(
                            weights, float(layer.bias[t]), maximise, min(limit, 1e30)
                        )
                        if point is not None and reference is not None:
                            full = reference.copy()
                            full[model.input_idx] = point
                            in_lo, in_hi = _domain_box(problem, s)
                            full = np.clip(full, in_lo, in_hi)
                            z = layers_forward(list(layers[: index + 1]), full[None, :])[index][0]
                            neg_seen |= z < 0
                            pos_seen |= z > 0
                            if _inside(problem.domain, full):
                                seen_lo[:] = np.minimum(seen_lo, z)
                                seen_hi[:] = np.maximum(seen_hi, z)
                        if bound is not None:
                            tol = _OBJ_PAD * (1 + abs(bound)) + _MILP_REL_PAD * (
                                model.objective_magnitude(weights)
                            )
                            witness, other = (
                                (seen_hi[t], lo[t]) if maximise else (seen_lo[t], hi[t])
                            )
                            sign = 1.0 if maximise else -1.0
                            if sign * (witness - bound) > tol or sign * (other - bound) > tol:
                                _note(
                                    problem,
                                    kind="refused",
                                    stage=self.name,
                                    layer=index,
                                    sample=s,
                                    neurons=sum(len(gr) for gr, _ in groups[g:]),
                                    reason=f"the solver's bound {bound:.6g} on neuron {int(t)} "
                                    f"cuts off a value it takes ({witness:.6g}) or crosses its "
                                    f"other bound ({other:.6g}): its tolerances do not hold at "
                                    "this scale; earlier bounds kept",
                                )
                                return
                            if maximise:
                                hi[t] = min(hi[t], bound)
                            else:
                                lo[t] = max(lo[t], bound)
                            counts["stabilised"] += int(hi[t] <= 0 or lo[t] >= 0)
                        abandon = problem.options.get("abandon_after", self.abandon_after)
                        if abandon and counts["solves"] >= abandon and not counts["stabilised"]:
                            _note(
                                problem,
                                stage=self.name,
                                layer=index,
                                sample=s,
                                neurons=sum(len(gr) for gr, _ in groups[g:]),
                                reason=f"no neuron became stable in the first {abandon} "
                                "solves of this layer; earlier bounds kept",
                            )
                            return
            finally:
                if model is not None:
                    model.dispose()

    def _node_weights(self, problem, index, s):
        """Variables, constraints and binaries each cone node brings to a model."""
        n_in = problem.layers[0].n_in
        l1 = isinstance(problem.domain, L1Ball)
        var_w = [np.full(n_in, 2.0 if l1 else 1.0)]
        con_w = [np.full(n_in, 2.0 if l1 else 0.0)]
        bin_w = [np.zeros(n_in)]
        for j in range(index):
            lo, hi = problem.lower[j][s], problem.upper[j][s]
            unstable = (lo < 0) & (hi > 0) if problem.layers[j].relu else np.zeros(lo.size, bool)
            binary = unstable & np.isfinite(lo) & np.isfinite(hi) & self.integral
            var_w.append(1.0 + unstable + binary)
            con_w.append(1.0 + 2.0 * unstable + binary)
            bin_w.append(binary.astype(np.float64))
        return np.concatenate(var_w), np.concatenate(con_w), np.concatenate(bin_w)

    def _groups(self, cones, targets, var_w, con_w, max_v, max_c):
        """Pack targets greedily into groups whose union of cones fits the limits."""
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
    ):
        super().__init__(True, default_budget, max_binaries, abandon_after)


class MethodPassStage:
    """The bounds of a complete pass of another (weaker) method, computed once per pass.

    Placed first in a method, it makes the method at least as tight as ``method`` on every
    neuron: linear relaxations are not monotone in the earlier layers' bounds (tighter
    intermediate bounds can, rarely, give a slightly wider CROWN bound on a neuron no solve
    touches), and the driver's intersection with this stage removes that.

    Parameters
    ----------
    method : str
        A registered method, run with the same inputs, domain and public options.
    """

    def __init__(self, method: str):
        self.method = method
        self.name = f"{method} pass"

    def layer_bounds(self, problem, index, lower, upper):
        key = f"_pass_{self.method}"
        result = problem.options.get(key)
        if result is None:
            _state(problem)  # the time budget counts from here, the start of the pass
            options = {k: v for k, v in problem.options.items() if not k.startswith("_")}
            result = compute_bounds(
                problem.layers,
                problem.input_lower,
                problem.input_upper,
                self.method,
                problem.domain,
                **options,
            )
            problem.options[key] = result
        return result.lower[index], result.upper[index]

    def layer_seconds(self, problem, index) -> float:
        """Seconds the pass spent on layer ``index`` (the pass runs when layer 0 asks)."""
        result = problem.options.get(f"_pass_{self.method}")
        if result is None:
            return 0.0
        return float(sum(row["seconds"] for row in result.report if row["layer"] == index))


class WhenWorthIt:
    """Run ``stage`` only when the linear bounds leave enough unstable neurons to matter.

    With few unstable neurons the main MILP is small and solves in moments, so per-neuron
    LP and MILP solves would cost more than they save. The threshold is the option
    ``auto_min_unstable`` (default 32, over all layers and samples); it reads the complete
    linear pass that ``"auto"`` runs first.
    """

    def __init__(self, stage: LPStage, min_unstable: int = 32):
        self.stage = stage
        self.name = stage.name
        self.min_unstable = min_unstable

    def layer_bounds(self, problem, index, lower, upper):
        linear = problem.options.get("_pass_linear")
        threshold = problem.options.get("auto_min_unstable", self.min_unstable)
        if linear is not None:
            unstable = sum(
                int(np.count_nonzero((lo < 0) & (hi > 0)))
                for layer, lo, hi in zip(problem.layers, linear.lower, linear.upper, strict=True)
                if layer.relu
            )
            if unstable < threshold:
                key = f"_skipped_{self.name}"
                if key not in problem.options:
                    problem.options[key] = True
                    problem.options.setdefault("notes", []).append(
                        {
                            "kind": "skipped",
                            "stage": self.name,
                            "reason": f"only {unstable} unstable neurons after the linear "
                            f"bounds (auto_min_unstable={threshold}): the main MILP is small",
                        }
                    )
                return lower, upper
        return self.stage.layer_bounds(problem, index, lower, upper)


register_method("lp", (MethodPassStage("linear"), IntervalStage(), LinearStage(), LPStage()))
register_method(
    "milp",
    (MethodPassStage("lp"), IntervalStage(), LinearStage(), LPStage(), MILPStage()),
)
register_method(
    "auto",
    (
        MethodPassStage("linear"),
        IntervalStage(),
        LinearStage(),
        WhenWorthIt(LPStage(default_budget=5.0, abandon_after=16)),
        WhenWorthIt(MILPStage(default_budget=5.0, max_binaries=20, abandon_after=8)),
    ),
)
