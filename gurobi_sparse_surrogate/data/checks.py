"""Argument checks shared by the loaders, the models and the training code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..exceptions import ShapeMismatchError


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_hidden(hidden: Sequence[int], name: str = "hidden") -> tuple[int, ...]:
    if isinstance(hidden, int | np.integer) or not isinstance(hidden, Sequence):
        raise TypeError(
            f"{name} must be a sequence of layer widths such as (64, 64), got {hidden!r}"
        )
    return tuple(_check_int(h, f"{name}[{i}]", 1) for i, h in enumerate(hidden))


def _check_data(
    X: Any, y: Any, name_X: str = "X", name_y: str = "y"
) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ShapeMismatchError(
            f"{name_X} must be 2-D (n_samples, n_features), got shape {X.shape}"
        )
    if y.ndim != 1:
        raise ShapeMismatchError(f"{name_y} must be 1-D (n_samples,), got shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise ShapeMismatchError(
            f"{name_X} has {X.shape[0]} samples but {name_y} has {y.shape[0]} labels"
        )
    if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
        raise ValueError(f"{name_X} must contain finite numbers")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.number) or not np.all(np.mod(y, 1) == 0):
            raise TypeError(f"{name_y} must contain integer class labels, got dtype {y.dtype}")
    if y.size and y.min() < 0:
        raise ValueError(f"{name_y} must contain non-negative class labels, got {y.min()}")
    return X, y.astype(np.int64)
