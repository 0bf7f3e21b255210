"""Max-pooling formulations as strategy objects: big-M, Gurobi's max constraint, indicators.

The plan of a max-pooling layer keeps, per window, only the inputs whose upper bound is above
the largest lower bound of the window (the others can never be the maximum); a window left
with one input is linear. The remaining windows get one of the formulations here.
"""

from __future__ import annotations

from dataclasses import replace

import gurobipy as gp
import numpy as np
import scipy.sparse as sp
from gurobipy import GRB

from ..exceptions import UnboundedInputError
from .strategy import LayerSize, Namer, finite_bounds

__all__ = [
    "BigMMaxPool",
    "IndicatorMaxPool",
    "MAX_POOL_FORMULATIONS",
    "MaxMaxPool",
    "MaxPoolFormulation",
]


class MaxPoolFormulation:
    """A max-pooling layer: ``y = max`` of each window's surviving inputs.

    The plan (see :func:`~gurobi_sparse_surrogate.formulation.planning.plan_network`) keeps,
    per window, the inputs whose upper bound is not below another input's lower bound (plus
    at most one constant, in ``plan.offset``). A window with one surviving input is the
    equality ``y = x``; the others (``plan.unstable``) are modelled by the subclass.
    """

    name = ""

    @staticmethod
    def candidates(plan):
        """Per unstable window: rows, var-candidate (window, column) pairs and constants."""
        weight = sp.csr_array(plan.weight[np.flatnonzero(plan.unstable)])
        coo = weight.tocoo()
        constant = plan.offset[plan.unstable]
        return coo.row, coo.col, constant

    def size(self, plan) -> LayerSize:
        """Variables, binaries, linear and general constraints and nonzeros of :meth:`build`."""
        n = len(plan.rows)
        u = int(plan.unstable.sum())
        base = LayerSize(variables=n, constraints=n - u, nonzeros=2 * (n - u))
        if u:
            rows, _, constant = self.candidates(plan)
            base += self.unstable_size(u, rows.size, int(np.isfinite(constant).sum()))
        return base

    def unstable_size(self, windows: int, var_candidates: int, constants: int) -> LayerSize:
        raise NotImplementedError  # pragma: no cover

    def build(self, model: gp.Model, plan, previous: gp.MVar, name: Namer) -> gp.MVar:
        """Add the pooled variables (``plan.rows``) and their constraints; return them."""
        n = len(plan.rows)
        if n == 0:
            return model.addMVar(0)
        out = model.addMVar(
            n, lb=finite_bounds(plan.lower), ub=finite_bounds(plan.upper), name=name("pool")
        )
        single = ~plan.unstable
        if single.any():
            model.addConstr(
                out[single] == plan.weight[np.flatnonzero(single)] @ previous,
                name=name("pool_single"),
            )
        if plan.unstable.any():
            self.build_unstable(model, plan, out[plan.unstable], previous, name)
        return out

    def build_unstable(self, model, plan, y, previous, name) -> None:  # pragma: no cover
        raise NotImplementedError


def _selection(rows: np.ndarray, n_rows: int, cols: np.ndarray, n_cols: int) -> sp.csr_array:
    return sp.csr_array(
        (np.ones(rows.size), (rows, cols)), shape=(n_rows, n_cols), dtype=np.float64
    )


