"""Input and output variables of an embedding, in the ``(samples, features)`` shape it uses.

The package's own reading of what a user may pass (an ``MVar`` of one or two dimensions, a
``Var``, a list or dict of ``Var``, an object array of ``Var``, a pandas ``DataFrame`` or
``Series``), with errors that name the shape expected.
"""

from __future__ import annotations

from typing import Any

import gurobipy as gp
import numpy as np

from ..exceptions import ShapeMismatchError


def _pandas():
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        return None
    return pd


def _as_mvar(variables: Any, what: str) -> gp.MVar:
    """``variables`` as an MVar (1-D or 2-D), or a TypeError/ShapeMismatchError naming ``what``."""
    if isinstance(variables, gp.MVar):
        mvar = variables
    elif isinstance(variables, gp.Var):
        mvar = gp.MVar.fromlist([variables])
    else:
        if isinstance(variables, dict):
            variables = list(variables.values())
        array = np.asarray(variables, dtype=object)
        if array.size == 0 or not all(isinstance(v, gp.Var) for v in array.ravel()):
            raise TypeError(
                f"{what} must be a gurobipy MVar, Var, or a list/array of Var; got "
                f"{type(variables).__name__}"
            )
        mvar = gp.MVar.fromlist(array.tolist())
    if mvar.ndim not in (1, 2):
        raise ShapeMismatchError(
            f"{what} must have one dimension (one sample) or two (samples, features); got "
            f"shape {tuple(mvar.shape)}"
        )
    return mvar


def input_matrix(
    model: gp.Model, input_vars: Any, n_in: int, note: str = ""
) -> tuple[gp.MVar, Any, Any, list[gp.Var]]:
    """The input variables as a ``(k, n_in)`` MVar, with pandas columns and index if any.

    Constant entries of a pandas object become variables fixed at their value (added to
    ``model``, as in gurobi-ml); they are returned last, for the caller to own. ``note`` is
    added to the shape error after the count of inputs expected.

    Raises
    ------
    ShapeMismatchError
        When the variables do not have ``n_in`` features.
    TypeError
        When they are not variables.
    """
    columns = index = None
    fixed: list[gp.Var] = []
    pd = _pandas()
    if pd is not None and isinstance(input_vars, (pd.DataFrame, pd.Series)):
        if isinstance(input_vars, pd.Series):
            columns = input_vars.index
            index = pd.Index([0 if input_vars.name is None else input_vars.name])
            data = input_vars.to_numpy().reshape(1, -1)
        else:
            columns, index, data = input_vars.columns, input_vars.index, input_vars.to_numpy()
        input_vars, fixed = _fix_constants(model, data)
    mvar = _as_mvar(input_vars, "input_vars")
    if mvar.ndim == 1:
        mvar = mvar.reshape(1, -1)
    if mvar.shape[1] != n_in:
        raise ShapeMismatchError(
            f"the network expects {n_in} inputs per sample{note} but the input variables have "
            f"shape {tuple(mvar.shape)}"
        )
    return mvar, columns, index, fixed


def _fix_constants(model: gp.Model, data: np.ndarray) -> tuple[np.ndarray, list[gp.Var]]:
    """An object array of Var where each constant entry is replaced by a fixed variable."""
    data = np.array(data, dtype=object)
    constant = np.array([not isinstance(v, gp.Var) for v in data.ravel()]).reshape(data.shape)
    fixed: list[gp.Var] = []
    if constant.any():
        try:
            values = data[constant].astype(np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(
                "input_vars holds entries that are neither gurobipy variables nor numbers"
            ) from error
        fixed = model.addMVar(values.shape, lb=values, ub=values, name="fixed_input")
        model.update()
        fixed = fixed.tolist()
        for i, var in zip(np.flatnonzero(constant), fixed, strict=True):
            data.flat[i] = var
    return data, fixed


def output_matrix(output_vars: Any, k: int, n_out: int) -> gp.MVar:
    """The output variables as a ``(k, n_out)`` MVar.

    Raises
    ------
    ShapeMismatchError
        When they are not ``k * n_out`` variables.
    """
    pd = _pandas()
    if pd is not None and isinstance(output_vars, (pd.DataFrame, pd.Series)):
        output_vars = output_vars.to_numpy()
    mvar = _as_mvar(output_vars, "output_vars")
    expected = (k, n_out)
    if mvar.size != k * n_out:
        raise ShapeMismatchError(
            f"the network has {n_out} outputs per sample and there are {k} samples, so the "
            f"output variables should have shape {expected}; got {tuple(mvar.shape)}"
        )
    return mvar.reshape(expected)


__all__ = ["input_matrix", "output_matrix"]
