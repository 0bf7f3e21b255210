"""Solve a user's model through a pruned surrogate of an embedded network, judged on the dense one.

:class:`SurrogateSwap` takes a Gurobi model in which a dense network is embedded (by
gurobi-ml's ``add_predictor_constr`` or by this package) and

1. swaps the dense embedding for a sparse embedding of a pruned surrogate, keeping the
   user's input and output variables and everything else in the model;
2. solves with a callback that re-scores every incumbent on the dense network: the user's
   objective with the dense outputs put in place of the surrogate's, and whether the user's
   other linear constraints and the output variables' own bounds still hold with them;
3. repairs incumbents that the dense outputs make infeasible, by fixing the inputs, putting
   the dense outputs in and re-solving the rest of the model without any network;
4. falls back to the dense model with the best dense-valid solution as a complete MIP start,
   so the result is never worse than the surrogate's and can still be proved optimal;
5. restores the dense embedding when the ``with`` block is left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gurobipy as gp
import numpy as np
import scipy.sparse as sp
from gurobipy import GRB
from torch import nn

from ..domains import Box, Domain
from ..exceptions import ModelTooLargeError, NestedSwapError, UnboundedInputError
from ..formulation.predictor import SparseSequentialConstr, add_sparse_predictor_constr
from ..network.extraction import Float64Network, extract_layers
from ..summaries import compact_repr, number, phase_table, seconds

logger = logging.getLogger(__name__)

Validity = Callable[[np.ndarray, np.ndarray], bool]

STATUS_OPTIMAL = "optimal"
STATUS_FEASIBLE = "feasible"
STATUS_INFEASIBLE = "infeasible"
STATUS_NO_SOLUTION = "no_solution"


@dataclass
class Incumbent:
    """One solution found during the solve, judged on the dense network."""

    time: float
    phase: str
    surrogate_objective: float | None
    dense_objective: float | None
    feasible: bool
    valid: bool
    repaired: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The record as a plain dict."""
        return dict(vars(self))


