"""The size limits of Gurobi's size-limited licence, and checks of a model against them.

``pip install gurobipy`` brings a licence that refuses to solve a model with more than 2000
variables or 2000 linear constraints (general constraints such as max are not counted).
Catching Gurobi's error at optimize time tells a user too late and too little;
:func:`check_model_size` says which sizes are over and what would shrink them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gurobipy as gp

from .exceptions import ModelTooLargeError

#: Limits of the size-limited licence.
SIZE_LIMITED_MAX_VARIABLES = 2000
SIZE_LIMITED_MAX_CONSTRAINTS = 2000
_TOO_LARGE = 10010  # GRB_ERROR_SIZE_LIMIT_EXCEEDED


@functools.cache
def license_is_size_limited() -> bool:
    """Whether the Gurobi licence in use is the size-limited one.

    Solves an empty model with one variable more than the limit (a few milliseconds, once).
    """
    with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as model:
        model.addVars(SIZE_LIMITED_MAX_VARIABLES + 1)
        try:
            model.optimize()
        except gp.GurobiError as error:
            if error.errno == _TOO_LARGE:
                return True
            raise
    return False


@dataclass(frozen=True)
class SizeReport:
    """Sizes of a model (with planned additions) against the licence's limits.

    Attributes
    ----------
    variables, constraints : int
        Totals, including the planned additions.
    added_variables, added_constraints, added_binaries : int
        The planned additions.
    size_limited : bool
        Whether the licence in use is size-limited.
    """

    variables: int
    constraints: int
    added_variables: int = 0
    added_constraints: int = 0
    added_binaries: int = 0
    size_limited: bool = True

    @property
    def fits(self) -> bool:
        """True unless the licence is size-limited and a limit is exceeded."""
        return not self.size_limited or (
            self.variables <= SIZE_LIMITED_MAX_VARIABLES
            and self.constraints <= SIZE_LIMITED_MAX_CONSTRAINTS
        )

    def message(self, advice: str = "") -> str:
        """A description of the sizes, what is over, and ``advice`` on how to shrink it."""
        over = []
        if self.variables > SIZE_LIMITED_MAX_VARIABLES:
            over.append(f"{self.variables} variables (limit {SIZE_LIMITED_MAX_VARIABLES})")
        if self.constraints > SIZE_LIMITED_MAX_CONSTRAINTS:
            over.append(
                f"{self.constraints} linear constraints (limit {SIZE_LIMITED_MAX_CONSTRAINTS})"
            )
        text = (
            "the model would have "
            + " and ".join(over or [f"{self.variables} variables, {self.constraints} constraints"])
            + f", of which this addition brings {self.added_variables} variables "
            f"({self.added_binaries} binary) and {self.added_constraints} linear constraints; "
            "the size-limited Gurobi licence (pip install gurobipy) cannot solve it"
        )
        return f"{text}. {advice}".strip() if advice else text + "."


def check_model_size(
    model: gp.Model,
    added_variables: int = 0,
    added_constraints: int = 0,
    added_binaries: int = 0,
    *,
    raise_error: bool = False,
    advice: str = "",
) -> SizeReport:
    """Report a model's size, plus planned additions, against the size-limited licence.

    Parameters
    ----------
    model : gurobipy.Model
        The model (pending changes are flushed with ``model.update()``).
    added_variables, added_constraints, added_binaries : int
        What is about to be added.
    raise_error : bool
        Raise :class:`ModelTooLargeError` when the result would not fit.
    advice : str
        What would shrink the model, appended to the error message.

    Returns
    -------
    SizeReport

    Examples
    --------
    >>> import gurobipy as gp
    >>> m = gp.Model(env=gp.Env(params={"OutputFlag": 0}))
    >>> x = m.addVars(10)
    >>> check_model_size(m, added_variables=5).variables
    15
    """
    model.update()
    report = SizeReport(
        variables=model.NumVars + added_variables,
        constraints=model.NumConstrs + added_constraints,
        added_variables=added_variables,
        added_constraints=added_constraints,
        added_binaries=added_binaries,
        size_limited=license_is_size_limited(),
    )
    if raise_error and not report.fits:
        raise ModelTooLargeError(report.message(advice))
    return report
