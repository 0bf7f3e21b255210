"""ReLU formulations as strategy objects: big-M, Gurobi's max constraint, indicators.

Each formulates one planned affine layer: stable-active neurons (and every neuron of a layer
without ReLU) are one equality row ``h = W x + b``; only the unstable ReLU neurons differ.
"""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import scipy.sparse as sp
from gurobipy import GRB

from .strategy import LayerSize, Namer, affine_expression, finite_bounds, row_nonzeros

__all__ = ["BigMReLU", "IndicatorReLU", "MaxReLU", "RELU_FORMULATION_OBJECTS", "ReLUFormulation"]


def add_rows(
    model: gp.Model,
    diagonal: list[tuple[gp.MVar, np.ndarray | float]],
    weight: sp.csr_array | None,
    previous: gp.MVar,
    sense: str,
    rhs: np.ndarray,
    name: str | None,
) -> gp.MConstr:
    """Rows ``sum_k c_k * v_k - W @ previous (sense) rhs``, one per row of ``weight``.

    Each ``(v_k, c_k)`` of ``diagonal`` is an MVar with one variable per row and its
    coefficients; ``weight=None`` leaves ``previous`` out. The rows are one sparse matrix
    given to ``addMConstr``: several times faster than building the same rows through
    matrix expressions, which matters when a model is built once per query (one model per
    class).
    """
    n = diagonal[0][0].size
    blocks = [-weight if weight is not None else sp.csr_array((n, previous.size))]
    blocks += [sp.diags_array(np.broadcast_to(np.asarray(c, float), n)) for _, c in diagonal]
    columns = previous.tolist() + [v for var, _ in diagonal for v in var.tolist()]
    matrix = sp.csr_array(sp.hstack(blocks, format="csr"))
    return model.addMConstr(
        matrix,
        gp.MVar.fromlist(columns),
        sense,
        np.broadcast_to(np.asarray(rhs, dtype=np.float64), n),
        name=name or "",
    )


class ReLUFormulation:
    """An affine layer with optional ReLU; subclasses say how unstable ReLUs are modelled.

    Stable-active neurons (and every neuron of a layer without ReLU) are one equality row
    ``h = W x + b``; inactive, constant and unread neurons are not in the plan at all.
    """

    name = ""

    def size(self, plan) -> LayerSize:
        """Variables, binaries, linear and general constraints and nonzeros of :meth:`build`."""
        nnz = row_nonzeros(plan.weight)
        linear = ~plan.unstable
        base = LayerSize(
            variables=len(plan.rows),
            constraints=int(linear.sum()),
            nonzeros=int((nnz[linear] + 1).sum()),
        )
        if plan.layer.relu and plan.unstable.any():
            base += self.unstable_size(int(plan.unstable.sum()), int(nnz[plan.unstable].sum()))
        return base

    def unstable_size(self, n: int, nnz: int) -> LayerSize:  # pragma: no cover - abstract
        raise NotImplementedError

    def build(self, model: gp.Model, plan, previous: gp.MVar, name: Namer) -> gp.MVar:
        """Add the layer's variables and constraints; return its variables (``plan.rows``)."""
        n = len(plan.rows)
        if n == 0:
            return model.addMVar(0)
        lo, hi = plan.lower, plan.upper
        if previous.size == 0:
            return self._build_expressions(model, plan, previous, name)
        if not plan.layer.relu:
            out = model.addMVar(n, lb=finite_bounds(lo), ub=finite_bounds(hi), name=name("z"))
            add_rows(model, [(out, 1.0)], plan.weight, previous, "=", plan.offset, name("linear"))
            return out
        out = model.addMVar(
            n, lb=finite_bounds(np.maximum(lo, 0.0)), ub=finite_bounds(hi), name=name("h")
        )
        active = np.flatnonzero(~plan.unstable)
        if active.size:
            add_rows(
                model,
                [(out[active], 1.0)],
                plan.weight[active],
                previous,
                "=",
                plan.offset[active],
                name("active"),
            )
        u = np.flatnonzero(plan.unstable)
        if u.size:
            self.build_unstable_rows(
                model, out[u], plan.weight[u], plan.offset[u], previous, lo[u], hi[u], name
            )
        return out

    def _build_expressions(self, model, plan, previous, name) -> gp.MVar:
        """:meth:`build` through matrix expressions (a layer that reads no variable)."""
        n = len(plan.rows)
        lo, hi = plan.lower, plan.upper
        affine = affine_expression(plan, previous)
        if not plan.layer.relu:
            out = model.addMVar(n, lb=finite_bounds(lo), ub=finite_bounds(hi), name=name("z"))
            model.addConstr(out == affine, name=name("linear"))
            return out
        out = model.addMVar(
            n, lb=finite_bounds(np.maximum(lo, 0.0)), ub=finite_bounds(hi), name=name("h")
        )
        active = ~plan.unstable
        if active.any():
            model.addConstr(out[active] == affine[active], name=name("active"))
        u = plan.unstable
        if u.any():
            self.build_unstable(model, out[u], affine[u], lo[u], hi[u], name)
        return out

    def build_unstable_rows(self, model, h, weight, offset, previous, lo, hi, name) -> None:
        """The unstable neurons ``h`` with ``z = weight @ previous + offset``; by default
        through :meth:`build_unstable` with the matrix expression of ``z``."""
        self.build_unstable(model, h, weight @ previous + offset, lo, hi, name)

    def build_unstable(self, model, h, z_expr, lo, hi, name) -> None:  # pragma: no cover
        raise NotImplementedError


