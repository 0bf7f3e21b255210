"""Input domains: a box, an L-infinity ball and an L1 ball (each intersected with a box).

A domain describes the set of admissible values of one input vector of dimension ``n``. It
knows how to

- add itself to a Gurobi model compactly (:meth:`Domain.add_to_model`): the box part only
  tightens the variables' bounds, and an L1 ball needs an absolute-value variable only for the
  coordinates whose centre lies strictly inside the box;
- give the exact range of each row of ``W x + b`` over the domain
  (:meth:`Domain.first_layer_bounds`), which is the first layer's pre-activation bound and the
  domain's support function used by linear bounding methods;
- describe its linear rows for the LP and MILP bounding stages (:meth:`Domain.lp_rows` and
  their size, :meth:`Domain.lp_size`), so the bounding code needs no knowledge of any domain;
- test membership, sample points (random and extreme ones) and project onto itself.

Examples
--------
>>> import numpy as np
>>> import scipy.sparse as sp
>>> ball = L1Ball(np.array([0.0, 0.5, 1.0]), radius=0.3)
>>> ball.n, ball.lower, ball.upper
(3, array([0. , 0.2, 0.7]), array([0.3, 0.8, 1. ]))
>>> lo, hi = ball.first_layer_bounds(sp.csr_array(np.array([[1.0, -2.0, 1.0]])), np.zeros(1))
>>> float(lo[0]), float(hi[0])
(-0.6, 0.6)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from .exceptions import ShapeMismatchError, SparseSurrogateError, UnboundedInputError

__all__ = [
    "Box",
    "Domain",
    "DomainConstr",
    "InvalidDomainError",
    "L1Ball",
    "LPRows",
    "LPSize",
    "LinfBall",
]


class InvalidDomainError(SparseSurrogateError, ValueError):
    """The arguments do not describe a valid input domain (NaN, negative radius, ...)."""


# --------------------------------------------------------------------------- validation


def _vector(value: Any, name: str, n: int | None = None) -> np.ndarray:
    """``value`` as a float64 vector of length ``n`` (scalars broadcast); NaN is refused."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidDomainError(f"{name} must be numeric, got {value!r}") from error
    if arr.ndim > 1:
        raise ShapeMismatchError(f"{name} must be a scalar or a 1-D array, got shape {arr.shape}")
    if arr.ndim == 1 and n is not None and arr.size != n:
        raise ShapeMismatchError(f"{name} has {arr.size} entries, expected {n}")
    if np.isnan(arr).any():
        where = np.flatnonzero(np.isnan(np.atleast_1d(arr)))[:10].tolist()
        raise InvalidDomainError(f"{name} contains NaN (at entries {where})")
    if arr.ndim == 1 and arr.size == 0:
        raise ShapeMismatchError(f"{name} is empty; a domain needs dimension >= 1")
    if arr.ndim == 0:
        if n is None:
            raise ShapeMismatchError(f"{name} is a scalar; the dimension of the domain is unknown")
        arr = np.full(n, float(arr))
    return arr


def _check_order(lower: np.ndarray, upper: np.ndarray) -> None:
    bad = np.flatnonzero(lower > upper)
    if bad.size:
        raise InvalidDomainError(
            f"lower bound exceeds upper bound at {bad.size} coordinates (first: {bad[:10].tolist()})"
        )


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr, dtype=np.float64)
    arr.flags.writeable = False
    return arr