@dataclass
class SwapResult:
    """The outcome of :meth:`SurrogateSwap.optimize`, judged on the dense network.

    Attributes
    ----------
    status : str
        ``"optimal"`` (proved on the dense model), ``"feasible"`` (a dense-valid solution,
        not proved optimal), ``"infeasible"`` (the dense model was proved infeasible) or
        ``"no_solution"``.
    objective : float or None
        The user's objective at the best dense-valid solution, with the dense outputs.
    bound : float or None
        The best proven bound of the dense model (only after a dense phase).
    time_to_first_valid : float or None
        Seconds from the start of :meth:`~SurrogateSwap.optimize` to the first dense-valid
        solution, plus the time spent pruning surrogates beforehand (counted by the first
        ``optimize()`` of a swap only).
    runtime : float
        Total seconds of :meth:`~SurrogateSwap.optimize` (pruning before it not included).
    pruning_seconds : float
        Seconds spent pruning (and finetuning) the surrogates (0 after the first
        ``optimize()`` of a swap).
    started_at : float
        ``time.perf_counter()`` when :meth:`~SurrogateSwap.optimize` started; incumbent
        times in :attr:`history` count from it.
    phases : list of dict
        One entry per phase: ``name``, ``seconds``, ``gurobi_status``, ``incumbents``,
        ``valid`` and ``model_stats`` (the embedding's ``stats`` when it is this
        package's).
    history : list of Incumbent
        Every incumbent in the order found.
    inputs, dense_outputs : numpy.ndarray or None
        The network's inputs at the best solution and the dense network's outputs there.

    Notes
    -----
    ``print(result)`` shows :meth:`summary`. To read the answer from your own variables as
    after a gurobipy solve (``x.X``, ``pc.get_error()``), call :meth:`load` once the dense
    embedding is back in the model (after the ``with`` block); :meth:`value` reads it without
    touching the model.
    """

    status: str
    objective: float | None
    bound: float | None
    time_to_first_valid: float | None
    runtime: float
    pruning_seconds: float
    started_at: float = 0.0
    phases: list[dict] = field(default_factory=list)
    history: list[Incumbent] = field(default_factory=list)
    inputs: np.ndarray | None = None
    dense_outputs: np.ndarray | None = None
    _solution: dict[gp.Var, float] = field(default_factory=dict, repr=False)
    _swap: Any = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        return compact_repr(
            "SwapResult",
            {
                "status": self.status,
                "objective": self.objective,
                "time_to_first_valid": self.time_to_first_valid,
                "runtime": self.runtime,
                "phases": [p["name"] for p in self.phases],
                "incumbents": len(self.history),
            },
        )

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """A few lines: status, objective and bound, times, and one row per phase.

        Examples
        --------
        >>> r = SwapResult("feasible", 1.5, None, 0.25, 2.0, 0.1,
        ...                phases=[{"name": "surrogate 0", "seconds": 1.9,
        ...                         "gurobi_status": 9, "incumbents": 3, "valid": 2}])
        >>> print(r.summary())
        SurrogateSwap result: feasible
          objective (dense)  1.5
          bound              -
          first valid after  0.25 s   total 2.00 s (pruning 0.10 s)
          phase         seconds incumbents  valid  status
          surrogate 0      1.90          3      2  TIME_LIMIT
        """
        lines = [
            f"SurrogateSwap result: {self.status}",
            f"  objective (dense)  {number(self.objective)}",
            f"  bound              {number(self.bound)}",
            f"  first valid after  {seconds(self.time_to_first_valid):<8} total "
            f"{seconds(self.runtime)} (pruning {seconds(self.pruning_seconds)})",
            *phase_table(self.phases),
        ]
        return "\n".join(lines)

    def load(self) -> SwapResult:
        """Load the best dense-valid solution into the model, so that ``x.X`` reads it.

        After the ``with`` block (or :meth:`SurrogateSwap.restore`) the dense embedding is
        back in the model, but the model holds no solution: the surrogate's solves were of
        another model. This re-solves the dense model with the network's inputs fixed at the
        best solution (the network is then determined), then solves it once more from that
        complete solution as a MIP start with ``SolutionLimit=1``, inputs free again and the
        model unchanged, so that every variable (``X``, ``ObjVal``) and the dense embedding's
        ``get_error()`` describe the judged answer. Parameters and MIP start values are
        restored afterwards. Like any gurobipy solution, it is discarded by the next change
        to the model.

        Returns
        -------
        SwapResult
            ``self``, so that ``result = swap.optimize(...)`` can be followed by
            ``result.load()`` or chained.

        Raises
        ------
        LookupError
            When no dense-valid solution was found.
        RuntimeError
            When the surrogate is in the model (inside the ``with`` block): leave the block or
            call :meth:`SurrogateSwap.restore` first.
        """
        if self.inputs is None or not self._solution:
            raise LookupError(f"no dense-valid solution to load (status {self.status!r})")
        if self._swap is None:
            raise RuntimeError("this result is not attached to a SurrogateSwap")
        self._swap.load_solution(self)
        return self

    def value(self, variables: gp.Var | gp.MVar | Sequence[gp.Var]) -> float | np.ndarray:
        """Values of the user's variables at the best dense-valid solution.

        Network outputs get the dense network's values.

        Raises
        ------
        LookupError
            When there is no solution or the variable is not one of the model's own.
        """
        if not self._solution:
            raise LookupError(f"no dense-valid solution was found (status {self.status!r})")
        if isinstance(variables, gp.Var):
            return self._lookup(variables)
        if isinstance(variables, gp.MVar):
            flat = [self._lookup(v) for v in variables.reshape(-1).tolist()]
            return np.array(flat).reshape(variables.shape)
        return np.array([self._lookup(v) for v in variables])

    def _lookup(self, var: gp.Var) -> float:
        try:
            return self._solution[var]
        except KeyError:
            raise LookupError(
                f"variable {var} is not a variable of the user's model (the network's internal "
                "variables are not reported)"
            ) from None


def final_solutions(model: gp.Model, variables: list[gp.Var]) -> list[tuple[np.ndarray, float]]:
    """Every solution ``model`` holds after optimize, as ``(values of variables, objective)``.

    Solutions found in presolve, and the solution of a model without integer variables (an
    LP, when bounds left no unstable neuron), never reach a MIPSOL callback.
    """
    if model.SolCount == 0:
        return []
    if not model.IsMIP:
        return [(np.array(model.getAttr("X", variables)), model.ObjVal)]
    found = []
    for k in range(model.SolCount):
        model.Params.SolutionNumber = k
        found.append((np.array(model.getAttr("Xn", variables)), model.PoolObjVal))
    model.Params.SolutionNumber = 0
    return found


#: Two solutions are the same when no value differs by more than this, relative to its size
#: (solution pool copies of one incumbent differ by rounding, ~1e-16).
DUPLICATE_TOLERANCE = 1e-9


def is_duplicate(values: np.ndarray, seen: Sequence[np.ndarray]) -> bool:
    """Whether ``values`` equals one of ``seen`` within :data:`DUPLICATE_TOLERANCE`."""
    if not len(seen):
        return False
    stacked = np.asarray(seen)
    scale = 1.0 + np.abs(values)
    return bool((np.abs(stacked - values) <= DUPLICATE_TOLERANCE * scale).all(axis=1).any())


