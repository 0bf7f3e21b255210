"""Validation of options at the public boundary, in scikit-learn's manner.

An unknown key names itself, lists the valid keys and suggests the closest ones; a bad value
names the option, what was expected and what was given. Every options dataclass of the
package validates through these helpers, so all its messages read alike.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from .exceptions import InvalidOptionError

__all__ = ["check_keys", "check_bool", "check_number"]


def check_keys(
    given: Iterable[str],
    valid: Iterable[str],
    what: str,
    hints: Mapping[str, str] | None = None,
) -> None:
    """Raise :class:`InvalidOptionError` for the first key of ``given`` not in ``valid``.

    Parameters
    ----------
    given, valid : iterable of str
    what : str
        What the keys are, for the message (``"bounding option"``).
    hints : mapping, optional
        Known mistakes: a key mapped to the valid key meant, or to a sentence that explains.

    Examples
    --------
    >>> check_keys(["time_limit"], ["time_budget", "skip_decided"], "bounding option",
    ...            {"time_limit": "time_budget"})
    Traceback (most recent call last):
    ...
    gurobi_sparse_surrogate.exceptions.InvalidOptionError: unknown bounding option 'time_limit'; did you mean 'time_budget'? Valid bounding options: skip_decided, time_budget.
    """
    valid = sorted(valid)
    hints = hints or {}
    for key in given:
        if key in valid:
            continue
        message = f"unknown {what} {key!r}"
        suggestions: list[str] = []
        hint = hints.get(key) if isinstance(key, str) else None
        if hint in valid:
            suggestions.append(hint)
        elif hint:
            message += f" ({hint})"
        if isinstance(key, str):
            suggestions += [
                close
                for close in difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
                if close not in suggestions
            ]
        if suggestions:
            message += "; did you mean " + " or ".join(repr(s) for s in suggestions[:3]) + "?"
        else:
            message += "."
        raise InvalidOptionError(f"{message} Valid {what}s: {', '.join(valid)}.")


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool; only ``True``/``False`` (and numpy booleans) are accepted."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise InvalidOptionError(f"{name} must be True or False, got {value!r}")


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    strict: bool = False,
    integer: bool = False,
    allow_none: bool = False,
    allow_inf: bool = False,
) -> Any:
    """``value`` as a float (or int), checked against its range.

    Parameters
    ----------
    name : str
        The option's name, for the message.
    value : object
    minimum : float, optional
        Smallest value allowed (excluded when ``strict``).
    integer : bool
        Require a whole number (returned as ``int``).
    allow_none, allow_inf : bool
        Accept ``None`` (returned as is) or ``math.inf``.

    Examples
    --------
    >>> check_number("time_budget", 2, minimum=0.0)
    2.0
    >>> check_number("milp_max_binaries", -1, minimum=0, integer=True)
    Traceback (most recent call last):
    ...
    gurobi_sparse_surrogate.exceptions.InvalidOptionError: milp_max_binaries must be an integer >= 0, got -1
    """
    if value is None and allow_none:
        return None
    kind = "an integer" if integer else "a number"
    expected = kind
    if minimum is not None:
        expected += f" {'>' if strict else '>='} {minimum:g}"
    if allow_none:
        expected += " or None"
    bad = isinstance(value, bool) or not isinstance(value, numbers.Real)
    if not bad:
        number = float(value)
        bad = math.isnan(number) or (math.isinf(number) and not allow_inf)
        if integer and not bad and not math.isinf(number):
            bad = number != int(number)
        if minimum is not None and not bad:
            bad = number <= minimum if strict else number < minimum
    if bad:
        raise InvalidOptionError(f"{name} must be {expected}, got {value!r}")
    if integer and not math.isinf(number):
        return int(number)
    return number