def _as_csr(weight: Any, bias: Any, n: int) -> tuple[sp.csr_array, np.ndarray]:
    """Validate ``(W, b)`` for :meth:`Domain.first_layer_bounds`."""
    matrix = sp.csr_array(weight, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != n:
        raise ShapeMismatchError(
            f"the weight matrix has shape {matrix.shape}; the domain has dimension {n}, so "
            f"(m, {n}) was expected"
        )
    b = np.asarray(bias, dtype=np.float64).reshape(-1)
    if b.size != matrix.shape[0]:
        raise ShapeMismatchError(
            f"the bias has {b.size} entries, the weight has {matrix.shape[0]} rows"
        )
    if not (np.isfinite(matrix.data).all() and np.isfinite(b).all()):
        raise InvalidDomainError("the weight matrix or the bias contains NaN or infinite values")
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix, b


# --------------------------------------------------------------------------- Gurobi record


@dataclass
class DomainConstr:
    """What :meth:`Domain.add_to_model` added to a model, and how to take it back.

    Attributes
    ----------
    model : gurobipy.Model
    x : list of gurobipy.Var
        The input variables, in order.
    original_lb, original_ub : numpy.ndarray
        Their bounds before the domain was added.
    vars : list of gurobipy.Var
        Variables added (absolute values of L1 coordinates).
    constrs : list of gurobipy.Constr
        Linear constraints added.
    """

    model: Any
    x: list
    original_lb: np.ndarray
    original_ub: np.ndarray
    vars: list = field(default_factory=list)
    constrs: list = field(default_factory=list)
    removed: bool = False

    @property
    def n_vars(self) -> int:
        """Number of variables added."""
        return len(self.vars)

    @property
    def n_constrs(self) -> int:
        """Number of linear constraints added."""
        return len(self.constrs)

    def remove(self) -> None:
        """Delete the added variables and constraints and restore the original bounds.

        Calling it a second time does nothing.
        """
        if self.removed:
            return
        if self.constrs:
            self.model.remove(self.constrs)
        if self.vars:
            self.model.remove(self.vars)
        self.model.setAttr("LB", self.x, self.original_lb.tolist())
        self.model.setAttr("UB", self.x, self.original_ub.tolist())
        self.model.update()
        self.removed = True


# --------------------------------------------------------------------------- LP rows


@dataclass(frozen=True)
class LPRows:
    """Linear rows that describe (a relaxation of) a domain on some of its coordinates.

    The rows read ``matrix @ [x[columns], aux] (sense) rhs`` with auxiliary variables
    ``aux_lower <= aux <= aux_upper``; the box ``[domain.lower, domain.upper]`` is not
    repeated (the bounding code sets it as variable bounds).

    Attributes
    ----------
    matrix : scipy.sparse.csr_array
        Shape ``(n_rows, len(columns) + n_aux)``.
    sense : numpy.ndarray
        One of ``"<"``, ``">"``, ``"="`` per row.
    rhs : numpy.ndarray
    aux_lower, aux_upper : numpy.ndarray
        Bounds of the auxiliary variables, ``(n_aux,)`` each.
    """

    matrix: sp.csr_array
    sense: np.ndarray
    rhs: np.ndarray
    aux_lower: np.ndarray
    aux_upper: np.ndarray

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return self.matrix.shape[0]

    @property
    def n_aux(self) -> int:
        """Number of auxiliary variables."""
        return self.aux_lower.size

    @classmethod
    def empty(cls, n_columns: int) -> LPRows:
        """No rows and no auxiliary variables."""
        return cls(
            sp.csr_array((0, n_columns)),
            np.array([], dtype="<U1"),
            np.zeros(0),
            np.zeros(0),
            np.zeros(0),
        )


@dataclass(frozen=True)
class LPSize:
    """An upper bound on the size of :meth:`Domain.lp_rows` for any set of columns.

    ``lp_rows(columns)`` adds at most ``variables[columns].sum() + fixed_variables``
    auxiliary variables and ``constraints[columns].sum() + fixed_constraints`` rows.
    """

    variables: np.ndarray
    constraints: np.ndarray
    fixed_variables: int = 0
    fixed_constraints: int = 0


def _input_vars(x: Any, n: int) -> list:
    """The input variables as a flat list of ``gurobipy.Var`` of length ``n``."""
    import gurobipy as gp

    if isinstance(x, gp.MVar):
        variables = x.reshape(-1).tolist()
    elif isinstance(x, gp.Var):
        variables = [x]
    else:
        try:
            variables = list(x)
        except TypeError as error:
            raise TypeError(
                f"x must be a gurobipy MVar or a sequence of Var, got {type(x).__name__}"
            ) from error
    if not all(isinstance(v, gp.Var) for v in variables):
        raise TypeError("x must be a gurobipy MVar or a sequence of gurobipy Var")
    if len(variables) != n:
        raise ShapeMismatchError(
            f"{len(variables)} input variables given; the domain has dimension {n}"
        )
    return variables


# --------------------------------------------------------------------------- domains


class Domain(ABC):
    """An input domain of dimension ``n`` contained in the box ``[lower, upper]``.

    Attributes
    ----------
    n : int
        Dimension.
    lower, upper : numpy.ndarray
        The smallest box containing the domain (read-only float64 arrays of length ``n``).
    center : numpy.ndarray
        Centre of a ball; the midpoint of a :class:`Box`.
    is_box : bool
        Whether the domain is its bounding box (:class:`Box`, :class:`LinfBall`); False for
        :class:`L1Ball`, whose bounding box holds points outside it, and by default for a
        subclass (bounds computed over it are then reusable only where it is declared).
    """

    _lower: np.ndarray
    _upper: np.ndarray
    is_box: bool = False  # the safe default: a box's bounds are reused more freely

    @property
    def n(self) -> int:
        """Dimension of the domain."""
        return self._lower.size

    @property
    def lower(self) -> np.ndarray:
        """Lower end of the domain's bounding box."""
        return self._lower

    @property
    def upper(self) -> np.ndarray:
        """Upper end of the domain's bounding box."""
        return self._upper

    @property
    def center(self) -> np.ndarray:
        """A central point of the domain."""
        return _frozen((self._lower + self._upper) / 2.0)

    def within(self, other: Domain) -> bool:
        """Whether every point of this domain lies in ``other`` (a sufficient test: False
        can also mean "not shown", for example for a box inside an L1 ball).

        Examples
        --------
        >>> L1Ball([0.5, 0.5], 0.1).within(L1Ball([0.5, 0.5], 0.2))
        True
        >>> Box([0.0, 0.0], [1.0, 1.0]).within(L1Ball([0.5, 0.5], 0.2))
        False
        """
        if self is other:
            return True
        if not isinstance(other, Domain) or other.n != self.n:
            return False
        in_box = bool((self.lower >= other.lower).all() and (self.upper <= other.upper).all())
        if other.is_box or not in_box:
            return in_box
        if isinstance(self, L1Ball) and isinstance(other, L1Ball):
            return np.array_equal(self.center, other.center) and self.radius <= other.radius
        # a user's domain: the same one (its class and parameters, as the bounds cache reads them)
        from .bounds.cache import domain_fingerprint

        mine = domain_fingerprint(self)
        return mine is not None and mine == domain_fingerprint(other)

    # ---- Gurobi

    def add_to_model(self, model: Any, x: Any) -> DomainConstr:
        """Restrict the variables ``x`` of ``model`` to this domain.

        The box part tightens the variables' bounds (never loosens them). Any further
        constraints (only :class:`L1Ball` has some) are linear.

        Parameters
        ----------
        model : gurobipy.Model
        x : gurobipy.MVar or sequence of gurobipy.Var
            ``n`` input variables (an MVar of any shape with ``n`` entries is flattened).

        Returns
        -------
        DomainConstr
            The record of what was added, with ``remove()``.

        Raises
        ------
        ShapeMismatchError
            When ``x`` does not have ``n`` variables.
        InvalidDomainError
            When the variables' bounds and the domain do not intersect.

        Examples
        --------
        >>> import gurobipy as gp
        >>> m = gp.Model(env=gp.Env(params={"OutputFlag": 0}))
        >>> x = m.addMVar(3, lb=-5.0)
        >>> rec = Box([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]).add_to_model(m, x)
        >>> m.update(); x.UB.tolist(), rec.n_vars
        ([1.0, 2.0, 3.0], 0)
        """
        return self._add_to_model(model, x)

    def _add_to_model(self, model: Any, x: Any, **options: Any) -> DomainConstr:
        variables = _input_vars(x, self.n)
        model.update()
        lb = np.array(model.getAttr("LB", variables), dtype=np.float64)
        ub = np.array(model.getAttr("UB", variables), dtype=np.float64)
        new_lb = np.maximum(lb, self._lower)
        new_ub = np.minimum(ub, self._upper)
        empty = np.flatnonzero(new_lb > new_ub)
        if empty.size:
            raise InvalidDomainError(
                f"the variables' bounds do not meet the domain at {empty.size} coordinates "
                f"(first: {empty[:10].tolist()})"
            )
        record = DomainConstr(model, variables, lb, ub)
        model.setAttr("LB", variables, new_lb.tolist())
        model.setAttr("UB", variables, new_ub.tolist())
        self._add_constraints(model, variables, new_lb, new_ub, record, **options)
        model.update()
        return record

    def _add_constraints(self, model, variables, lb, ub, record, **options) -> None:
        """Add constraints beyond the bounds (none for a box)."""
        return None

    # ---- LP rows (for the LP and MILP bounding stages)

    def lp_rows(self, columns: Any) -> LPRows:
        """Linear rows that every point of the domain satisfies, on the coordinates ``columns``.

        The bounding stages that solve LPs and MILPs model only the inputs in a neuron's cone
        of influence; ``columns`` are those coordinates (sorted, distinct). The rows returned,
        with some values of their auxiliary variables, must hold for the restriction to
        ``columns`` of every point of the domain: a relaxation of the domain's projection
        (the projection itself is tightest). Fewer rows are always sound; the default is none
        (the bounding box alone, set as variable bounds). A subclass that adds rows overrides
        :meth:`lp_size` too.

        Parameters
        ----------
        columns : array_like of int

        Returns
        -------
        LPRows

        Examples
        --------
        >>> rows = L1Ball([0.5, 0.5, 0.5], 0.2).lp_rows([0, 2])
        >>> rows.n_aux, rows.n_rows, rows.sense.tolist()
        (2, 5, ['>', '>', '>', '>', '<'])
        >>> Box([0.0, 0.0], [1.0, 1.0]).lp_rows([0, 1]).n_rows
        0
        """
        return LPRows.empty(np.asarray(columns).size)

    def lp_size(self) -> LPSize:
        """Per-coordinate upper bounds on the size of :meth:`lp_rows` (for licence checks)."""
        return LPSize(np.zeros(self.n), np.zeros(self.n))

    # ---- bounds

    def first_layer_bounds(self, weight: Any, bias: Any) -> tuple[np.ndarray, np.ndarray]:
        """Exact minimum and maximum of each row of ``W x + b`` over the domain.

        Parameters
        ----------
        weight : scipy.sparse matrix or array_like
            Shape ``(m, n)``.
        bias : array_like
            Shape ``(m,)``.

        Returns
        -------
        lower, upper : numpy.ndarray
            Shape ``(m,)`` each.

        Raises
        ------
        ShapeMismatchError
            When the shapes do not conform.

        Examples
        --------
        >>> import numpy as np
        >>> lo, hi = Box([0.0, 0.0], [1.0, 1.0]).first_layer_bounds(np.array([[1.0, -1.0]]), [0.5])
        >>> lo.tolist(), hi.tolist()
        ([-0.5], [1.5])
        """
        matrix, b = _as_csr(weight, bias, self.n)
        return self._row_bounds(matrix, b)

    def _row_bounds(self, matrix: sp.csr_array, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        positive = matrix.maximum(0)
        negative = matrix.minimum(0)
        lo = positive @ self._lower + negative @ self._upper + b
        hi = positive @ self._upper + negative @ self._lower + b
        return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)

    # ---- points

    def _points(self, x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim not in (1, 2) or arr.shape[-1] != self.n:
            raise ShapeMismatchError(
                f"points must have shape ({self.n},) or (k, {self.n}), got {arr.shape}"
            )
        return arr

    def contains(self, x: Any, tol: float = 1e-6) -> bool | np.ndarray:
        """Whether ``x`` lies in the domain (up to ``tol`` per constraint).

        Parameters
        ----------
        x : array_like
            A point ``(n,)`` or a batch ``(k, n)``.
        tol : float
            Absolute tolerance.

        Returns
        -------
        bool or numpy.ndarray of bool
            One value per point for a batch.

        Examples
        --------
        >>> LinfBall([0.5, 0.5], 0.1).contains([[0.55, 0.45], [0.7, 0.5]]).tolist()
        [True, False]
        """
        arr = self._points(x)
        batch = np.atleast_2d(arr)
        with np.errstate(invalid="ignore"):
            inside = np.all(batch >= self._lower - tol, axis=1) & np.all(
                batch <= self._upper + tol, axis=1
            )
            inside &= self._extra_contains(batch, tol)
        return inside if arr.ndim == 2 else bool(inside[0])

    def _extra_contains(self, batch: np.ndarray, tol: float) -> np.ndarray:
        return np.ones(batch.shape[0], dtype=bool)

    def sample(self, n_points: int, rng: Any = None) -> np.ndarray:
        """Points of the domain: random ones and extreme ones, mixed.

        Extreme points (box corners, ball vertices, maximisers of random linear functions,
        points on the boundary) are where bounds are attained, so they make sharp soundness
        tests.

        Parameters
        ----------
        n_points : int
        rng : numpy.random.Generator, int or None
            Random generator or seed.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_points, n)``.

        Examples
        --------
        >>> Box([0.0, 0.0], [1.0, 2.0]).sample(5, rng=0).shape
        (5, 2)
        """
        if int(n_points) != n_points or n_points < 0:
            raise ValueError(f"n_points must be a non-negative integer, got {n_points!r}")
        rng = np.random.default_rng(rng)
        points = self._sample(int(n_points), rng)
        return self.project(points)

    @abstractmethod
    def _sample(self, n_points: int, rng: np.random.Generator) -> np.ndarray: ...

    def project(self, x: Any) -> Any:
        """Euclidean projection onto the domain.

        Parameters
        ----------
        x : numpy.ndarray or torch.Tensor
            A point ``(n,)`` or a batch ``(k, n)``.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            The nearest points of the domain, with the type, dtype and device of ``x`` (a
            tensor result carries no gradient).

        Examples
        --------
        >>> Box([0.0, 0.0], [1.0, 1.0]).project(np.array([2.0, -1.0])).tolist()
        [1.0, 0.0]
        """
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a dependency
            torch = None
        if torch is not None and isinstance(x, torch.Tensor):
            arr = self._points(x.detach().cpu().double().numpy())
        else:
            arr = self._points(x)
        if np.isnan(arr).any():
            raise InvalidDomainError("cannot project a point that contains NaN")
        out = self._project(arr)
        if torch is not None and isinstance(x, torch.Tensor):
            return torch.as_tensor(out, dtype=x.dtype, device=x.device)
        dtype = np.asarray(x).dtype
        return out.astype(dtype if np.issubdtype(dtype, np.floating) else np.float64)

    def _project(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self._lower, self._upper)

    # ---- sampling helpers for boxes

    def _box_sample(self, n_points: int, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self._lower, self._upper
        kind = np.arange(n_points) % 4
        uniform = lo + rng.random((n_points, self.n)) * (hi - lo)
        corner = np.where(rng.random((n_points, self.n)) < 0.5, lo, hi)
        # a point on a face: uniform except one coordinate at a bound
        face = uniform.copy()
        coord = rng.integers(self.n, size=n_points)
        face[np.arange(n_points), coord] = np.where(
            rng.random(n_points) < 0.5, lo[coord], hi[coord]
        )
        # mostly at the bounds, a few coordinates free
        mixed = np.where(rng.random((n_points, self.n)) < 0.8, corner, uniform)
        return np.select(
            [kind[:, None] == 0, kind[:, None] == 1, kind[:, None] == 2],
            [uniform, corner, face],
            mixed,
        )


class Box(Domain):
    """The box ``lower <= x <= upper`` (finite bounds).

    Parameters
    ----------
    lower, upper : array_like or float
        Bounds; a scalar broadcasts against the other argument (or ``n``).
    n : int, optional
        Dimension, needed only when both bounds are scalars.

    Raises
    ------
    InvalidDomainError
        For NaN or ``lower > upper``.
    UnboundedInputError
        For an infinite bound.

    Examples
    --------
    >>> Box(0.0, [1.0, 2.0]).lower.tolist()
    [0.0, 0.0]
    """

    is_box = True

    def __init__(self, lower: Any, upper: Any, *, n: int | None = None) -> None:
        if n is None:
            sizes = [np.size(v) for v in (lower, upper) if np.ndim(v) == 1]
            n = sizes[0] if sizes else None
        lo = _vector(lower, "lower", n)
        hi = _vector(upper, "upper", lo.size)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise UnboundedInputError("a Box needs finite bounds; use a ball for an unbounded box")
        _check_order(lo, hi)
        self._lower, self._upper = _frozen(lo), _frozen(hi)

    def _sample(self, n_points, rng):
        return self._box_sample(n_points, rng)

    def __repr__(self) -> str:
        return f"Box(n={self.n})"


class _Ball(Domain):
    """Common validation of the two balls."""

    def __init__(self, center: Any, radius: float, lower: Any = 0.0, upper: Any = 1.0) -> None:
        c = _vector(center, "center")
        if not np.isfinite(c).all():
            raise InvalidDomainError("center must be finite")
        try:
            r = float(radius)
        except (TypeError, ValueError) as error:
            raise InvalidDomainError(f"radius must be a number, got {radius!r}") from error
        if not np.isfinite(r) or r < 0:
            raise InvalidDomainError(f"radius must be finite and >= 0, got {radius!r}")
        lo = _vector(lower, "lower", c.size)
        hi = _vector(upper, "upper", c.size)
        _check_order(lo, hi)
        outside = np.flatnonzero((c < lo) | (c > hi))
        if outside.size:
            raise InvalidDomainError(
                f"the center lies outside the box [lower, upper] at {outside.size} coordinates "
                f"(first: {outside[:10].tolist()})"
            )
        self._center = _frozen(c)
        self.radius = r
        self.box_lower = _frozen(lo)
        self.box_upper = _frozen(hi)
        self._lower = _frozen(np.maximum(lo, c - r))
        self._upper = _frozen(np.minimum(hi, c + r))

    @property
    def center(self) -> np.ndarray:
        """Centre of the ball."""
        return self._center

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, radius={self.radius:g})"


class LinfBall(_Ball):
    """The ball ``||x - center||_inf <= radius`` intersected with the box ``[lower, upper]``.

    The intersection is itself a box, so :attr:`lower` and :attr:`upper` describe the domain
    completely and :meth:`add_to_model` adds bounds only.

    Parameters
    ----------
    center : array_like
        Shape ``(n,)``, inside the box.
    radius : float
        Finite, ``>= 0``.
    lower, upper : array_like or float
        The box (default ``[0, 1]`` as for images; infinite values allowed).

    Raises
    ------
    InvalidDomainError
        For NaN, a negative or infinite radius, a centre outside the box or ``lower > upper``.
    ShapeMismatchError
        When the bounds do not have the centre's length.

    Examples
    --------
    >>> LinfBall([0.05, 0.5], 0.1).lower.tolist()
    [0.0, 0.4]
    """

    is_box = True

    def _sample(self, n_points, rng):
        return self._box_sample(n_points, rng)


class L1Ball(_Ball):
    """The ball ``||x - center||_1 <= radius`` intersected with the box ``[lower, upper]``.

    :attr:`lower` and :attr:`upper` are the domain's bounding box, the box intersected with
    ``[center - radius, center + radius]``; the original box is :attr:`box_lower`,
    :attr:`box_upper`.

    Parameters
    ----------
    center : array_like
        Shape ``(n,)``, inside the box.
    radius : float
        Finite, ``>= 0``.
    lower, upper : array_like or float
        The box (default ``[0, 1]`` as for images; infinite values allowed).

    Raises
    ------
    InvalidDomainError
        For NaN, a negative or infinite radius, a centre outside the box or ``lower > upper``.
    ShapeMismatchError
        When the bounds do not have the centre's length.

    Examples
    --------
    >>> ball = L1Ball([0.0, 0.5], 1.0)
    >>> ball.contains([0.6, 0.9]), ball.contains([0.7, 0.9])
    (True, False)
    """

    is_box = False

    # ---- Gurobi

    def add_to_model(self, model: Any, x: Any, *, compact: bool = True, encoding: str = "abs"):
        """Restrict ``x`` to the L1 ball intersected with the box.

        The bounds of ``x`` are tightened to the bounding box. A coordinate that can only move
        up from the centre (its tightened lower bound is ``>= center``) contributes
        ``x_i - c_i`` to the budget row, one that can only move down contributes
        ``c_i - x_i``, and a fixed one nothing; only the others get an absolute value. With
        ``encoding="abs"`` that is one variable ``t_i >= |x_i - c_i|`` and two rows; with
        ``"split"`` two variables ``p_i, q_i >= 0`` and one row ``x_i - p_i + q_i = c_i``.
        Both cost three rows plus columns per coordinate; ``"abs"`` is the default because it
        adds fewer variables, the scarcer resource once the input vector itself (784
        variables for MNIST) sits in a size-limited model. One budget row
        ``sum(...) <= radius`` closes the encoding.

        Parameters
        ----------
        model : gurobipy.Model
        x : gurobipy.MVar or sequence of gurobipy.Var
        compact : bool
            ``False`` gives every coordinate an absolute value (the plain encoding, for
            comparison).
        encoding : {"abs", "split"}

        Returns
        -------
        DomainConstr

        Examples
        --------
        >>> import gurobipy as gp
        >>> m = gp.Model(env=gp.Env(params={"OutputFlag": 0}))
        >>> x = m.addMVar(3)
        >>> rec = L1Ball([0.0, 0.5, 1.0], 0.5).add_to_model(m, x)
        >>> rec.n_vars, rec.n_constrs
        (1, 3)
        """
        if encoding not in ("abs", "split"):
            raise ValueError(f"encoding must be 'abs' or 'split', got {encoding!r}")
        return self._add_to_model(model, x, compact=bool(compact), encoding=encoding)

    def _add_constraints(self, model, variables, lb, ub, record, *, compact, encoding) -> None:
        import gurobipy as gp

        c, r = self._center, self.radius
        if compact:
            up = (lb >= c) & (ub > c)
            down = (ub <= c) & (lb < c)
            free = ~(up | down) & (lb < ub)
        else:
            up = down = np.zeros(self.n, dtype=bool)
            free = np.ones(self.n, dtype=bool)
        up_idx, down_idx, idx = np.flatnonzero(up), np.flatnonzero(down), np.flatnonzero(free)
        budget = gp.LinExpr()
        budget.addTerms([1.0] * up_idx.size, [variables[i] for i in up_idx])
        budget.addTerms([-1.0] * down_idx.size, [variables[i] for i in down_idx])
        constant = float(c[down_idx].sum() - c[up_idx].sum())
        if idx.size:
            xs = gp.MVar.fromlist([variables[i] for i in idx])
            cf = c[idx]
            cap_up = np.minimum(ub[idx] - cf, r)
            cap_down = np.minimum(cf - lb[idx], r)
            if encoding == "abs":
                t = model.addMVar(idx.size, lb=0.0, ub=np.maximum(cap_up, cap_down), name="l1_abs")
                added = [t]
                rows = [
                    model.addConstr(t - xs >= -cf, name="l1_abs_up"),
                    model.addConstr(t + xs >= cf, name="l1_abs_down"),
                ]
            else:
                p = model.addMVar(idx.size, lb=0.0, ub=cap_up, name="l1_up")
                q = model.addMVar(idx.size, lb=0.0, ub=cap_down, name="l1_down")
                added = [p, q]
                rows = [model.addConstr(xs - p + q == cf, name="l1_split")]
            for var in added:
                record.vars.extend(var.tolist())
                budget.addTerms([1.0] * idx.size, var.tolist())
            for row in rows:
                record.constrs.extend(row.tolist())
        if budget.size():
            record.constrs.append(
                model.addLConstr(budget, gp.GRB.LESS_EQUAL, r - constant, name="l1_budget")
            )

    # ---- LP rows

    def lp_rows(self, columns: Any) -> LPRows:
        """``d_i >= |x_i - c_i|`` for ``i`` in ``columns`` and ``sum(d) <= radius``.

        The projection of the ball (intersected with a box that contains its centre) on any
        set of coordinates is exactly this: the other coordinates can stay at the centre.
        """
        columns = np.asarray(columns, dtype=np.int64).reshape(-1)
        n = columns.size
        if n == 0:
            return LPRows.empty(0)
        centre = self._center[columns]
        k = np.arange(n)
        x, d = k, n + k  # local columns: the inputs first, then the auxiliaries
        rows = np.concatenate([k, k, n + k, n + k, np.full(n, 2 * n)])
        cols = np.concatenate([d, x, d, x, d])
        vals = np.concatenate([np.ones(n), -np.ones(n), np.ones(n), np.ones(n), np.ones(n)])
        matrix = sp.csr_array((vals, (rows, cols)), shape=(2 * n + 1, 2 * n))
        # d - x >= -c ; d + x >= c ; sum d <= r
        sense = np.array([">"] * (2 * n) + ["<"])
        rhs = np.concatenate([-centre, centre, [self.radius]])
        return LPRows(matrix, sense, rhs, np.zeros(n), np.full(n, self.radius))

    def lp_size(self) -> LPSize:
        """One auxiliary variable and two rows per coordinate, and the budget row."""
        return LPSize(np.ones(self.n), np.full(self.n, 2.0), 0, 1)

    # ---- bounds

    def _capacities(self) -> tuple[np.ndarray, np.ndarray]:
        """Room to move up and down from the centre, capped at the radius."""
        return self._upper - self._center, self._center - self._lower

    def _row_bounds(self, matrix, b):
        """Greedy fractional knapsack per row, vectorised on a padded ``(m, max_nnz)`` grid.

        Moving coordinate ``i`` away from the centre in the direction of ``sign(w_i)`` gains
        ``|w_i|`` per unit, up to the room in that direction; the budget is the radius. The
        greedy order (largest ``|w_i|`` first) is optimal. Each row's stored entries are laid
        out on one row of a grid (padding: gain 0, room 0) and sorted there, which is much
        faster than a global ``lexsort`` by (row, -|w|) and keeps the cumulative sums per row
        (no cancellation against other rows' sums).
        """
        m = matrix.shape[0]
        center_value = matrix @ self._center + b
        if matrix.nnz == 0 or self.radius == 0.0:
            return center_value.copy(), center_value.copy()
        counts = np.diff(matrix.indptr)
        rows = np.repeat(np.arange(m), counts)
        position = np.arange(matrix.nnz) - matrix.indptr[rows]
        width = int(counts.max())
        room_up, room_down = self._capacities()
        w, cols = matrix.data, matrix.indices
        gain = np.zeros((m, width))
        cap_max = np.zeros((m, width))
        cap_min = np.zeros((m, width))
        gain[rows, position] = np.abs(w)
        cap_max[rows, position] = np.where(w > 0, room_up[cols], room_down[cols])
        cap_min[rows, position] = np.where(w > 0, room_down[cols], room_up[cols])
        order = np.argsort(-gain, axis=1)
        gain = np.take_along_axis(gain, order, axis=1)

        def gained(cap: np.ndarray) -> np.ndarray:
            cap = np.take_along_axis(cap, order, axis=1)
            before = np.cumsum(cap, axis=1) - cap
            amount = np.clip(self.radius - before, 0.0, cap)
            return (gain * amount).sum(axis=1)

        return center_value - gained(cap_min), center_value + gained(cap_max)

    # ---- points

    def _extra_contains(self, batch, tol):
        return np.abs(batch - self._center).sum(axis=1) <= self.radius + tol

    def _sample(self, n_points, rng):
        n, c, r = self.n, self._center, self.radius
        kind = np.arange(n_points) % 4
        rows = np.arange(n_points)
        # uniform-ish interior points: random direction, random norm, clipped to the box
        direction = rng.laplace(size=(n_points, n))
        norms = np.abs(direction).sum(axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        scale = r * rng.random((n_points, 1)) ** (1.0 / n)
        interior = c + direction / norms * scale
        # on the sphere (then clipped: on the boundary of the intersection or a box face)
        sphere = c + direction / norms * r
        # ball vertices c +- r e_i
        vertex = np.tile(c, (n_points, 1))
        coord = rng.integers(n, size=n_points)
        vertex[rows, coord] += np.where(rng.random(n_points) < 0.5, r, -r)
        # maximisers of random linear functions (vertices of the intersection)
        gradient = rng.standard_normal((n_points, n)) * rng.exponential(size=(n_points, n)) ** 3
        extreme = self._greedy_maximizer(gradient)
        choice = kind[:, None]
        points = np.select(
            [choice == 0, choice == 1, choice == 2], [interior, vertex, extreme], sphere
        )
        return np.clip(points, self._lower, self._upper)

    def _greedy_maximizer(self, gradient: np.ndarray) -> np.ndarray:
        """Argmax of ``g . x`` over the domain, per row of ``gradient``."""
        room_up, room_down = self._capacities()
        order = np.argsort(-np.abs(gradient), axis=1)
        g = np.take_along_axis(gradient, order, axis=1)
        cap = np.where(g > 0, room_up[order], np.where(g < 0, room_down[order], 0.0))
        before = np.cumsum(cap, axis=1) - cap
        amount = np.clip(self.radius - before, 0.0, cap)
        step = np.zeros_like(gradient)
        np.put_along_axis(step, order, np.sign(g) * amount, axis=1)
        return self._center + step

    def _project(self, x):
        """Exact projection: ``d_i = sign(d_i) * clip(|d_i| - lam, 0, cap_i)``.

        ``g(lam) = sum_i clip(|d_i| - lam, 0, cap_i)`` is piecewise linear and non-increasing;
        its slope drops by one where ``lam`` reaches ``|d_i| - cap_i`` and rises by one where
        it reaches ``|d_i|``. Sorting these breakpoints per row and accumulating the slopes
        gives ``g`` at every breakpoint, and ``lam`` by linear interpolation on the segment
        where ``g`` crosses the radius (``lam = 0`` when the box projection is in the ball).
        """
        c, r = self._center, self.radius
        d = x - c
        magnitude = np.abs(d)
        room_up, room_down = self._capacities()
        cap = np.where(d > 0, room_up, room_down)
        shape = d.shape
        magnitude2 = magnitude.reshape(-1, self.n)
        cap2 = np.broadcast_to(cap, shape).reshape(-1, self.n)
        start = np.maximum(magnitude2 - cap2, 0.0)
        events = np.concatenate([start, magnitude2], axis=1)
        delta = np.concatenate([-np.ones_like(start), np.ones_like(start)], axis=1)
        order = np.argsort(events, axis=1, kind="stable")
        events = np.take_along_axis(events, order, axis=1)
        slope = np.cumsum(np.take_along_axis(delta, order, axis=1), axis=1)
        g0 = np.minimum(magnitude2, cap2).sum(axis=1)
        # g at each event: g0 plus the area under the slope up to it (slope 0 before event 0)
        increments = slope[:, :-1] * np.diff(events, axis=1)
        g = g0[:, None] + np.concatenate([np.zeros((len(g0), 1)), np.cumsum(increments, axis=1)], 1)
        # the first event j with g(event_{j+1}) <= r: lam lies in [event_j, event_{j+1}]
        crossed = np.concatenate([g[:, 1:] <= r, np.ones((len(g0), 1), dtype=bool)], axis=1)
        j = np.argmax(crossed, axis=1)
        rows = np.arange(len(g0))
        s_j = slope[rows, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = events[rows, j] + np.where(s_j < 0, (g[rows, j] - r) / -s_j, 0.0)
        lam = np.where(g0 <= r, 0.0, np.maximum(lam, 0.0)).reshape(shape[:-1])
        step = np.sign(d) * np.clip(magnitude - lam[..., None], 0.0, cap)
        return np.clip(c + step, self._lower, self._upper)
