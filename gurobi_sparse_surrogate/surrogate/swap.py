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
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import gurobipy as gp
import numpy as np
from gurobipy import GRB
from torch import nn

from ..domains import Box, Domain
from ..exceptions import (
    ModelTooLargeError,
    NestedSwapError,
    UnboundedInputError,
)
from ..formulation.options import EmbeddingOptions
from ..formulation.predictor import SparseSequentialConstr, add_sparse_predictor_constr
from ..network.extraction import Float64Network, extract_layers
from ..network.pruning import check_prune_options
from ..solving import (  # noqa: F401  (re-exported: their home was this module)
    DUPLICATE_TOLERANCE,
    check_gurobi_params,
    check_time_limit,
    final_solutions,
    is_duplicate,
    optimize_judging,
    proven_bound,
)
from ..summaries import number
from .judging import DenseJudge
from .results import (
    STATUS_FEASIBLE,
    STATUS_INFEASIBLE,
    STATUS_NO_SOLUTION,
    STATUS_OPTIMAL,
    Incumbent,
    SwapResult,
)

logger = logging.getLogger(__name__)

Validity = Callable[[np.ndarray, np.ndarray], bool]


#: The swap that has each embedding swapped out, keyed by the embedding object itself (an
#: ``id`` could be reused by a new embedding once the swap replaced its reference to the old one).
_SWAPPED_OUT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: gurobi-ml embeddings a swap took out of their model, with what replaced them (this
#: package's own embeddings say it themselves, in ``replaced_by``).
_RETIRED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _replacement_of(constr: Any) -> Any:
    """The embedding that replaced ``constr`` after a swap, or None."""
    if isinstance(constr, SparseSequentialConstr):
        return constr.replaced_by
    try:
        return _RETIRED.get(constr)
    except TypeError:  # not weak-referenceable: never recorded
        return None


class RebuiltPredictorConstr:
    """A gurobi-ml embedding rebuilt by a swap over output variables the original created.

    The rebuilt embedding receives the original's output variables as given ones, which its
    own ``remove()`` would keep; this wrapper's :meth:`remove` deletes them too, as the
    original's would have. Everything else is the wrapped embedding's (:attr:`constr`).
    """

    def __init__(self, constr: Any, outputs: gp.MVar) -> None:
        self.constr = constr
        self._owned_outputs = outputs.reshape(-1).tolist()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.constr, name)

    @property
    def vars(self) -> list[gp.Var]:
        """The variables of the embedding, the output variables it owns included."""
        return [*self._owned_outputs, *self.constr.vars]

    def remove(self) -> None:
        """Remove the embedding and the output variables it owns."""
        model = self.constr.gp_model
        if model is None:
            return
        self.constr.remove()
        model.remove(self._owned_outputs)
        model.update()
        self._owned_outputs = []


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
    embed_options : EmbeddingOptions or dict, optional
        How the surrogates are embedded: the options of ``add_sparse_predictor_constr``
        (such as ``relu_formulation``, ``bounds`` or ``domain``); a misspelled key raises
        :class:`~gurobi_sparse_surrogate.InvalidOptionError` at once.
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
        embed_options: EmbeddingOptions | dict | None = None,
        valid: Validity | None = None,
        tolerance: float = 1e-5,
        dense_options: dict | None = None,
    ) -> None:
        # an embedding an earlier swap took out and rebuilt: swap its replacement instead
        while (replacement := _replacement_of(predictor_constr)) is not None:
            predictor_constr = replacement
        dense = getattr(predictor_constr, "predictor", None)
        if not isinstance(dense, nn.Sequential):
            raise TypeError(
                "predictor_constr must be the embedding of a torch nn.Sequential (from "
                "gurobi_ml.add_predictor_constr or add_sparse_predictor_constr), got "
                f"{type(predictor_constr).__name__}"
            )
        self.model = gp_model
        #: The dense network's embedding: the one given, until the swap takes it out; after a
        #: restore or a dense fallback, the rebuilt one (see :attr:`restored`).
        self.dense_constr = predictor_constr
        self._key = predictor_constr  # what the nested-swap registry knows it by
        self._restored: Any = None
        self.dense_network = dense
        self.inputs: gp.MVar = predictor_constr.input
        self.outputs: gp.MVar = predictor_constr.output
        self.valid = valid
        self.tolerance = tolerance
        #: how the surrogates are embedded (validated: a misspelled key fails here)
        self.embed_options = (
            embed_options
            if isinstance(embed_options, EmbeddingOptions)
            else EmbeddingOptions.from_mapping(embed_options or {})
        )
        self.dense_forward = Float64Network(dense)
        n_in, n_out = self.inputs.shape[-1], self.outputs.shape[-1]
        prune_options = check_prune_options(prune_options)
        schedule = list(surrogate) if isinstance(surrogate, (list, tuple)) else [surrogate]
        if not schedule:
            raise ValueError("surrogate schedule is empty")
        self.pruning_seconds = 0.0
        self.surrogates: list[nn.Module] = []
        for item in schedule:
            start = time.perf_counter()
            net = self._make_surrogate(item, dict(prune_options))
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
        own = isinstance(predictor_constr, SparseSequentialConstr)
        if dense_options is None:
            self._dense_options = predictor_constr.options if own else {}
        elif own:  # validated now: a misspelled key fails before anything is swapped
            self._dense_options = EmbeddingOptions.from_mapping(dense_options)
        else:
            self._dense_options = dict(dense_options)
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
        domain = self.embed_options.domain
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
        if isinstance(pc, SparseSequentialConstr):
            pc.remove(keep_outputs=True)
        elif isinstance(pc, RebuiltPredictorConstr) or not any(v in outputs for v in added):
            # gurobi-ml's remove() deletes what the embedding recorded; the outputs were given
            pc.constr.remove() if isinstance(pc, RebuiltPredictorConstr) else pc.remove()
        else:
            # gurobi-ml's embedding created the outputs inside the range it records: take out
            # everything else by hand (the user's object then describes nothing in the model;
            # the swap's dense_constr is the rebuilt embedding)
            m.remove(list(pc.constrs))
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
        if isinstance(pc, SparseSequentialConstr):
            # the public rebuild contract: same network and variables, the dense options; the
            # rebuilt embedding takes over the output variables pc created
            rebuilt = pc.rebuild(options=self._dense_options)
        else:
            from gurobi_ml import add_predictor_constr

            constr = add_predictor_constr(
                m, self.dense_network, self.inputs, self.outputs, **self._dense_options
            )
            created = self._outputs_created
            rebuilt = RebuiltPredictorConstr(constr, self.outputs) if created else constr
            _RETIRED[pc] = rebuilt
        # only once rebuilt: a failed rebuild changes nothing (the bounds were saved when the
        # dense embedding was taken out, which is the only way it is not installed)
        self.outputs.LB, self.outputs.UB = self._output_bounds
        m.update()
        self.dense_constr = self._restored = rebuilt
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
            self.model,
            self.surrogates[index],
            self.inputs,
            self.outputs,
            options=self.embed_options,
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
        if _SWAPPED_OUT.get(self._key, self) is not self:
            return  # a refused nested swap: the embedding is the other swap's to restore
        self._remove_surrogate()
        self._install_dense()
        _SWAPPED_OUT.pop(self._key, None)

    def _claim(self) -> None:
        """Record that this swap has the dense embedding out; refuse if another swap has."""
        owner = _SWAPPED_OUT.get(self._key)
        if owner is not None and owner is not self:
            raise NestedSwapError(
                "this embedding is already swapped out by another SurrogateSwap (a nested "
                "block on the same embedding); finish that block first, or give the outer "
                "swap a schedule of surrogates (surrogate=[...]) instead of nesting"
            )
        _SWAPPED_OUT[self._key] = self

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
    def restored(self) -> Any:
        """The dense embedding the swap rebuilt and put back, or None before it did.

        The swap takes the embedding it was given out of the model and, on leaving the
        ``with`` block (or in a dense fallback), builds it again over the same input and
        output variables: this package's embeddings with
        :meth:`~gurobi_sparse_surrogate.SparseSequentialConstr.rebuild`, gurobi-ml's with
        ``gurobi_ml.add_predictor_constr``. This is that new embedding (also
        :attr:`dense_constr`): call its ``remove()``, ``get_error()`` or ``print_stats()``.
        Its ``remove()`` deletes the output variables too when the original had created them.

        The object given to the swap keeps reading the same input and output variables
        (``input_values``, ``output_values``, ``get_error()`` still work), but it no longer
        describes what is in the model: this package's embedding raises
        :class:`~gurobi_sparse_surrogate.StaleEmbeddingError` on ``remove()`` and names its
        replacement in ``replaced_by``; a new swap given it swaps its replacement. gurobi-ml's
        own object cannot say so: do not call its ``remove()`` after a swap.
        """
        return self._restored

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
        time_limit = check_time_limit(time_limit, allow_none=True)
        check_gurobi_params(self.model, params, "params")
        check_gurobi_params(self.model, dense_params, "dense_params")
        if not 0 < surrogate_share <= 1:
            raise ValueError(f"surrogate_share must be in (0, 1], got {surrogate_share}")
        self.model.update()
        swapped = self._surrogate_constr is not None  # inside the block, or dense in place
        internal = set(self._embedding_vars())
        user_vars = [v for v in self.model.getVars() if v not in internal]
        user_start = self.model.getAttr("Start", user_vars)
        start = time.perf_counter()
        hint = None
        if initial_inputs is not None:
            hint = np.asarray(initial_inputs, dtype=np.float64).reshape(self.inputs.shape)
        state = _SolveState(self, start, time_limit, stop_at_first_valid, hint)
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
                    state.skip_dense_phase(str(error))
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
            # pruning happened once, before the first optimize(): only that call counts it
            pruning = 0.0 if self._pruning_counted else self.pruning_seconds
            self._pruning_counted = True
            result = state.result(pruning)
        except KeyboardInterrupt:
            # Ctrl-C outside a Gurobi solve (bounding, pruning, judging): stop as inside one
            state.interrupted = True
            pruning = 0.0 if self._pruning_counted else self.pruning_seconds
            self._pruning_counted = True
            result = state.result(pruning)
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


