"""load_vnnlib: files written here parse to the property they state, bad files name the line."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from gurobi_sparse_surrogate import load_vnnlib
from gurobi_sparse_surrogate.exceptions import VnnlibError


def declarations(n_in, n_out):
    xs = "\n".join(f"(declare-const X_{i} Real)" for i in range(n_in))
    ys = "\n".join(f"(declare-const Y_{j} Real)" for j in range(n_out))
    return xs + "\n" + ys + "\n"


def write(tmp_path, text, name="prop.vnnlib"):
    path = tmp_path / name
    path.write_text(text)
    return path


PROPERTY = (
    "; a property with comments, several lines and every kind of term\n"
    + declarations(2, 3)
    + """
(assert (>= X_0 -1.0))   ; lower bound
(assert (<= X_0 1e0))
(assert (or
    (and (>= X_1 0) (<= X_1 0.5)
         (<= Y_0 Y_1) (<= (+ Y_0 (* -2.5 Y_2)) (- 3)))
    (and (>= X_1 0) (<= X_1 0.5) (>= (- Y_2 Y_1 0.25) (* 0.5 (+ Y_0 1))))
    (and (>= X_1 0.5) (<= X_1 1) (> Y_1 .5))
))
"""
)


def truth(x, y):
    """The property above, written directly: is (x, y) a counterexample?"""
    if not -1.0 <= x[0] <= 1.0:
        return False
    first_box = 0.0 <= x[1] <= 0.5
    second_box = 0.5 <= x[1] <= 1.0
    a = first_box and y[0] <= y[1] and y[0] - 2.5 * y[2] <= -3
    b = first_box and y[2] - y[1] - 0.25 >= 0.5 * (y[0] + 1)
    c = second_box and y[1] >= 0.5
    return a or b or c


def test_property_matches_its_meaning(tmp_path):
    prop = load_vnnlib(write(tmp_path, PROPERTY), 2, 3)
    assert prop.version == "1.0"
    assert len(prop.cases) == 2 and prop.n_disjuncts == 3
    first = prop.cases[0]
    assert first.lower.tolist() == [-1.0, 0.0] and first.upper.tolist() == [1.0, 0.5]
    assert [p.A.shape for p in first.outputs] == [(2, 3), (1, 3)]
    rng = np.random.default_rng(0)
    agree = 0
    for _ in range(3000):
        x = rng.uniform(-1.2, 1.2, size=2)
        y = rng.uniform(-3, 3, size=3)
        # away from the boundaries, where < and <= differ
        violation = prop.violation(x, y)
        if abs(violation) < 1e-9:
            continue
        assert (violation < 0) == truth(x, y), (x, y)
        agree += truth(x, y)
    assert agree > 100  # the sample reaches counterexamples of the property


def test_gzip_and_crlf(tmp_path):
    path = tmp_path / "prop.vnnlib.gz"
    path.write_bytes(gzip.compress(PROPERTY.replace("\n", "\r\n").encode()))
    prop = load_vnnlib(path, 2, 3)
    assert prop.n_disjuncts == 3


def test_conjunction_of_asserts_and_plain_output_constraints(tmp_path):
    text = declarations(1, 2) + (
        "(assert (<= X_0 2))\n(assert (>= X_0 2))\n(assert (<= Y_0 Y_1))\n(assert (>= Y_0 -1))"
    )
    prop = load_vnnlib(write(tmp_path, text), 1, 2)
    (case,) = prop.cases
    assert case.lower.tolist() == case.upper.tolist() == [2.0]
    (polytope,) = case.outputs
    np.testing.assert_array_equal(polytope.A, [[1.0, -1.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(polytope.b, [0.0, 1.0])


def test_declare_fun_declarations(tmp_path):
    text = "(declare-fun X_0 () Real)\n(declare-fun Y_0 () Real)\n(assert (= X_0 1))\n(assert (<= Y_0 0))"
    prop = load_vnnlib(write(tmp_path, text), 1, 1)
    assert prop.cases[0].lower.tolist() == [1.0] and prop.n_disjuncts == 1
    with pytest.raises(VnnlibError, match="line 1"):
        load_vnnlib(write(tmp_path, "(declare-fun X_0 Real)\n"), 1, 1)


def test_no_output_constraint_means_every_output(tmp_path):
    prop = load_vnnlib(write(tmp_path, declarations(1, 1) + "(assert (= X_0 0.5))"), 1, 1)
    (polytope,) = prop.cases[0].outputs
    assert polytope.violation(np.array([123.0])) == -np.inf


def test_empty_disjuncts_are_dropped(tmp_path):
    text = declarations(1, 1) + (
        "(assert (or (and (>= X_0 1) (<= X_0 0) (<= Y_0 0)) (and (>= X_0 0) (<= X_0 1) (<= Y_0 0))))"
    )
    prop = load_vnnlib(write(tmp_path, text), 1, 1)
    assert prop.n_disjuncts == 1


@pytest.mark.parametrize(
    "body, message, line",
    [
        ("(assert (<= X_0 1)\n(assert (>= X_0 0))\n", "never closed", 3),
        ("(assert (<= X_0 1)))\n", "unmatched", 3),
        ("(assert (<== X_0 1))\n", "unknown operator '<=='", 3),
        ("(assert (<= X_0 one))\n", "unknown symbol 'one'", 3),
        ("(assert (<= X_7 1))\n", "X_7 is not declared", 3),
        ("(declare-const X_1 Real)\n", "X_1 is declared, but the network has 1 inputs", 3),
        ("(declare-const Z_0 Real)\n", "named X_i or Y_j", 3),
        ("(declare-const X_0 Real)\n", "declared twice", 3),
        ("(assert (<= (* X_0 Y_0) 1))\n", "not linear", 3),
        ("(frobnicate)\n", "unknown command", 3),
        ("(assert (>= X_0 0))\n(assert (<= (+ X_0 Y_0) 1))\n", "mixing inputs and outputs", 4),
        ("(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (= Y_0 1))\n", "equality", 5),
        ("X_0\n", "'X_0' outside parentheses", 3),
        ("()\n", "expected a command name", 3),
        ("((assert (<= X_0 1)))\n", "expected a command name", 3),
        ("(assert (>= X_0 0) (<= X_0 1))\n", "assert takes one formula", 3),
        ("(declare-const Y_0)\n", r"expected \(declare-const NAME Real\)", 3),
        ("(declare-const Y_1 Int)\n", "Y_1 must be declared Real, got 'Int'", 3),
        ("(assert X_0)\n", "expected a formula, got 'X_0'", 3),
        ("(assert ((<= X_0 1)))\n", "expected an operator after", 3),
        ("(assert (>= X_0 0))\n(assert (or))\n", r"\(or\) without arguments", 4),
        ("(assert (and))\n", r"\(and\) without arguments", 3),
        ("(assert (<= X_0))\n", r"\(<= ...\) needs two terms", 3),
        ("(assert (<= (+) 1))\n", "expected an arithmetic term", 3),
        ("(assert (<= (/ Y_0 2) 1))\n", "unknown operator '/' in a term", 3),
    ],
)
def test_errors_name_the_line(tmp_path, body, message, line):
    path = write(tmp_path, declarations(1, 1) + body)
    with pytest.raises(VnnlibError, match=message) as info:
        load_vnnlib(path, 1, 1)
    assert info.value.line == line
    assert f"line {line}" in str(info.value)


def test_solver_commands_are_ignored(tmp_path):
    body = "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (<= (- Y_0 Y_1) 2))\n"
    plain = load_vnnlib(write(tmp_path, declarations(1, 2) + body), 1, 2)
    smt = (
        "(set-logic QF_LRA)\n(set-info :status unknown)\n(set-option :produce-models true)\n"
        + declarations(1, 2)
        + body
        + "(check-sat)\n(get-model)\n(exit)\n"
    )
    prop = load_vnnlib(write(tmp_path, smt, "smt.vnnlib"), 1, 2)
    (case,), (plain_case,) = prop.cases, plain.cases
    assert case.lower.tolist() == plain_case.lower.tolist() == [-1.0]
    assert case.upper.tolist() == plain_case.upper.tolist() == [1.0]
    ((polytope,), (plain_polytope,)) = case.outputs, plain_case.outputs
    assert polytope.A.tolist() == plain_polytope.A.tolist() == [[1.0, -1.0]]
    assert polytope.b.tolist() == plain_polytope.b.tolist() == [2.0]


def test_constant_terms_and_constant_atoms(tmp_path):
    """Products of numbers fold into constants; a constant atom keeps or drops its disjunct."""
    text = declarations(1, 1) + (
        "(assert (or\n"
        "  (and (<= 1 0) (>= X_0 0) (<= X_0 1) (<= Y_0 0))\n"  # false: dropped
        "  (and (= 1 2) (>= X_0 0) (<= X_0 1) (<= Y_0 0))\n"  # false: dropped
        "  (and (<= 0 1) (= 2 2) (>= X_0 2) (<= X_0 3) (<= Y_0 (* 2 3)))\n"  # true: kept
        "))\n"
    )
    prop = load_vnnlib(write(tmp_path, text), 1, 1)
    (case,) = prop.cases
    assert case.lower.tolist() == [2.0] and case.upper.tolist() == [3.0]
    (polytope,) = case.outputs
    assert polytope.A.tolist() == [[1.0]] and polytope.b.tolist() == [6.0]
    assert prop.violation([2.5], [5.9]) < 0 < prop.violation([2.5], [6.1])
    assert prop.violation([0.5], [-10.0]) == np.inf  # in the dropped boxes only


def test_a_property_that_expands_past_the_limit_is_refused(tmp_path):
    """Two disjunctions of 1001 terms conjoined: 1001**2 > MAX_DISJUNCTS, refused, not built."""
    from gurobi_sparse_surrogate.applications.vnnlib import MAX_DISJUNCTS

    assert 1001 <= MAX_DISJUNCTS < 1001 * 1001
    many = " ".join(f"(<= Y_0 {k})" for k in range(1001))
    text = declarations(1, 1) + (
        f"(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (and\n(or {many})\n(or {many})))\n"
    )
    with pytest.raises(VnnlibError, match=f"more than {MAX_DISJUNCTS} disjuncts") as info:
        load_vnnlib(write(tmp_path, text), 1, 1)
    assert info.value.line == 5


def test_files_that_are_not_gzip_or_text(tmp_path):
    broken = tmp_path / "broken.vnnlib.gz"
    broken.write_bytes(b"\x1f\x8b" + b"not really gzip data")
    with pytest.raises(VnnlibError, match="broken.vnnlib.gz is not a valid gzip file"):
        load_vnnlib(broken, 1, 1)
    truncated = tmp_path / "truncated.vnnlib.gz"
    truncated.write_bytes(gzip.compress(declarations(1, 1).encode())[:-12])
    with pytest.raises(VnnlibError, match="truncated.vnnlib.gz is not a valid gzip file"):
        load_vnnlib(truncated, 1, 1)
    binary = tmp_path / "binary.vnnlib"
    binary.write_bytes(b"(declare-const X_0 Real)\n\xff\xfe\x00")
    with pytest.raises(VnnlibError, match="binary.vnnlib is not a text file"):
        load_vnnlib(binary, 1, 1)


def test_structural_errors(tmp_path):
    with pytest.raises(VnnlibError, match="declares 1 outputs, the network has 2"):
        load_vnnlib(write(tmp_path, declarations(1, 1) + "(assert (<= X_0 1))"), 1, 2)
    with pytest.raises(VnnlibError, match="X_0 has no lower bound"):
        load_vnnlib(write(tmp_path, declarations(1, 1) + "(assert (<= X_0 1))"), 1, 1)
    text = declarations(2, 1) + "(assert (<= (+ X_0 X_1) 1))"
    with pytest.raises(VnnlibError, match=r"several inputs \(X_0, X_1\)"):
        load_vnnlib(write(tmp_path, text), 2, 1)
    with pytest.raises(FileNotFoundError):
        load_vnnlib(tmp_path / "missing.vnnlib", 1, 1)
    with pytest.raises(ValueError, match="n_inputs"):
        load_vnnlib(write(tmp_path, declarations(1, 1)), 0, 1)


V2 = """(vnnlib-version <2.0>)
(declare-network net
    (declare-input X float32 [2])
    (declare-output Y float32 [3])
)
(assert (>= X[0] -1.0))
(assert (<= X[0] 1.0))
(assert (or
    (and (>= X[1] 0.0) (<= X[1] 0.5) (<= Y[0] Y[1]) (<= (+ Y[0] (* -2.5 Y[2])) -3.0))
    (and (>= X[1] 0.0) (<= X[1] 0.5) (>= (- Y[2] Y[1]) (+ (* 0.5 Y[0]) 0.75)))
    (and (>= X[1] 0.5) (<= X[1] 1.0) (>= Y[1] 0.5))
))
"""


def test_vnnlib_2_matches_the_same_property_in_1_0(tmp_path):
    pytest.importorskip("vnnlib")
    v2 = load_vnnlib(write(tmp_path, V2, "v2.vnnlib"), 2, 3)
    v1 = load_vnnlib(write(tmp_path, PROPERTY), 2, 3)
    assert v2.version == "2.0" and v2.n_disjuncts == v1.n_disjuncts
    rng = np.random.default_rng(1)
    for _ in range(2000):
        x, y = rng.uniform(-1.2, 1.2, size=2), rng.uniform(-3, 3, size=3)
        a, b = v1.violation(x, y), v2.violation(x, y)
        if min(abs(a), abs(b)) > 1e-9:
            assert (a < 0) == (b < 0)
    with pytest.raises(VnnlibError, match="the network has 4"):
        load_vnnlib(write(tmp_path, V2, "v2.vnnlib"), 4, 3)
    with pytest.raises(VnnlibError, match="line"):
        load_vnnlib(
            write(tmp_path, V2.replace("(assert (<= X[0] 1.0))", "(assert (<= X[0]"), "bad.vnnlib"),
            2,
            3,
        )


V2_HEADER = """(vnnlib-version <2.0>)
(declare-network net
    (declare-input X float32 [2])
    (declare-output Y float32 [3])
)
(assert (>= X[0] -1.0))
(assert (<= X[0] 1.0))
"""


def test_vnnlib_2_refusals(tmp_path):
    pytest.importorskip("vnnlib")
    half_open = V2_HEADER + "(assert (>= X[1] 0.0))\n(assert (<= Y[0] 0.0))\n"
    with pytest.raises(VnnlibError, match="input 1 has no finite bounds"):
        load_vnnlib(write(tmp_path, half_open, "half.vnnlib"), 2, 3)
    boxed = V2_HEADER + "(assert (>= X[1] 0.0))\n(assert (<= X[1] 1.0))\n(assert (<= Y[0] 0.0))\n"
    assert load_vnnlib(write(tmp_path, boxed, "boxed.vnnlib"), 2, 3).n_disjuncts == 1
    with pytest.raises(VnnlibError, match="the property has 3 outputs, the network has 4"):
        load_vnnlib(write(tmp_path, boxed, "boxed.vnnlib"), 2, 4)


@pytest.mark.parametrize(
    "condition, line",
    [
        ("(assert (or (== Y[0] 1.0) (<= Y[1] 0.0)))", 10),
        ("; (== in a comment is fine)\n(assert (==   X[1] 0.5))", 11),
    ],
)
def test_vnnlib_2_equalities_are_refused_not_weakened(tmp_path, condition, line):
    """vnnlib 1.0.2 reads (== a b) as (<= a b): a wider input box or a weaker output
    condition, so a counterexample of the file read that way need not be one of the property."""
    pytest.importorskip("vnnlib")
    text = V2_HEADER + "(assert (>= X[1] 0.0))\n(assert (<= X[1] 1.0))\n" + condition + "\n"
    with pytest.raises(VnnlibError, match=r"equality \(==\) is not supported") as info:
        load_vnnlib(write(tmp_path, text, "eq.vnnlib"), 2, 3)
    assert info.value.line == line and f"line {line}" in str(info.value)
    # written as two inequalities, both sides are kept
    both = text.replace("(== Y[0] 1.0)", "(and (<= Y[0] 1.0) (>= Y[0] 1.0))").replace(
        "(==   X[1] 0.5)", "(and (<= X[1] 0.5) (>= X[1] 0.5))"
    )
    prop = load_vnnlib(write(tmp_path, both, "both.vnnlib"), 2, 3)
    if "Y[0]" in condition:
        y_on, y_off = [1.0, 5.0, 0.0], [0.5, 5.0, 0.0]  # Y_1 > 0: only the equality can hold
        assert prop.violation([0.0, 0.5], y_on) <= 0 < prop.violation([0.0, 0.5], y_off)
    else:
        assert [c.lower[1] for c in prop.cases] == [c.upper[1] for c in prop.cases] == [0.5]


def test_vnnlib_2_cases_the_package_returns_are_read_as_documented(tmp_path, monkeypatch):
    """Whatever the vnnlib package's conversion returns: an empty input box is dropped, and
    a case without output constraints means that every output is a counterexample."""
    compat = pytest.importorskip("vnnlib.compat")
    from types import SimpleNamespace

    fake = [
        SimpleNamespace(input_box=[(-1.0, 1.0), (1.0, 0.0)], output_constraints=[]),
        SimpleNamespace(input_box=[(-1.0, 1.0), (0.0, 1.0)], output_constraints=[]),
    ]
    monkeypatch.setattr(compat, "transform", lambda query: fake)
    prop = load_vnnlib(write(tmp_path, V2_HEADER, "v2.vnnlib"), 2, 3)
    (case,) = prop.cases
    assert case.lower.tolist() == [-1.0, 0.0] and case.upper.tolist() == [1.0, 1.0]
    (polytope,) = case.outputs
    assert polytope.A.shape == (0, 3)
    assert prop.violation([0.0, 0.5], [1e9, -1e9, 0.0]) == -np.inf
    assert prop.violation([0.0, 1.5], [0.0, 0.0, 0.0]) == np.inf
