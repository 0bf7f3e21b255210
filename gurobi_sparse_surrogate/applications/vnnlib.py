"""VNN-LIB properties: :func:`load_vnnlib` and the :class:`VnnlibProperty` it returns.

A VNN-LIB file describes what a *counterexample* must satisfy: inputs ``X_i`` in a box and
outputs ``Y_j`` meeting linear constraints, combined with ``and`` and ``or``. Every property
is brought to the form VNN-COMP's tools use: a disjunction of *cases*, each an input box with
a disjunction of output polytopes ``A y <= b``. A counterexample is an input inside one
case's box whose outputs lie in one of that case's polytopes; the property holds (``unsat``)
when there is none.

VNN-LIB 1.0 (the format of VNN-COMP 2021-2024) is read by the small parser of this module;
VNN-LIB 2.0 files (``(vnnlib-version <2.0>)``) are read with the ``vnnlib`` package.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import VnnlibError

__all__ = ["OutputPolytope", "PropertyCase", "VnnlibProperty", "load_vnnlib"]

#: Largest number of conjunctions a property may expand to.
MAX_DISJUNCTS = 1_000_000


@dataclass(frozen=True, eq=False)
class OutputPolytope:
    """The outputs ``y`` with ``A @ y <= b`` (no rows: every output).

    Attributes
    ----------
    A : numpy.ndarray
        ``(m, n_outputs)``.
    b : numpy.ndarray
        ``(m,)``.
    """

    A: np.ndarray
    b: np.ndarray

    def violation(self, y: np.ndarray) -> np.ndarray | float:
        """``max_i (A y - b)_i`` for outputs ``(n_outputs,)`` or ``(k, n_outputs)``.

        Negative when every row holds with slack, ``-inf`` without rows.
        """
        y = np.asarray(y, dtype=np.float64)
        if not len(self.b):
            return -np.inf if y.ndim == 1 else np.full(y.shape[0], -np.inf)
        return (y @ self.A.T - self.b).max(axis=-1)


@dataclass(frozen=True, eq=False)
class PropertyCase:
    """An input box and the output polytopes of which a counterexample meets one.

    Attributes
    ----------
    lower, upper : numpy.ndarray
        ``(n_inputs,)`` finite bounds.
    outputs : tuple of OutputPolytope
        A disjunction.
    """

    lower: np.ndarray
    upper: np.ndarray
    outputs: tuple[OutputPolytope, ...]


@dataclass(frozen=True, eq=False)
class VnnlibProperty:
    """A VNN-LIB property as a disjunction of :class:`PropertyCase` objects.

    Attributes
    ----------
    n_inputs, n_outputs : int
    cases : tuple of PropertyCase
    source : str
        Where it was read from.
    version : str
        ``"1.0"`` or ``"2.0"``.
    """

    n_inputs: int
    n_outputs: int
    cases: tuple[PropertyCase, ...]
    source: str = ""
    version: str = "1.0"
    notes: list[str] = field(default_factory=list)

    @property
    def n_disjuncts(self) -> int:
        """Number of (box, polytope) pairs."""
        return sum(len(case.outputs) for case in self.cases)

    def violation(self, x: Any, y: Any, tol: float = 0.0) -> float:
        """The smallest ``max_i (A y - b)_i`` over the polytopes of the cases whose box holds
        ``x`` (within ``tol``); ``inf`` when ``x`` is in no box.

        A negative value means that ``(x, y)`` is a counterexample.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        best = np.inf
        for case in self.cases:
            if np.all(x >= case.lower - tol) and np.all(x <= case.upper + tol):
                for polytope in case.outputs:
                    best = min(best, float(polytope.violation(y)))
        return best

    def __repr__(self) -> str:
        return (
            f"VnnlibProperty({self.n_inputs} inputs, {self.n_outputs} outputs, "
            f"{len(self.cases)} input boxes, {self.n_disjuncts} disjuncts)"
        )


# --------------------------------------------------------------------------- reading


def _read_text(path: str | os.PathLike) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no VNN-LIB file at {path}")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise VnnlibError(f"{path} is not a valid gzip file: {error}") from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise VnnlibError(f"{path} is not a text file: {error}") from error