class _SolveState:
    """Book-keeping of one :meth:`SurrogateSwap.optimize` call."""

    def __init__(
        self,
        swap: SurrogateSwap,
        start: float,
        time_limit: float | None,
        stop: bool,
        hint: np.ndarray | None = None,
    ):
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
        self.hint = hint
        #: the judge of the phase whose incumbents are in ``pending``
        self.pending_judge: DenseJudge | None = None
        #: a solve ended on Ctrl-C: no later phase runs
        self.interrupted = False

    def check_interrupt(self) -> None:
        """Note a Gurobi solve that ended on Ctrl-C (Gurobi takes SIGINT, Python never sees it)."""
        if self.swap.model.Status == GRB.INTERRUPTED:
            self.interrupted = True

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float | None:
        return None if self.time_limit is None else max(self.time_limit - self.elapsed(), 0.0)

    def done(self) -> bool:
        if self.interrupted:
            return True
        if self.stop and self.best is not None:
            return True
        remaining = self.remaining()
        return remaining is not None and remaining <= 0.0

    def _record(
        self,
        judge: DenseJudge,
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
        judge = DenseJudge(self.swap, embedding)
        self.swap.model.setParam("TimeLimit", self._limit(budget))
        self._start_from_best(judge)
        candidates: list[tuple[float, np.ndarray, float]] = []
        self._solve(name, judge, candidates, embedding)
        sign = 1.0 if judge.sense == GRB.MINIMIZE else -1.0
        candidates.sort(key=lambda c: sign * c[0])
        self.pending = candidates
        self.pending_judge = judge

    def _solve(self, name: str, judge: DenseJudge, candidates: list | None, embedding: Any) -> None:
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

        if optimize_judging(m, judge.vars, offer, self.stop):
            self.interrupted = True
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
        judge = DenseJudge(swap)
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
                old = self.pending_judge
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
                self.check_interrupt()
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
        judge = DenseJudge(self.swap, self.swap.dense_constr)
        self._start_from_best(judge, complete=True)
        if self.interrupted:
            return
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

    def _start_from_best(self, judge: DenseJudge, complete: bool = False) -> None:
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
        self.check_interrupt()
        values = m.getAttr("X", judge.vars) if m.SolCount > 0 else None
        x_vars.LB, x_vars.UB = saved
        m.update()
        if values is not None:
            m.setAttr("Start", judge.vars, values)
        else:
            m.setAttr("Start", x_vars.tolist(), inputs.tolist())

    def skip_dense_phase(self, reason: str) -> None:
        """Record that the dense fallback did not run, and why (it stays the surrogate's answer)."""
        self.phases.append({"name": "dense", "skipped": reason, "seconds": 0.0})
        logger.info("swap: dense fallback skipped: %s", reason)

    def result(self, pruning: float) -> SwapResult:
        """The result; ``pruning`` seconds are added to the time to the first valid solution."""
        best = self.best
        if self.final_status is not None:
            status = self.final_status
        else:
            status = STATUS_FEASIBLE if best is not None else STATUS_NO_SOLUTION
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
            interrupted=self.interrupted,
            _solution={} if best is None else best["solution"],
            _swap=self.swap,
        )


__all__ = ["Incumbent", "SurrogateSwap", "SwapResult"]
