"""What a swap reports: one :class:`Incumbent` per solution judged, and the :class:`SwapResult`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gurobipy as gp
import numpy as np

from ..solving import Incumbent
from ..summaries import compact_repr, number, phase_table, seconds

STATUS_OPTIMAL = "optimal"
STATUS_FEASIBLE = "feasible"
STATUS_INFEASIBLE = "infeasible"
STATUS_NO_SOLUTION = "no_solution"


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
    interrupted : bool
        The solve was interrupted (Ctrl-C, SIGINT): the result holds what was found until
        then, and no later phase ran.

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
    interrupted: bool = False
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
          first valid after  0.25 s (pruning included)
          optimize()         2.00 s, after 0.10 s of pruning
          phase         seconds incumbents  valid  status
          surrogate 0      1.90          3      2  TIME_LIMIT
        """
        lines = [
            f"SurrogateSwap result: {self.status}",
            f"  objective (dense)  {number(self.objective)}",
            f"  bound              {number(self.bound)}",
            f"  first valid after  {seconds(self.time_to_first_valid)} (pruning included)",
            f"  optimize()         {seconds(self.runtime)}, after "
            f"{seconds(self.pruning_seconds)} of pruning",
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


__all__ = [
    "STATUS_FEASIBLE",
    "STATUS_INFEASIBLE",
    "STATUS_NO_SOLUTION",
    "STATUS_OPTIMAL",
    "Incumbent",
    "SwapResult",
]