class BigMReLU(ReLUFormulation):
    """``h >= z``, ``h <= z - l (1 - d)``, ``h <= u d`` with a binary ``d`` per neuron."""

    name = "bigm"

    def unstable_size(self, n, nnz):
        return LayerSize(variables=n, binaries=n, constraints=3 * n, nonzeros=2 * nnz + 5 * n)

    def build_unstable(self, model, h, z_expr, lo, hi, name):
        delta = model.addMVar(h.size, vtype=GRB.BINARY, name=name("relu_on"))
        model.addConstr(h >= z_expr, name=name("relu_lower"))
        model.addConstr(h <= z_expr - lo + lo * delta, name=name("relu_upper_on"))
        model.addConstr(h <= hi * delta, name=name("relu_upper_off"))

    def build_unstable_rows(self, model, h, weight, offset, previous, lo, hi, name):
        # the same rows as build_unstable, as sparse matrices
        delta = model.addMVar(h.size, vtype=GRB.BINARY, name=name("relu_on"))
        add_rows(model, [(h, 1.0)], weight, previous, ">", offset, name("relu_lower"))
        add_rows(
            model,
            [(h, 1.0), (delta, -lo)],
            weight,
            previous,
            "<",
            offset - lo,
            name("relu_upper_on"),
        )
        add_rows(model, [(h, 1.0), (delta, -hi)], None, previous, "<", 0.0, name("relu_upper_off"))


class MaxReLU(ReLUFormulation):
    """Gurobi's max general constraint ``h = max(z, 0)`` (no binary variable)."""

    name = "max"

    def unstable_size(self, n, nnz):
        return LayerSize(variables=n, constraints=n, general=n, nonzeros=nnz + n)

    def build_unstable(self, model, h, z_expr, lo, hi, name):
        z = model.addMVar(h.size, lb=finite_bounds(lo), ub=finite_bounds(hi), name=name("z"))
        model.addConstr(z == z_expr, name=name("pre_activation"))
        for j in range(z.size):
            model.addGenConstrMax(h[j].item(), [z[j].item()], constant=0.0, name=name("relu"))


class IndicatorReLU(ReLUFormulation):
    """``h >= z`` and indicator constraints ``d = 1 -> h = z``, ``d = 0 -> h <= 0``."""

    name = "indicator"

    def unstable_size(self, n, nnz):
        return LayerSize(variables=n, binaries=n, constraints=n, general=2 * n, nonzeros=nnz + n)

    def build_unstable(self, model, h, z_expr, lo, hi, name):
        delta = model.addMVar(h.size, vtype=GRB.BINARY, name=name("relu_on"))
        model.addConstr(h >= z_expr, name=name("relu_lower"))
        model.addGenConstrIndicator(delta, True, h - z_expr == 0.0, name=name("relu_on_eq"))
        model.addGenConstrIndicator(delta, False, h <= 0.0, name=name("relu_off"))


RELU_FORMULATION_OBJECTS = {f.name: f for f in (BigMReLU(), MaxReLU(), IndicatorReLU())}