def optimize_judging(
    model: gp.Model,
    variables: list[gp.Var],
    offer: Callable[[np.ndarray, float], bool],
    stop_when_offered: bool = False,
) -> None:
    """Optimize ``model`` and hand every solution it finds to ``offer`` once.

    ``offer(values of variables, solver objective) -> bool`` is called from a MIPSOL callback
    for each incumbent, then for the solutions the model holds at the end (those found in
    presolve, or an LP's, never reach the callback); a solution already offered (within
    :data:`DUPLICATE_TOLERANCE`) is skipped.
    With ``stop_when_offered``, the solve stops at the first offer that returns True.
    """
    seen: list[np.ndarray] = []

    def once(values: np.ndarray, objective: float) -> bool:
        if is_duplicate(values, seen):
            return False
        seen.append(values)
        return offer(values, objective)

    def callback(m, where):
        if where != GRB.Callback.MIPSOL:
            return
        values = np.array(m.cbGetSolution(variables))
        if once(values, m.cbGet(GRB.Callback.MIPSOL_OBJ)) and stop_when_offered:
            m.terminate()

    model.optimize(callback)
    for values, objective in final_solutions(model, variables):
        once(values, objective)


def proven_bound(model: gp.Model) -> float | None:
    """The best proven objective bound after optimize (the optimum of a solved LP)."""
    try:
        if model.IsMIP:
            return float(model.ObjBound)
        return float(model.ObjVal) if model.Status == GRB.OPTIMAL else None
    except gp.GurobiError:
        return None


class _Judge:
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

    def better(self, a: float, b: float | None) -> bool:
        """Whether objective ``a`` is strictly better than ``b``."""
        if b is None:
            return True
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


#: The swap that has each embedding (by ``id``) swapped out; the swap holds a reference to the
#: embedding, so the id is not reused while it is recorded.
_SWAPPED_OUT: dict[int, SurrogateSwap] = {}