def load_vnnlib(path: str | os.PathLike, n_inputs: int, n_outputs: int) -> VnnlibProperty:
    """Read a VNN-LIB property for a network with ``n_inputs`` inputs and ``n_outputs`` outputs.

    VNN-LIB 1.0 as VNN-COMP uses it: ``(declare-const X_i Real)`` and ``(declare-const Y_j
    Real)`` (or ``(declare-fun X_i () Real)``), then ``(assert ...)`` over comparisons (``<=``, ``>=``, ``<``, ``>``, ``=``) of
    linear terms (numbers, variables, ``+``, ``-``, ``*`` by a number), combined with
    ``and`` and ``or``; the assertions are conjoined. Input constraints must bound single
    inputs (a box per disjunct; disjunctions of boxes are fine); output constraints may be any
    linear inequalities. Strict and non-strict comparisons are read alike (a counterexample
    is checked with a margin, see :func:`~gurobi_sparse_surrogate.verify`). Files starting
    with ``(vnnlib-version <2.0>)`` are read with the ``vnnlib`` package. Gzip-compressed
    files (``.vnnlib.gz``) are accepted.

    Parameters
    ----------
    path : str or path-like
    n_inputs, n_outputs : int
        The network's input and output sizes (flat, VNN-LIB's numbering).

    Returns
    -------
    VnnlibProperty

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    VnnlibError
        For a syntax error (with its line), an undeclared variable, variables that the
        network does not have or that the property does not declare, an input without a
        lower or upper bound, a constraint that couples inputs or mixes inputs and outputs,
        an equality over outputs, or any equality (``==``) in a VNN-LIB 2.0 file (the
        ``vnnlib`` package's conversion reads ``(== a b)`` as ``(<= a b)``).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "prop.vnnlib")
    >>> _ = open(path, "w").write('''
    ... (declare-const X_0 Real)
    ... (declare-const Y_0 Real)
    ... (declare-const Y_1 Real)
    ... (assert (>= X_0 -1.0))
    ... (assert (<= X_0 1.0))
    ... (assert (or (and (>= Y_1 Y_0)) (and (<= (+ Y_0 (* 2 Y_1)) -3))))
    ... ''')
    >>> prop = load_vnnlib(path, n_inputs=1, n_outputs=2)
    >>> prop
    VnnlibProperty(1 inputs, 2 outputs, 1 input boxes, 2 disjuncts)
    >>> [(p.A.tolist(), p.b.tolist()) for p in prop.cases[0].outputs]
    [([[1.0, -1.0]], [0.0]), ([[1.0, 2.0]], [-3.0])]
    """
    for name, value in (("n_inputs", n_inputs), ("n_outputs", n_outputs)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    source = os.fspath(path)
    text = _read_text(path)
    if re.search(r"\(\s*vnnlib-version", text):
        cases = _cases_from_v2(text, source, int(n_inputs), int(n_outputs))
        version = "2.0"
    else:
        cases = _Parser(text, source, int(n_inputs), int(n_outputs)).cases()
        version = "1.0"
    return VnnlibProperty(int(n_inputs), int(n_outputs), tuple(cases), source, version)


# --------------------------------------------------------------------------- VNN-LIB 1.0

_TOKEN = re.compile(r";[^\n]*|\n|\(|\)|[^\s();]+")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_VARIABLE = re.compile(r"([XY])_(\d+)$")
_IGNORED = {"set-logic", "set-info", "set-option", "check-sat", "get-model", "exit"}


@dataclass
class _Sym:
    text: str
    line: int


#: A linear expression: coefficients by variable (("X", i) or ("Y", j)) and a constant.
_Linear = tuple[dict, float]
#: An atom ``expr <= 0`` (or ``== 0``): coefficients, constant, equality, line.
_Atom = tuple[dict, float, bool, int]


class _Parser:
    def __init__(self, text: str, source: str, n_inputs: int, n_outputs: int) -> None:
        self.text, self.source = text, source
        self.sizes = {"X": n_inputs, "Y": n_outputs}
        self.declared: dict[tuple[str, int], int] = {}

    def error(self, message: str, line: int | None) -> VnnlibError:
        where = f"{self.source}, line {line}" if line is not None else self.source
        return VnnlibError(f"{where}: {message}", line)

    # ---------------------------------------------------------------- S-expressions
    def forms(self) -> list[list]:
        """Nested lists of symbols; each list starts with its '(' (which carries the line)."""
        stack: list[list] = [[]]
        opened: list[int] = []
        line = 1
        for token in _TOKEN.findall(self.text):
            if token == "\n":
                line += 1
            elif token.startswith(";"):
                continue
            elif token == "(":
                new: list = [_Sym("(", line)]
                stack[-1].append(new)
                stack.append(new)
                opened.append(line)
            elif token == ")":
                if len(stack) == 1:
                    raise self.error("syntax error: unmatched ')'", line)
                stack.pop()
                opened.pop()
            elif len(stack) == 1:
                raise self.error(f"syntax error: {token!r} outside parentheses", line)
            else:
                stack[-1].append(_Sym(token, line))
        if len(stack) > 1:
            raise self.error("syntax error: this '(' is never closed", opened[-1])
        return stack[0]

    # ---------------------------------------------------------------- commands
    def cases(self) -> list:
        assertions = []
        for form in self.forms():
            line = form[0].line
            body = form[1:]
            if not body or not isinstance(body[0], _Sym):
                raise self.error("syntax error: expected a command name after '('", line)
            command = body[0].text
            if command == "declare-const":
                self.declare(body, line)
            elif command == "declare-fun":  # (declare-fun X_0 () Real), SMT-LIB's long form
                if len(body) != 4 or not isinstance(body[2], list) or len(body[2]) != 1:
                    raise self.error("syntax error: expected (declare-fun NAME () Real)", line)
                self.declare([body[0], body[1], body[3]], line)
            elif command == "assert":
                if len(body) != 2:
                    raise self.error("syntax error: assert takes one formula", line)
                assertions.append(self.formula(body[1]))
            elif command in _IGNORED:
                continue
            else:
                raise self.error(f"syntax error: unknown command {command!r}", line)
        self.check_declarations()
        return self.group(self.conjoin(assertions, None))

    def declare(self, body: list, line: int) -> None:
        if len(body) != 3 or not all(isinstance(b, _Sym) for b in body):
            raise self.error("syntax error: expected (declare-const NAME Real)", line)
        name, kind = body[1].text, body[2].text
        match = _VARIABLE.match(name)
        if not match:
            raise self.error(f"variables must be named X_i or Y_j, got {name!r}", line)
        if kind != "Real":
            raise self.error(f"{name} must be declared Real, got {kind!r}", line)
        key = (match.group(1), int(match.group(2)))
        if key in self.declared:
            raise self.error(f"{name} is declared twice", line)
        size = self.sizes[key[0]]
        if key[1] >= size:
            kind_name = "inputs" if key[0] == "X" else "outputs"
            raise self.error(
                f"{name} is declared, but the network has {size} {kind_name} "
                f"({key[0]}_0 to {key[0]}_{size - 1})",
                line,
            )
        self.declared[key] = line

    def check_declarations(self) -> None:
        for letter, kind in (("X", "inputs"), ("Y", "outputs")):
            count = sum(1 for k in self.declared if k[0] == letter)
            if count != self.sizes[letter]:
                missing = [
                    f"{letter}_{i}"
                    for i in range(self.sizes[letter])
                    if (letter, i) not in self.declared
                ]
                raise self.error(
                    f"the property declares {count} {kind}, the network has "
                    f"{self.sizes[letter]} (missing: {', '.join(missing[:5])}"
                    f"{'...' if len(missing) > 5 else ''})",
                    None,
                )

    def conjoin(self, dnfs: list[list[list[_Atom]]], line: int | None) -> list[list[_Atom]]:
        """The DNF of a conjunction of DNFs (distributing ``and`` over ``or``)."""
        terms: list[list[_Atom]] = [[]]
        for dnf in dnfs:
            if len(dnf) == 1:  # a plain conjunction (input bounds): extend in place
                for term in terms:
                    term.extend(dnf[0])
                continue
            if len(terms) * len(dnf) > MAX_DISJUNCTS:
                raise self.error(
                    f"the property expands to more than {MAX_DISJUNCTS} disjuncts", line
                )
            terms = [a + b for a, b in itertools.product(terms, dnf)]
        return terms

    # ---------------------------------------------------------------- formulas
    def formula(self, expr: Any) -> list[list[_Atom]]:
        """Disjunctive normal form: a list of conjunctions of atoms."""
        if isinstance(expr, _Sym):
            raise self.error(f"syntax error: expected a formula, got {expr.text!r}", expr.line)
        line = expr[0].line
        if len(expr) < 2 or not isinstance(expr[1], _Sym):
            raise self.error("syntax error: expected an operator after '('", line)
        op, args = expr[1].text, expr[2:]
        if op in ("and", "or") and not args:
            raise self.error(f"syntax error: ({op}) without arguments", line)
        if op == "and":
            return self.conjoin([self.formula(arg) for arg in args], line)
        if op == "or":
            return [term for arg in args for term in self.formula(arg)]
        if op in ("<=", ">=", "<", ">", "="):
            if len(args) < 2:
                raise self.error(f"syntax error: ({op} ...) needs two terms", line)
            terms_ = [self.term(a) for a in args]
            atoms = []
            for left, right in zip(terms_[:-1], terms_[1:], strict=True):
                small, large = (left, right) if op in ("<=", "<", "=") else (right, left)
                coefs = dict(small[0])
                for var, c in large[0].items():
                    coefs[var] = coefs.get(var, 0.0) - c
                atoms.append((coefs, small[1] - large[1], op == "=", line))
            return [atoms]
        raise self.error(f"syntax error: unknown operator {op!r} in a formula", line)

    def term(self, expr: Any) -> _Linear:
        if isinstance(expr, _Sym):
            text = expr.text
            if _NUMBER.match(text):
                return {}, float(text)
            match = _VARIABLE.match(text)
            if match:
                key = (match.group(1), int(match.group(2)))
                if key not in self.declared:
                    raise self.error(f"{text} is not declared", expr.line)
                return {key: 1.0}, 0.0
            raise self.error(f"syntax error: unknown symbol {text!r}", expr.line)
        line = expr[0].line
        if len(expr) < 3 or not isinstance(expr[1], _Sym):
            raise self.error("syntax error: expected an arithmetic term", line)
        op, args = expr[1].text, [self.term(a) for a in expr[2:]]
        if op == "+":
            return _combine(args, [1.0] * len(args))
        if op == "-":
            if len(args) == 1:
                return _combine(args, [-1.0])
            return _combine(args, [1.0] + [-1.0] * (len(args) - 1))
        if op == "*":
            variable = [a for a in args if a[0]]
            if len(variable) > 1:
                raise self.error("a product of variables is not linear", line)
            factor = float(np.prod([a[1] for a in args if not a[0]]))
            if not variable:
                return {}, factor
            coefs, const = variable[0]
            return {k: v * factor for k, v in coefs.items()}, const * factor
        raise self.error(f"syntax error: unknown operator {op!r} in a term", line)

    # ---------------------------------------------------------------- cases
    def group(self, terms: list[list[_Atom]]) -> list:
        n_in, n_out = self.sizes["X"], self.sizes["Y"]
        boxes: dict[bytes, tuple[np.ndarray, np.ndarray, list]] = {}
        for term in terms:
            lower, upper = np.full(n_in, -np.inf), np.full(n_in, np.inf)
            rows, rhs = [], []
            feasible = True
            for coefs, const, equality, line in term:
                coefs = {k: v for k, v in coefs.items() if v != 0.0}
                kinds = {k[0] for k in coefs}
                if not coefs:
                    feasible &= const == 0.0 if equality else const <= 0.0
                elif kinds == {"X"}:
                    if len(coefs) > 1:
                        names = ", ".join(f"X_{k[1]}" for k in sorted(coefs))
                        raise self.error(
                            f"a constraint on several inputs ({names}) is not supported: "
                            "the inputs of each disjunct must form a box",
                            line,
                        )
                    ((_, i), c) = next(iter(coefs.items()))
                    bound = -const / c
                    if equality or c > 0:
                        upper[i] = min(upper[i], bound)
                    if equality or c < 0:
                        lower[i] = max(lower[i], bound)
                elif kinds == {"Y"}:
                    if equality:
                        raise self.error("equality constraints on outputs are not supported", line)
                    row = np.zeros(n_out)
                    for (_, j), c in coefs.items():
                        row[j] = c
                    rows.append(row)
                    rhs.append(0.0 - const)
                else:
                    raise self.error(
                        "a constraint mixing inputs and outputs is not supported", line
                    )
            if not feasible or np.any(lower > upper):
                continue  # this disjunct cannot hold
            unbounded = np.flatnonzero(~np.isfinite(lower) | ~np.isfinite(upper))
            if unbounded.size:
                i = int(unbounded[0])
                side = "lower" if not np.isfinite(lower[i]) else "upper"
                raise self.error(f"input X_{i} has no {side} bound", None)
            polytope = OutputPolytope(
                np.array(rows, dtype=np.float64).reshape(len(rows), n_out),
                np.array(rhs, dtype=np.float64),
            )
            key = lower.tobytes() + upper.tobytes()
            boxes.setdefault(key, (lower, upper, []))[2].append(polytope)
        return [PropertyCase(lo, hi, tuple(polys)) for lo, hi, polys in boxes.values()]


def _combine(args: list[_Linear], signs: list[float]) -> _Linear:
    coefs: dict = {}
    const = 0.0
    for (c, k), s in zip(args, signs, strict=True):
        for var, v in c.items():
            coefs[var] = coefs.get(var, 0.0) + s * v
        const += s * k
    return coefs, const


# --------------------------------------------------------------------------- VNN-LIB 2.0


def _refuse_v2_equalities(text: str, source: str) -> None:
    """Refuse ``(== a b)``: vnnlib 1.0.2's ``compat.transform`` reads it as ``(<= a b)`` (an
    input box too wide, an output condition too weak: wrong counterexamples)."""
    line = 1
    previous = ""
    for token in _TOKEN.findall(text):
        if token == "\n":
            line += 1
        elif not token.startswith(";"):
            if previous == "(" and token == "==":
                raise VnnlibError(
                    f"{source}, line {line}: equality (==) is not supported in VNN-LIB 2.0 files "
                    "(the vnnlib package reads it as <=); write (and (<= a b) (>= a b))",
                    line,
                )
            previous = token


def _cases_from_v2(text: str, source: str, n_inputs: int, n_outputs: int) -> list:
    try:
        import vnnlib
        import vnnlib.compat
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise VnnlibError(
            f"{source} is a VNN-LIB 2.0 file, which needs the vnnlib package: "
            "pip install 'gurobi-sparse-surrogate[onnx]'"
        ) from error
    _refuse_v2_equalities(text, source)
    try:
        query = vnnlib.parse_query_string(text)
        spec_cases = vnnlib.compat.transform(query)
    except vnnlib.VNNLibException as error:
        match = re.search(r"line (\d+)", str(error))
        raise VnnlibError(f"{source}: {error}", int(match.group(1)) if match else None) from error
    cases = []
    for case in spec_cases:
        box = np.array(case.input_box, dtype=np.float64).reshape(-1, 2)
        if box.shape[0] != n_inputs:
            raise VnnlibError(
                f"{source}: the property has {box.shape[0]} inputs, the network has {n_inputs}"
            )
        if not np.isfinite(box).all():
            i = int(np.flatnonzero(~np.isfinite(box).all(axis=1))[0])
            raise VnnlibError(f"{source}: input {i} has no finite bounds")
        polytopes = []
        for polytope in case.output_constraints:
            A = np.array(polytope.coeff_matrix, dtype=np.float64)
            b = np.array(polytope.rhs, dtype=np.float64).reshape(-1)
            A = A.reshape(len(b), -1) if A.size else np.zeros((len(b), n_outputs))
            if A.shape[1] != n_outputs:
                raise VnnlibError(
                    f"{source}: the property has {A.shape[1]} outputs, the network has {n_outputs}"
                )
            polytopes.append(OutputPolytope(A, b))
        if not polytopes:
            polytopes.append(OutputPolytope(np.zeros((0, n_outputs)), np.zeros(0)))
        if np.all(box[:, 0] <= box[:, 1]):
            cases.append(PropertyCase(box[:, 0].copy(), box[:, 1].copy(), tuple(polytopes)))
    return cases