class BigMMaxPool(MaxPoolFormulation):
    """A binary ``d_k`` per surviving input, ``sum d = 1``, ``y >= x_k`` and
    ``y <= x_k + (U_k - l_k)(1 - d_k)`` where ``U_k`` is the largest upper bound of the
    window's other inputs."""

    name = "bigm"

    def unstable_size(self, windows, var_candidates, constants):
        k = var_candidates + constants
        return LayerSize(
            variables=k,
            binaries=k,
            constraints=2 * var_candidates + constants + windows,
            nonzeros=5 * var_candidates + 2 * constants + k,
        )

    def size(self, plan) -> LayerSize:
        """As the base class counts, less the big-M terms that are zero (a candidate whose
        lower bound reaches every other candidate's upper bound): Gurobi stores no zeros."""
        size = super().size(plan)
        if plan.unstable.any():
            zeros = int((self.big_m(plan)[3] == 0.0).sum())
            size = replace(size, nonzeros=size.nonzeros - zeros)
        return size

    def big_m(self, plan):
        """Per candidate (variables first, then constants): ``(rows, cols, constant,
        big_m, const_rows, all_rows)`` with ``big_m = max(U_k - l_k, 0)``."""
        rows, cols, constant = self.candidates(plan)
        windows = int(plan.unstable.sum())
        lo_var = plan.candidate_lower[cols]
        hi_var = plan.candidate_upper[cols]
        const_rows = np.flatnonzero(np.isfinite(constant))
        # the largest and second largest upper bound per window (over all candidates)
        all_rows = np.concatenate([rows, const_rows])
        all_hi = np.concatenate([hi_var, constant[const_rows]])
        all_lo = np.concatenate([lo_var, constant[const_rows]])
        if not (np.isfinite(all_hi).all() and np.isfinite(all_lo).all()):
            raise UnboundedInputError(
                f"the big-M max-pool formulation of {plan.layer.name} needs finite bounds on "
                "the pooled values; bound the inputs or use relu_formulation='max'"
            )
        order = np.lexsort((-all_hi, all_rows))
        first = np.full(windows, -np.inf)
        second = np.full(windows, -np.inf)
        sorted_rows, sorted_hi = all_rows[order], all_hi[order]
        starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
        first[sorted_rows[starts]] = sorted_hi[starts]
        has_second = starts + 1 < sorted_rows.size
        nxt = np.minimum(starts + 1, sorted_rows.size - 1)
        ok = has_second & (sorted_rows[nxt] == sorted_rows[starts])
        second[sorted_rows[starts[ok]]] = sorted_hi[nxt[ok]]
        others_hi = np.where(all_hi >= first[all_rows], second[all_rows], first[all_rows])
        big_m = np.maximum(others_hi - all_lo, 0.0)
        return rows, cols, constant, big_m, const_rows, all_rows

    def build_unstable(self, model, plan, y, previous, name):
        rows, cols, constant, big_m, const_rows, all_rows = self.big_m(plan)
        windows = y.size
        k = all_rows.size
        n_var = rows.size
        d = model.addMVar(k, vtype=GRB.BINARY, name=name("pool_on"))
        pick_y = _selection(np.arange(n_var), n_var, rows, windows)
        pick_x = _selection(np.arange(n_var), n_var, cols, previous.size)
        model.addConstr(pick_y @ y - pick_x @ previous >= 0.0, name=name("pool_lower"))
        m_var = big_m[:n_var]
        model.addConstr(
            pick_y @ y - pick_x @ previous + m_var * d[:n_var] <= m_var,
            name=name("pool_upper"),
        )
        if const_rows.size:
            m_c = big_m[n_var:]
            model.addConstr(
                y[const_rows] + m_c * d[n_var:] <= constant[const_rows] + m_c,
                name=name("pool_upper_constant"),
            )
        group = _selection(all_rows, windows, np.arange(k), k)
        model.addConstr(group @ d == 1.0, name=name("pool_choice"))


class MaxMaxPool(MaxPoolFormulation):
    """Gurobi's max general constraint over each window's surviving inputs."""

    name = "max"

    def unstable_size(self, windows, var_candidates, constants):
        return LayerSize(general=windows)

    def build_unstable(self, model, plan, y, previous, name):
        rows, cols, constant = self.candidates(plan)
        starts = np.searchsorted(rows, np.arange(y.size + 1))
        for r in range(y.size):  # one general constraint per window (a solver call each)
            members = [previous[c].item() for c in cols[starts[r] : starts[r + 1]]]
            c = constant[r]
            model.addGenConstrMax(
                y[r].item(),
                members,
                constant=float(c) if np.isfinite(c) else None,
                name=name("pool"),
            )


class IndicatorMaxPool(MaxPoolFormulation):
    """``y >= x_k``, a binary ``d_k`` per surviving input with ``sum d = 1`` and indicator
    constraints ``d_k = 1 -> y <= x_k``."""

    name = "indicator"

    def unstable_size(self, windows, var_candidates, constants):
        k = var_candidates + constants
        return LayerSize(
            variables=k,
            binaries=k,
            constraints=var_candidates + windows,
            general=k,
            nonzeros=2 * var_candidates + k,
        )

    def build_unstable(self, model, plan, y, previous, name):
        rows, cols, constant = self.candidates(plan)
        windows = y.size
        const_rows = np.flatnonzero(np.isfinite(constant))
        n_var, k = rows.size, rows.size + const_rows.size
        d = model.addMVar(k, vtype=GRB.BINARY, name=name("pool_on"))
        pick_y = _selection(np.arange(n_var), n_var, rows, windows)
        pick_x = _selection(np.arange(n_var), n_var, cols, previous.size)
        model.addConstr(pick_y @ y - pick_x @ previous >= 0.0, name=name("pool_lower"))
        for j in range(n_var):  # one indicator per candidate (a solver call each)
            model.addGenConstrIndicator(
                d[j].item(),
                True,
                y[rows[j]].item() - previous[cols[j]].item() <= 0.0,
                name=name("pool_on_le"),
            )
        for j, r in enumerate(const_rows):
            model.addGenConstrIndicator(
                d[n_var + j].item(),
                True,
                y[r].item() <= float(constant[r]),
                name=name("pool_on_le"),
            )
        group = _selection(np.concatenate([rows, const_rows]), windows, np.arange(k), k)
        model.addConstr(group @ d == 1.0, name=name("pool_choice"))


MAX_POOL_FORMULATIONS = {f.name: f for f in (BigMMaxPool(), MaxMaxPool(), IndicatorMaxPool())}