class SurrogateSwap:
    """Swap a dense network embedding for a pruned surrogate inside any Gurobi model.

    Parameters
    ----------
    gp_model : gurobipy.Model
        The user's model.
    predictor_constr : gurobi-ml predictor constraint
        The dense network's embedding in ``gp_model`` (from ``gurobi_ml.add_predictor_constr``
        or :func:`~gurobi_sparse_surrogate.add_sparse_predictor_constr`); its ``predictor``
        attribute is the dense network.
    surrogate : float, torch.nn.Sequential, or a sequence of them
        A sparsity (the dense network is pruned with
        :func:`~gurobi_sparse_surrogate.prune_network`), a pruned network, or a schedule of
        them tried in turn (for example ``[0.9, 0.8, 0.5]``) before the dense fallback.
    prune_options : dict, optional
        Keyword arguments of ``prune_network`` for surrogates given as a sparsity.
    embed_options : dict, optional
        Keyword arguments of ``add_sparse_predictor_constr`` for the surrogate (such as
        ``relu_formulation``, ``bounds`` or ``domain``).
    valid : callable, optional
        ``valid(inputs, dense_outputs) -> bool``: an extra condition for a solution to count
        as valid (for example "the dense network misclassifies"); arrays have shapes
        ``(k, n_in)`` and ``(k, n_out)``.
    tolerance : float
        Feasibility tolerance for re-checking the user's constraints with the dense outputs.
    dense_options : dict, optional
        Keyword arguments for rebuilding the dense embedding (for the fallback and on
        restore); by default those it was built with (for this package's embedding) or none
        (gurobi-ml's). Lets a caller embed a cheap placeholder first and pay for tight
        bounds only when the dense model is solved.

    Examples
    --------
    >>> with SurrogateSwap(m, pc, surrogate=0.8) as swap:     # doctest: +SKIP
    ...     result = swap.optimize(time_limit=60)
    >>> result.status, result.objective, result.value(x)      # doctest: +SKIP
    """

    def __init__(
        self,
        gp_model: gp.Model,
        predictor_constr: Any,
        surrogate: float | nn.Module | Sequence[float | nn.Module] = 0.8,
        *,
        prune_options: dict | None = None,
        embed_options: dict | None = None,
        valid: Validity | None = None,
        tolerance: float = 1e-5,
        dense_options: dict | None = None,
    ) -> None:
        dense = getattr(predictor_constr, "predictor", None)
        if not isinstance(dense, nn.Sequential):
            raise TypeError(
                "predictor_constr must be the embedding of a torch nn.Sequential (from "
                "gurobi_ml.add_predictor_constr or add_sparse_predictor_constr), got "
                f"{type(predictor_constr).__name__}"
            )
        self.model = gp_model
        self.dense_constr = predictor_constr
        self.dense_network = dense
        self.inputs: gp.MVar = predictor_constr.input
        self.outputs: gp.MVar = predictor_constr.output
        self.valid = valid
        self.tolerance = tolerance
        self.embed_options = dict(embed_options or {})
        self.dense_forward = Float64Network(dense)
        n_in, n_out = self.inputs.shape[-1], self.outputs.shape[-1]
        schedule = list(surrogate) if isinstance(surrogate, (list, tuple)) else [surrogate]
        if not schedule:
            raise ValueError("surrogate schedule is empty")
        self.pruning_seconds = 0.0
        self.surrogates: list[nn.Module] = []
        for item in schedule:
            start = time.perf_counter()
            net = self._make_surrogate(item, dict(prune_options or {}))
            self.pruning_seconds += time.perf_counter() - start
            layers = extract_layers(net)
            if layers[0].n_in != n_in or layers[-1].n_out != n_out:
                raise ValueError(
                    f"the surrogate maps {layers[0].n_in} inputs to {layers[-1].n_out} outputs; "
                    f"the dense network maps {n_in} to {n_out}"
                )
            self.surrogates.append(net)
        self._surrogate_constr: SparseSequentialConstr | None = None
        self._pruning_counted = False
        self._installed_index = -1
        self._dense_installed = True
        if dense_options is None:
            own = isinstance(predictor_constr, SparseSequentialConstr)
            dense_options = predictor_constr.options.as_dict() if own else {}
        self._dense_kwargs = dict(dense_options)
        self._output_bounds: tuple[np.ndarray, np.ndarray] | None = None
        self._outputs_created = False

    def _make_surrogate(self, item: Any, prune_options: dict) -> nn.Module:
        if isinstance(item, nn.Module):
            return item
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            from ..network.importance import INSTANCE_AWARE
            from ..network.pruning import prune_network

            if (
                prune_options.get("method") in INSTANCE_AWARE
                and prune_options.get("domain") is None
            ):
                prune_options = {**prune_options, "domain": self._input_domain()}
            return prune_network(self.dense_network, float(item), **prune_options)
        raise TypeError(
            f"a surrogate must be a sparsity in [0, 1) or a torch network, got {item!r}"
        )

    def _input_domain(self) -> Domain:
        """The domain instance-aware pruning scores over: the embedding's own domain if it was
        given one, else the box of the input variables' bounds (over every input row)."""
        domain = self.embed_options.get("domain")
        if domain is None:
            domain = getattr(getattr(self.dense_constr, "options", None), "domain", None)
        if domain is not None:
            return domain
        self.model.update()
        lower = np.atleast_2d(self.inputs.LB).min(axis=0)
        upper = np.atleast_2d(self.inputs.UB).max(axis=0)
        if not (np.isfinite(lower).all() and np.isfinite(upper).all()):
            raise UnboundedInputError(
                "instance-aware pruning (method 'activation' or 'bound') scores weights over the "
                "input domain, but the input variables have infinite bounds: give finite bounds "
                "or prune_options={'domain': Box(...)}"
            )
        return Box(lower, upper)

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> SurrogateSwap:
        self.install_surrogate(0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    # -- swapping ------------------------------------------------------------------------------

    def _remove_dense(self) -> None:
        if not self._dense_installed:
            return
        m, pc = self.model, self.dense_constr
        m.update()
        outputs = set(self.outputs.reshape(-1).tolist())
        keep = outputs | set(self.inputs.reshape(-1).tolist())
        added = pc.vars
        if self._output_bounds is None:
            # decided on the user's embedding only: a rebuilt dense embedding receives the
            # outputs as given variables, but they are still the ones the user's created
            self._outputs_created = any(v in outputs for v in added)
        lb = np.asarray(self.outputs.LB).copy()
        ub = np.asarray(self.outputs.UB).copy()
        self._output_bounds = (lb, ub)
        m.remove([c for c in pc.constrs])
        m.remove(list(pc.genconstrs))
        m.remove(list(pc.qconstrs))
        m.remove(list(pc.sos))
        m.remove([v for v in added if v not in keep])
        if self._outputs_created:
            # the dense embedding's own output bounds are not the surrogate's
            self.outputs.LB = -GRB.INFINITY
            self.outputs.UB = GRB.INFINITY
        m.update()
        self._dense_installed = False

    def _install_dense(self) -> None:
        if self._dense_installed:
            return
        m, pc = self.model, self.dense_constr
        m.update()
        rebuilt = type(pc)(m, self.dense_network, self.inputs, self.outputs, **self._dense_kwargs)
        if self._output_bounds is not None:  # only once rebuilt: a failed rebuild changes nothing
            self.outputs.LB, self.outputs.UB = self._output_bounds
        # the user's handle stays valid: it now describes the rebuilt embedding
        pc.__dict__.update(rebuilt.__dict__)
        if self._outputs_created and "remove" not in pc.__dict__:
            pc.remove = _removing_outputs(pc, self.outputs)
        m.update()
        self._dense_installed = True

    def install_surrogate(self, index: int = 0) -> SparseSequentialConstr:
        """Put surrogate ``index`` of the schedule in place of the current embedding.

        Raises
        ------
        NestedSwapError
            When another swap has this embedding swapped out (a nested ``with`` block on the
            same embedding): nothing is changed.
        """
        if self._surrogate_constr is not None and self._installed_index == index:
            return self._surrogate_constr  # already in place: no second bounding pass
        self._claim()
        self._remove_surrogate()
        self._remove_dense()
        self._surrogate_constr = add_sparse_predictor_constr(
            self.model, self.surrogates[index], self.inputs, self.outputs, **self.embed_options
        )
        self._installed_index = index
        return self._surrogate_constr

    def _remove_surrogate(self) -> None:
        if self._surrogate_constr is not None:
            self._surrogate_constr.remove()
            self._surrogate_constr = None
            self.model.update()

    def restore(self) -> None:
        """Remove the surrogate and put the dense embedding back (as on leaving the block)."""
        if _SWAPPED_OUT.get(id(self.dense_constr), self) is not self:
            return  # a refused nested swap: the embedding is the other swap's to restore
        self._remove_surrogate()
        self._install_dense()
        _SWAPPED_OUT.pop(id(self.dense_constr), None)

    def _claim(self) -> None:
        """Record that this swap has the dense embedding out; refuse if another swap has."""
        owner = _SWAPPED_OUT.get(id(self.dense_constr))
        if owner is not None and owner is not self:
            raise NestedSwapError(
                "this embedding is already swapped out by another SurrogateSwap (a nested "
                "block on the same embedding); finish that block first, or give the outer "
                "swap a schedule of surrogates (surrogate=[...]) instead of nesting"
            )
        _SWAPPED_OUT[id(self.dense_constr)] = self

    def _embedding_vars(self) -> list[gp.Var]:
        """Internal variables of the embeddings in the model (not the inputs or outputs)."""
        keep = set(self.outputs.reshape(-1).tolist()) | set(self.inputs.reshape(-1).tolist())
        found = []
        if self._surrogate_constr is not None:
            found += self._surrogate_constr.vars
        if self._dense_installed:
            found += self.dense_constr.vars
        return [v for v in found if v not in keep]

    @property
    def surrogate_constr(self) -> SparseSequentialConstr | None:
        """The surrogate's embedding while it is in the model."""
        return self._surrogate_constr

    def load_solution(self, result: SwapResult) -> None:
        """Put ``result``'s best solution in the model (see :meth:`SwapResult.load`)."""
        if self._surrogate_constr is not None or not self._dense_installed:
            raise RuntimeError(
                "the surrogate is in the model: leave the with block (or call swap.restore()) "
                "before loading the solution into the dense model"
            )
        if result.inputs is None:
            raise LookupError(f"no dense-valid solution to load (status {result.status!r})")
        m = self.model
        m.update()
        variables = m.getVars()
        x_vars = self.inputs.reshape(-1)
        inputs = np.asarray(result.inputs, dtype=np.float64).reshape(-1)
        saved_bounds = (np.asarray(x_vars.LB).copy(), np.asarray(x_vars.UB).copy())
        saved_start = m.getAttr("Start", variables)
        names = ("TimeLimit", "SolutionLimit")
        saved_params = {name: m.getParamInfo(name)[2] for name in names}
        try:
            m.setParam("TimeLimit", GRB.INFINITY)
            x_vars.LB = x_vars.UB = inputs
            m.optimize()
            if m.SolCount == 0:
                raise RuntimeError(
                    "the dense model has no solution with the inputs fixed at the judged "
                    f"answer (Gurobi status {m.Status})"
                )
            values = m.getAttr("X", variables)
            x_vars.LB, x_vars.UB = saved_bounds
            m.setAttr("Start", variables, values)
            if m.IsMIP:
                m.setParam("SolutionLimit", 1)
            m.reset(0)  # no start from the previous solve: the start above is the solution
            m.optimize()
        finally:
            x_vars.LB, x_vars.UB = saved_bounds
            for name, value in saved_params.items():
                m.setParam(name, value)
        # The start values go back without an update(), which would discard the solution.
        m.setAttr("Start", variables, saved_start)
        if m.SolCount == 0 or not np.allclose(
            np.asarray(x_vars.X), inputs, rtol=1e-6, atol=self.tolerance
        ):
            logger.warning("swap: the solution Gurobi kept is not the judged answer")
        logger.info(
            "swap: solution loaded into the dense model (objective %s, judged %s)",
            number(m.ObjVal if m.SolCount else None),
            number(result.objective),
        )

    # -- solving -------------------------------------------------------------------------------

    def optimize(
        self,
        time_limit: float | None = None,
        *,
        fallback: bool = True,
        surrogate_share: float = 0.5,
        stop_at_first_valid: bool = False,
        max_repairs: int = 3,
        params: dict | None = None,
        dense_params: dict | None = None,
        initial_inputs: np.ndarray | None = None,
        restore: bool = True,
    ) -> SwapResult:
        """Solve through the surrogate(s), judge on the dense network, fall back to it.

        Parameters
        ----------
        time_limit : float, optional
            Seconds for the whole solve (surrogate phases, repairs and fallback).
        fallback : bool
            Continue on the dense model after the surrogate phases, with the best dense-valid
            solution as a complete MIP start.
        surrogate_share : float
            Share of ``time_limit`` given to the surrogate phases when ``fallback`` is on (the
            schedule's surrogates split it evenly); a surrogate phase that is solved ends
            early and passes its time on.
        stop_at_first_valid : bool
            Stop as soon as one dense-valid solution is known (the paper's question for
            adversarial search).
        max_repairs : int
            How many dense-infeasible incumbents (best surrogate objective first) are repaired
            after each surrogate phase.
        dense_params : dict, optional
            Gurobi parameters for the dense phase only (for example ``BestBdStop``, whose
            meaning on a surrogate would be wrong).
        initial_inputs : numpy.ndarray, optional
            Input values to start from (for example an attack's best point) while no
            dense-valid solution is known: a partial MIP start on the surrogates and a
            complete one on the dense model.
        params : dict, optional
            Gurobi parameters for the solves (restored afterwards).
        restore : bool
            Put the first surrogate back in place afterwards, and the user's MIP start
            values (the state inside the ``with`` block). ``False`` leaves whichever
            embedding the last phase used, for a one-shot solve of a model that is discarded
            afterwards.

        Returns
        -------
        SwapResult
        """
        if time_limit is not None and not (time_limit > 0):
            raise ValueError(f"time_limit must be positive, got {time_limit}")
        if not 0 < surrogate_share <= 1:
            raise ValueError(f"surrogate_share must be in (0, 1], got {surrogate_share}")
        self.model.update()
        swapped = self._surrogate_constr is not None  # inside the block, or dense in place
        internal = set(self._embedding_vars())
        user_vars = [v for v in self.model.getVars() if v not in internal]
        user_start = self.model.getAttr("Start", user_vars)
        start = time.perf_counter()
        state = _SolveState(self, start, time_limit, stop_at_first_valid)
        if initial_inputs is not None:
            state.hint = np.asarray(initial_inputs, dtype=np.float64).reshape(self.inputs.shape)
        names = ["TimeLimit", *(params or {}), *(dense_params or {})]
        saved = {name: self.model.getParamInfo(name)[2] for name in names}
        try:
            for name, value in (params or {}).items():
                self.model.setParam(name, value)
            surrogate_budget = (
                None if time_limit is None else time_limit * (surrogate_share if fallback else 1.0)
            )
            for i in range(len(self.surrogates)):
                if state.done():
                    break
                deadline = None
                if surrogate_budget is not None:
                    used = time.perf_counter() - start
                    share = max(surrogate_budget - used, 0.0) / (len(self.surrogates) - i)
                    if share <= 0:
                        break
                    deadline = time.perf_counter() + share  # embedding the surrogate counts
                constr = self.install_surrogate(i)
                budget = None if deadline is None else max(deadline - time.perf_counter(), 0.0)
                state.run_phase(f"surrogate {i}", budget, constr)
                self._remove_surrogate()
                state.repair(max_repairs)
            if fallback and not state.done():
                try:
                    self._install_dense()
                except ModelTooLargeError as error:
                    # keep what the surrogates found; say why the dense model was not solved
                    state.phases.append({"name": "dense", "skipped": str(error), "seconds": 0.0})
                    logger.info("swap: dense fallback skipped: %s", error)
                else:
                    logger.info(
                        "swap: falling back to the dense model at %.2f s (best dense objective "
                        "so far %s)",
                        state.elapsed(),
                        None if state.best is None else f"{state.best['objective']:.6g}",
                    )
                    for name, value in (dense_params or {}).items():
                        self.model.setParam(name, value)
                    state.run_dense_phase()
            result = state.result()
        finally:
            for name, value in saved.items():
                self.model.setParam(name, value)
            if restore:
                if swapped:
                    self.install_surrogate(0)
                else:
                    self.restore()
                self.model.setAttr("Start", user_vars, user_start)
            self.model.update()
        return result


def _removing_outputs(constr: Any, outputs: gp.MVar) -> Callable[[], None]:
    """``constr.remove`` that also deletes ``outputs``, which ``constr`` created originally.

    The rebuilt dense embedding receives the original output variables as given ones, which
    its own ``remove()`` would keep; the user's handle keeps removing them as before.
    """
    remove = type(constr).remove

    def remove_with_outputs() -> None:
        model = constr.gp_model
        remove(constr)
        model.remove(outputs.reshape(-1).tolist())
        model.update()

    return remove_with_outputs


class _SolveState:
    """Book-keeping of one :meth:`SurrogateSwap.optimize` call."""

    def __init__(self, swap: SurrogateSwap, start: float, time_limit: float | None, stop: bool):
        self.swap = swap
        self.start = start
        self.time_limit = time_limit
        self.stop = stop
        self.history: list[Incumbent] = []
        self.phases: list[dict] = []
        self.best: dict | None = None  # objective, solution, inputs, dense
        self.first_valid: float | None = None
        self.pending: list[tuple[float, np.ndarray, float]] = []  # repair candidates
        self.final_status: str | None = None
        self.bound: float | None = None
        self.hint: np.ndarray | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float | None:
        return None if self.time_limit is None else max(self.time_limit - self.elapsed(), 0.0)

    def done(self) -> bool:
        if self.stop and self.best is not None:
            return True
        remaining = self.remaining()
        return remaining is not None and remaining <= 0.0

    def _record(
        self,
        judge: _Judge,
        values: np.ndarray,
        phase: str,
        surrogate_obj,
        repaired=False,
        solved=False,
    ):
        """Judge a solution; ``solved``: it solves the dense model itself (the dense phase)."""
        dense, with_dense, objective, feasible, valid = judge.judge(values, repaired or solved)
        now = self.elapsed()
        self.history.append(
            Incumbent(
                now,
                phase,
                surrogate_obj,
                objective if feasible else None,
                feasible,
                valid,
                repaired,
            )
        )
        if valid and (self.best is None or judge.better(objective, self.best["objective"])):
            if self.first_valid is None:
                self.first_valid = now
            x = with_dense[judge.input_idx].reshape(self.swap.inputs.shape)
            user = {
                v: float(value)
                for v, value, keep in zip(judge.vars, with_dense, judge.user, strict=True)
                if keep
            }
            self.best = {"objective": objective, "solution": user, "inputs": x, "dense": dense}
        return feasible, valid

    def run_phase(self, name: str, budget: float | None, embedding: Any) -> None:
        judge = _Judge(self.swap, embedding)
        self.swap.model.setParam("TimeLimit", self._limit(budget))
        self._start_from_best(judge)
        candidates: list[tuple[float, np.ndarray, float]] = []
        self._solve(name, judge, candidates, embedding)
        sign = 1.0 if judge.sense == GRB.MINIMIZE else -1.0
        candidates.sort(key=lambda c: sign * c[0])
        self.pending = candidates
        self._judge_vars = judge

    def _solve(self, name: str, judge: _Judge, candidates: list | None, embedding: Any) -> None:
        """Optimize, judging every solution found: incumbents and the final solution pool."""
        m = self.swap.model
        phase_start = self.elapsed()

        # a solution of the dense model satisfies the user's general and quadratic constraints
        # by construction (with the dense network's outputs): they need no repair
        dense_model = embedding is self.swap.dense_constr

        def offer(values: np.ndarray, objective: float) -> bool:
            feasible, valid = self._record(judge, values, name, objective, solved=dense_model)
            if not feasible and candidates is not None:
                candidates.append((objective, values, self.elapsed()))
            return valid

        optimize_judging(m, judge.vars, offer, self.stop)
        found = [h for h in self.history if h.phase == name]
        self.phases.append(
            {
                "name": name,
                "seconds": self.elapsed() - phase_start,
                "gurobi_status": m.Status,
                "incumbents": len(found),
                "valid": sum(h.valid for h in found),
                "model_stats": getattr(embedding, "stats", None),
            }
        )
        self._log_phase(self.phases[-1])

    def _log_phase(self, phase: dict) -> None:
        best = None if self.best is None else f"{self.best['objective']:.6g}"
        logger.info(
            "swap: %s phase: %d incumbents, %d valid on the dense network, best dense "
            "objective %s, %.2f s%s",
            phase["name"],
            phase["incumbents"],
            phase["valid"],
            best,
            phase["seconds"],
            f", Gurobi status {phase['gurobi_status']}" if "gurobi_status" in phase else "",
        )

    def repair(self, max_repairs: int) -> None:
        """Fix inputs and dense outputs of infeasible incumbents; re-solve the rest (no network)."""
        if not self.pending or max_repairs <= 0:
            return
        swap, m = self.swap, self.swap.model
        judge = _Judge(swap)
        x_vars, y_vars = swap.inputs.reshape(-1), swap.outputs.reshape(-1)
        saved = [np.asarray(v.LB).copy() for v in (x_vars, y_vars)] + [
            np.asarray(v.UB).copy() for v in (x_vars, y_vars)
        ]
        seen: set[bytes] = set()
        started = self.elapsed()
        try:
            for objective, values, _ in self.pending:
                if len(seen) >= max_repairs or self.done():
                    break
                old = self._judge_vars
                x = values[old.input_idx]
                key = np.round(x, 9).tobytes()
                if key in seen:
                    continue
                seen.add(key)
                dense = swap.dense_forward(x.reshape(swap.inputs.shape)).reshape(-1)
                x_vars.LB = x_vars.UB = x
                y_vars.LB = y_vars.UB = dense
                m.setParam("TimeLimit", self._limit(None))
                m.optimize()
                if m.SolCount > 0:
                    self._record(
                        judge, np.array(m.getAttr("X", judge.vars)), "repair", objective, True
                    )
        finally:
            x_vars.LB, y_vars.LB, x_vars.UB, y_vars.UB = saved
            m.update()
        self.pending = []
        repaired = [h for h in self.history if h.repaired and h.time >= started]
        self.phases.append(
            {
                "name": "repair",
                "seconds": self.elapsed() - started,
                "incumbents": len(seen),
                "valid": sum(h.valid for h in repaired),
            }
        )
        self._log_phase(self.phases[-1])

    def run_dense_phase(self) -> None:
        m = self.swap.model
        judge = _Judge(self.swap, self.swap.dense_constr)
        self._start_from_best(judge, complete=True)
        m.setParam("TimeLimit", self._limit(None))
        self._solve("dense", judge, None, self.swap.dense_constr)
        if m.Status == GRB.OPTIMAL and self.swap.valid is None and self.best is not None:
            # with a validity predicate (not part of the model) the optimum proves nothing
            self.final_status = STATUS_OPTIMAL
        elif m.Status in (GRB.INFEASIBLE, GRB.INF_OR_UNBD) and self.best is None:
            self.final_status = STATUS_INFEASIBLE
        self.bound = proven_bound(m)

    def _limit(self, budget: float | None) -> float:
        remaining = self.remaining()
        limits = [v for v in (budget, remaining) if v is not None]
        return max(min(limits), 0.0) if limits else GRB.INFINITY

    def _start_from_best(self, judge: _Judge, complete: bool = False) -> None:
        """MIP start: the best dense-valid solution (completed on the dense model if asked)."""
        m = self.swap.model
        m.update()
        m.setAttr("Start", judge.vars, [GRB.UNDEFINED] * len(judge.vars))
        inputs = self.hint if self.best is None else self.best["inputs"]
        if inputs is None:
            return
        inputs = inputs.reshape(-1)
        x_vars = self.swap.inputs.reshape(-1)
        if not complete:
            m.setAttr("Start", x_vars.tolist(), inputs.tolist())
            return
        # Complete start: fix the inputs, solve (the network is determined), use every value.
        saved = (np.asarray(x_vars.LB).copy(), np.asarray(x_vars.UB).copy())
        x_vars.LB = x_vars.UB = inputs
        m.setParam("TimeLimit", self._limit(None))
        m.optimize()
        values = m.getAttr("X", judge.vars) if m.SolCount > 0 else None
        x_vars.LB, x_vars.UB = saved
        m.update()
        if values is not None:
            m.setAttr("Start", judge.vars, values)
        else:
            m.setAttr("Start", x_vars.tolist(), inputs.tolist())

    def result(self) -> SwapResult:
        best = self.best
        if self.final_status is not None:
            status = self.final_status
        else:
            status = STATUS_FEASIBLE if best is not None else STATUS_NO_SOLUTION
        # pruning happened once, before the first optimize(): only that call counts it
        pruning = 0.0 if self.swap._pruning_counted else self.swap.pruning_seconds
        self.swap._pruning_counted = True
        ttf = None if self.first_valid is None else self.first_valid + pruning
        return SwapResult(
            status=status,
            objective=None if best is None else best["objective"],
            bound=self.bound,
            time_to_first_valid=ttf,
            runtime=self.elapsed(),
            pruning_seconds=pruning,
            started_at=self.start,
            phases=self.phases,
            history=self.history,
            inputs=None if best is None else best["inputs"],
            dense_outputs=None if best is None else best["dense"],
            _solution={} if best is None else best["solution"],
            _swap=self.swap,
        )


__all__ = ["Incumbent", "SurrogateSwap", "SwapResult"]
