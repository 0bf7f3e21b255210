"""Keeping the embedding exact under Gurobi's tolerances.

A solution Gurobi accepts may have a binary at ``IntFeasTol`` (default 1e-5) instead of 0 and
constraints violated by ``FeasibilityTol`` (default 1e-6). In a big-M ReLU row
``h <= u * delta`` that lets ``h`` be ``u * IntFeasTol`` away from the ReLU's value, and a max
constraint's arguments are only as exact as ``FeasibilityTol`` times their magnitude: with
pre-activation bounds of 1e5-1e6 the outputs can be off from torch's by whole units.

:func:`keep_exact` tightens both tolerances on the model so that the largest big-M constant
(the largest finite pre-activation bound of an unstable neuron) times each tolerance stays
below :data:`ABSOLUTE_ERROR_TARGET`, never loosening what the model already has, down to
Gurobi's smallest values (1e-9). What it changed is returned (and recorded in the
embedding's ``stats["tolerances"]``) and logged; when even 1e-9 is not enough it warns with
:class:`ToleranceWarning`, naming the constant and the error to expect.
"""

from __future__ import annotations

import logging
import warnings

import gurobipy as gp

logger = logging.getLogger(__name__)

#: The largest ``big-M * tolerance`` accepted: how far a neuron may be from its ReLU value.
ABSOLUTE_ERROR_TARGET = 1e-3
#: Gurobi's smallest IntFeasTol and FeasibilityTol.
SMALLEST_TOLERANCE = 1e-9
TOLERANCES = ("IntFeasTol", "FeasibilityTol")


class ToleranceWarning(UserWarning):
    """The embedding cannot be kept exact by Gurobi's tolerances (constants too large)."""


def keep_exact(model: gp.Model, big_m: float, label: str = "the embedding") -> dict:
    """Tighten ``IntFeasTol`` and ``FeasibilityTol`` on ``model`` for constants up to ``big_m``.

    Parameters
    ----------
    model : gurobipy.Model
    big_m : float
        The largest finite pre-activation bound (absolute value) of an unstable neuron.
    label : str
        How log and warning messages name the embedding.

    Returns
    -------
    dict
        ``{parameter: (old, new)}`` for each parameter changed (empty when none was).

    Examples
    --------
    >>> m = gp.Model(env=gp.Env(params={"OutputFlag": 0}))
    >>> keep_exact(m, 10.0)
    {}
    >>> keep_exact(m, 1e5)
    {'IntFeasTol': (1e-05, 1e-08), 'FeasibilityTol': (1e-06, 1e-08)}
    """
    if not big_m > 0 or big_m == float("inf"):
        return {}
    wanted = max(ABSOLUTE_ERROR_TARGET / big_m, SMALLEST_TOLERANCE)
    changed = {}
    for name in TOLERANCES:
        current = float(model.getParamInfo(name)[2])
        if current > wanted:
            model.setParam(name, wanted)
            changed[name] = (current, wanted)
    if changed:
        logger.info(
            "%s: big-M constants up to %.3g; %s tightened so that they stay exact within %.3g",
            label,
            big_m,
            ", ".join(f"{k} {old:.3g} -> {new:.3g}" for k, (old, new) in changed.items()),
            big_m * wanted,
        )
    if big_m * SMALLEST_TOLERANCE > ABSOLUTE_ERROR_TARGET:
        warnings.warn(
            f"{label}: big-M constants up to {big_m:.3g} are too large for Gurobi's tolerances "
            f"(at the smallest, {SMALLEST_TOLERANCE:g}, a neuron may be off by "
            f"{big_m * SMALLEST_TOLERANCE:.3g}); check get_error() or tighten the bounds "
            "(bounds='auto' or 'lp', a smaller domain) or rescale the inputs",
            ToleranceWarning,
            stacklevel=3,
        )
    return changed
