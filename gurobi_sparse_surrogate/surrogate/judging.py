"""Judging a solution of the user's model on the dense network.

:class:`DenseJudge` puts the dense network's outputs in place of the embedded network's, then
re-evaluates the user's objective and re-checks the user's linear constraints and the output
variables' bounds with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gurobipy as gp
import numpy as np
import scipy.sparse as sp
from gurobipy import GRB

if TYPE_CHECKING:
    from .swap import SurrogateSwap


class DenseJudge:
    """Re-scores incumbents of the current model on the dense network."""

    def __init__(self, swap: SurrogateSwap, embedding: Any = None):
        m = swap.model
        m.update()
        self.vars = m.getVars()
        index = {v: i for i, v in enumerate(self.vars)}
        embedding_constrs = [] if embedding is None else embedding.constrs
        internal = set() if embedding is None else set(embedding.vars)
        internal -= set(swap.outputs.reshape(-1).tolist())
        #: which of ``vars`` are the user's (not the embedding's internal variables)
        self.user = np.array([v not in internal for v in self.vars], dtype=bool)
        self.input_idx = np.array([index[v] for v in swap.inputs.reshape(-1).tolist()])
        self.output_idx = np.array([index[v] for v in swap.outputs.reshape(-1).tolist()])
        self.sense = m.ModelSense
        self.objective = _objective_evaluator(m, index)
        skip = {c.index for c in embedding_constrs}
        rows = np.array([i for i in range(m.NumConstrs) if i not in skip], dtype=int)
        matrix = m.getA().tocsr()
        self.rows = sp.csr_array(matrix[rows]) if rows.size else None
        if self.rows is not None:
            constrs = m.getConstrs()
            self.rhs = np.array(m.getAttr("RHS", [constrs[i] for i in rows]))
            self.senses = np.array(m.getAttr("Sense", [constrs[i] for i in rows]))
            # only rows that read an output can change when the outputs change
            reads = np.diff(sp.csr_array(self.rows[:, self.output_idx]).indptr) > 0
            self.rows, self.rhs, self.senses = self.rows[reads], self.rhs[reads], self.senses[reads]
        lb = np.array(m.getAttr("LB", [self.vars[i] for i in self.output_idx]))
        ub = np.array(m.getAttr("UB", [self.vars[i] for i in self.output_idx]))
        self.output_lb, self.output_ub = lb, ub
        #: the user's general or quadratic constraints read the outputs: the values of the
        #: variables they define cannot be recomputed here, so every incumbent is repaired
        self.opaque = _nonlinear_constraints_read(
            m, embedding, set(swap.outputs.reshape(-1).tolist())
        )
        self.swap = swap

    def judge(
        self, values: np.ndarray, solved: bool = False
    ) -> tuple[np.ndarray, np.ndarray, float, bool, bool]:
        """Dense outputs, the solution with them in, its objective, feasibility and validity.

        ``solved``: the values come from a solve with the dense outputs fixed (a repair), so
        the constraints this judge cannot recompute hold by construction.
        """
        swap = self.swap
        x = values[self.input_idx].reshape(swap.inputs.shape)
        dense = swap.dense_forward(x)
        values = values.copy()
        values[self.output_idx] = dense.reshape(-1)
        objective = self.objective(values)
        feasible = self._feasible(values, dense.reshape(-1), solved)
        valid = feasible and (swap.valid is None or bool(swap.valid(x, dense)))
        return dense, values, objective, feasible, valid

    def _feasible(self, values: np.ndarray, outputs: np.ndarray, solved: bool) -> bool:
        if self.opaque and not solved:
            return False
        tol = self.swap.tolerance
        if np.any(outputs < self.output_lb - tol) or np.any(outputs > self.output_ub + tol):
            return False
        if self.rows is None or self.rows.shape[0] == 0:
            return True
        activity = self.rows @ values
        slack = tol * (1.0 + np.abs(self.rhs))
        ok = np.where(
            self.senses == "<",
            activity <= self.rhs + slack,
            np.where(
                self.senses == ">",
                activity >= self.rhs - slack,
                np.abs(activity - self.rhs) <= slack,
            ),
        )
        return bool(ok.all())

    def better(self, a: float, b: float) -> bool:
        """Whether objective ``a`` is strictly better than ``b``."""
        return (
            a < b - 1e-9 * (1 + abs(b))
            if self.sense == GRB.MINIMIZE
            else a > b + 1e-9 * (1 + abs(b))
        )


def _constraint_vars(model: gp.Model, constr: Any) -> list[gp.Var] | None:
    """Variables of a general or quadratic constraint (None when its type is not read here)."""
    if isinstance(constr, gp.QConstr):
        row = model.getQCRow(constr)
        linear = row.getLinExpr()
        return [
            *(row.getVar1(i) for i in range(row.size())),
            *(row.getVar2(i) for i in range(row.size())),
            *(linear.getVar(i) for i in range(linear.size())),
        ]
    kind = constr.GenConstrType
    if kind in (GRB.GENCONSTR_MAX, GRB.GENCONSTR_MIN):
        getter = model.getGenConstrMax if kind == GRB.GENCONSTR_MAX else model.getGenConstrMin
        result, arguments, _ = getter(constr)
        return [result, *arguments]
    if kind == GRB.GENCONSTR_ABS:
        return list(model.getGenConstrAbs(constr))
    if kind in (GRB.GENCONSTR_AND, GRB.GENCONSTR_OR):
        getter = model.getGenConstrAnd if kind == GRB.GENCONSTR_AND else model.getGenConstrOr
        result, arguments = getter(constr)
        return [result, *arguments]
    if kind == GRB.GENCONSTR_INDICATOR:
        binary, _, expr, _, _ = model.getGenConstrIndicator(constr)
        return [binary, *(expr.getVar(i) for i in range(expr.size()))]
    return None


def _nonlinear_constraints_read(model: gp.Model, embedding: Any, outputs: set) -> bool:
    """Whether a general or quadratic constraint of the user's reads one of ``outputs``.

    Constraints of a type whose variables are not read here count as reading them.
    """
    own = set() if embedding is None else {*embedding.genconstrs, *embedding.qconstrs}
    user = [c for c in [*model.getGenConstrs(), *model.getQConstrs()] if c not in own]
    for constr in user:
        variables = _constraint_vars(model, constr)
        if variables is None or any(v in outputs for v in variables):
            return True
    return False


def _objective_evaluator(
    model: gp.Model, index: dict[gp.Var, int]
) -> Callable[[np.ndarray], float]:
    """A function of the full value vector that evaluates the model's (linear or quadratic) objective."""
    expr = model.getObjective()
    linear = expr.getLinExpr() if isinstance(expr, gp.QuadExpr) else expr
    lin_idx = np.array([index[linear.getVar(i)] for i in range(linear.size())], dtype=int)
    lin_coef = np.array([linear.getCoeff(i) for i in range(linear.size())])
    constant = linear.getConstant()
    if isinstance(expr, gp.QuadExpr) and expr.size():
        q1 = np.array([index[expr.getVar1(i)] for i in range(expr.size())], dtype=int)
        q2 = np.array([index[expr.getVar2(i)] for i in range(expr.size())], dtype=int)
        qc = np.array([expr.getCoeff(i) for i in range(expr.size())])
    else:
        q1 = q2 = np.zeros(0, dtype=int)
        qc = np.zeros(0)

    def evaluate(values: np.ndarray) -> float:
        return float(constant + lin_coef @ values[lin_idx] + qc @ (values[q1] * values[q2]))

    return evaluate


__all__ = ["DenseJudge"]
