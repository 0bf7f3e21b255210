"""verify: verdicts known by construction, counterexamples re-checked with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import constant_margin_net, forward64, needs_size_limited_licence, random_network
from torch import nn

from gurobi_sparse_surrogate import (
    InvalidOptionError,
    ShapeMismatchError,
    VerificationResult,
    load_vnnlib,
    verify,
)


def declarations(n_in, n_out):
    return "".join(f"(declare-const X_{i} Real)\n" for i in range(n_in)) + "".join(
        f"(declare-const Y_{j} Real)\n" for j in range(n_out)
    )


def box_text(lower, upper):
    return "".join(
        f"(assert (>= X_{i} {float(lo)!r}))\n(assert (<= X_{i} {float(hi)!r}))\n"
        for i, (lo, hi) in enumerate(zip(lower, upper, strict=True))
    )


def not_class(label, n_out):
    """A counterexample: some other output is at least Y_label."""
    terms = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(n_out) if j != label)
    return f"(assert (or {terms}))\n"


def prop(tmp_path, text, n_in, n_out, name="p.vnnlib"):
    path = tmp_path / name
    path.write_text(declarations(n_in, n_out) + text)
    return load_vnnlib(path, n_in, n_out)


def check_sat(result: VerificationResult, net, spec):
    """Independent re-check: the input is in the box and torch's outputs meet the polytope."""
    assert result.status == "sat", result.summary()
    case = spec.cases[result.case]
    assert np.all(result.x >= case.lower) and np.all(result.x <= case.upper)
    y = forward64(net, result.x)[0]
    np.testing.assert_allclose(result.y, y, rtol=1e-12, atol=1e-12)
    polytope = case.outputs[result.polytope]
    assert np.all(polytope.A @ y - polytope.b < 0)
    assert spec.violation(result.x, y) < 0


def lipschitz(net):
    """An upper bound of the network's L-infinity -> L-infinity Lipschitz constant."""
    bound = 1.0
    for m in net:
        if isinstance(m, nn.Linear):
            bound *= float(m.weight.detach().abs().sum(dim=1).max())
    return bound


@pytest.fixture(scope="module")
def net():
    return random_network(3, 4, (8, 8), 3)


def test_a_box_where_the_class_provably_wins_is_unsat(net, tmp_path):
    x0 = np.full(4, 0.3)
    logits = forward64(net, x0)[0]
    label = int(logits.argmax())
    margin = logits[label] - np.sort(logits)[-2]
    # within this radius no output can move by more than margin / 2 (Lipschitz bound)
    radius = 0.25 * margin / lipschitz(net)
    text = box_text(x0 - radius, x0 + radius) + not_class(label, 3)
    spec = prop(tmp_path, text, 4, 3)
    by_bounds = verify(net, spec, time_limit=20)
    assert by_bounds.status == "unsat", by_bounds.summary()
    assert all(d["decided_by"] == "linear bounds" for d in by_bounds.disjuncts)
    by_milp = verify(net, spec, time_limit=20, proof_bounds=None, attack=False)
    assert by_milp.status == "unsat", by_milp.summary()
    assert {d["decided_by"] for d in by_milp.disjuncts} == {"MILP"}
    assert "unsat" in by_milp.summary() and by_milp.to_vnncomp() == "unsat\n"


def test_hand_made_network_with_a_constant_margin_is_unsat_on_a_large_box(tmp_path):
    """y0 = relu(x0) + relu(-x0) + relu(x1) + 1 and y1 = y0 - 1: Y_1 >= Y_0 never holds."""
    first = nn.Linear(2, 3)
    second = nn.Linear(3, 2)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]))
        first.bias.zero_()
        second.weight.copy_(torch.ones(2, 3))
        second.bias.copy_(torch.tensor([1.0, 0.0]))
    net = nn.Sequential(first, nn.ReLU(), second)
    spec = prop(tmp_path, box_text([-5.0, -5.0], [5.0, 5.0]) + "(assert (>= Y_1 Y_0))", 2, 2)
    for options in ({}, {"proof_bounds": None, "attack": False}):
        result = verify(net, spec, time_limit=20, **options)
        assert result.status == "unsat", result.summary()


def counterexample_off_centre(net, lower, upper, label, seed=0):
    """A point of the box that torch does not classify as ``label`` (brute force)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(lower, upper, size=(20000, len(lower)))
    logits = forward64(net, points)
    others = np.delete(logits, label, axis=1).max(axis=1)
    return bool(np.any(others - logits[:, label] > 1e-3))


@pytest.mark.parametrize("attack", [True, False])
def test_a_box_around_a_point_the_network_misclassifies_is_sat(net, tmp_path, attack):
    x0 = np.full(4, 0.3)
    label = int(forward64(net, x0)[0].argmax())
    lower, upper = x0 - 1.5, x0 + 1.5
    assert counterexample_off_centre(net, lower, upper, label)  # the truth, by sampling
    spec = prop(tmp_path, box_text(lower, upper) + not_class(label, 3), 4, 3)
    result = verify(net, spec, time_limit=30, attack=attack)
    check_sat(result, net, spec)
    assert result.found_by == ("attack" if attack else "dense")
    lines = result.to_vnncomp().splitlines()
    assert lines[0] == "sat" and len(lines) == 1 + 4 + 3
    assert (
        lines[1].startswith("((X_0 ") and lines[-1].startswith("(Y_2 ") and lines[-1][-2:] == "))"
    )
    values = [float(line.strip("()").split()[1]) for line in lines[1:]]
    np.testing.assert_array_equal(values, [*result.x, *result.y])


def test_linear_terms_and_a_disjunction_decided_by_its_second_term(net, tmp_path):
    x0 = np.full(4, 0.3)
    lower, upper = x0 - 1.0, x0 + 1.0
    points = np.random.default_rng(0).uniform(lower, upper, size=(20000, 4))
    y = forward64(net, points)
    s = y[:, 0] + 2.0 * y[:, 1] - 0.5 * y[:, 2]
    target = float(np.quantile(s, 0.999))  # reachable by sampling, not at the centre
    impossible = float(y[:, 0].max() + 100.0)  # no output gets there
    text = box_text(lower, upper) + (
        f"(assert (or (and (>= Y_0 {impossible!r}))"
        f" (and (>= (+ Y_0 (* 2 Y_1) (- (* 0.5 Y_2))) {target!r}))))\n"
    )
    spec = prop(tmp_path, text, 4, 3)
    for attack in (True, False):
        result = verify(net, spec, time_limit=30, attack=attack)
        check_sat(result, net, spec)
        assert result.polytope == 1
    first = next(d for d in result.disjuncts if d["polytope"] == 0)
    assert first["status"] == "unreachable"  # the bounds see that Y_0 cannot get there


def test_disjunction_of_input_boxes(net, tmp_path):
    x0 = np.full(4, 0.3)
    logits = forward64(net, x0)[0]
    label = int(logits.argmax())
    margin = logits[label] - np.sort(logits)[-2]
    radius = 0.25 * margin / lipschitz(net)
    wide = (x0 - 1.5, x0 + 1.5)

    def bounds(lower, upper):
        return " ".join(
            f"(>= X_{i} {float(lo)!r}) (<= X_{i} {float(hi)!r})"
            for i, (lo, hi) in enumerate(zip(lower, upper, strict=True))
        )

    # a counterexample: in the small box or in the wide one, another class on top
    small_box, wide_box = bounds(x0 - radius, x0 + radius), bounds(*wide)
    terms = [f"(and {small_box} (>= Y_{j} Y_{label}))" for j in range(3) if j != label]
    terms += [f"(and {wide_box} (>= Y_{j} Y_{label}))" for j in range(3) if j != label]
    spec = prop(tmp_path, f"(assert (or {' '.join(terms)}))\n", 4, 3)
    assert len(spec.cases) == 2
    assert counterexample_off_centre(net, *wide, label)
    result = verify(net, spec, time_limit=30)
    check_sat(result, net, spec)
    assert result.case == 1
    unsat_spec = prop(tmp_path, f"(assert (or {' '.join(terms[:2])}))\n", 4, 3, "u.vnnlib")
    assert verify(net, unsat_spec, time_limit=20).status == "unsat"


def test_shape_mismatch_and_bad_arguments(net, tmp_path):
    spec = prop(tmp_path, box_text([0.0] * 3, [1.0] * 3) + "(assert (>= Y_0 0))", 3, 3)
    with pytest.raises(ShapeMismatchError, match="4 inputs"):
        verify(net, spec)
    spec = prop(tmp_path, box_text([0.0] * 4, [1.0] * 4) + "(assert (>= Y_0 0))", 4, 2)
    with pytest.raises(ShapeMismatchError, match="3 outputs"):
        verify(net, spec)
    with pytest.raises(TypeError, match="VnnlibProperty"):
        verify(net, "prop.vnnlib")
    with pytest.raises(ValueError, match="time_limit"):
        verify(net, spec, time_limit=0)
    spec = prop(tmp_path, box_text([0.0] * 4, [1.0] * 4) + "(assert (>= Y_0 0))", 4, 3)
    with pytest.raises(InvalidOptionError, match="'stpes'; did you mean 'steps'"):
        verify(net, spec, attack_options={"stpes": 3})


@pytest.mark.parametrize(
    "options, match",
    [
        ({"proof_bounds": "lineer"}, "proof_bounds 'lineer'"),
        ({"bounds": "lineer"}, "bounding method 'lineer'"),
        ({"bound_options": {"lp_tim": 1}}, "lp_tim"),
        ({"relu_formulation": "bigmm"}, "relu_formulation 'bigmm'"),
    ],
)
def test_misspelled_options_raise_instead_of_an_unknown_verdict(net, tmp_path, options, match):
    """Each of these used to be swallowed into an 'unknown' (or a MILP-only) verdict."""
    spec = prop(tmp_path, box_text([0.0] * 4, [1.0] * 4) + "(assert (>= Y_0 1e6))", 4, 3)
    with pytest.raises(InvalidOptionError, match=match):
        verify(net, spec, time_limit=5, attack=False, **options)


def test_undecided_verdicts_say_why(tmp_path):
    """A network that torch runs but the embedding refuses: no proof, no MILP, unknown."""
    net = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 1))
    spec = prop(tmp_path, box_text([-1.0] * 2, [1.0] * 2) + "(assert (>= Y_0 1e6))", 2, 1)
    result = verify(net, spec, time_limit=10, attack=False)
    assert result.status == "unknown", result.summary()
    assert "Sigmoid" in result.reason and "1 of 1 disjuncts undecided" in result.reason
    assert result.to_vnncomp() == "unknown\n"


@pytest.mark.parametrize("surrogate", [0.5])
def test_surrogate_answers_are_judged_on_the_dense_network(net, tmp_path, surrogate):
    x0 = np.full(4, 0.3)
    label = int(forward64(net, x0)[0].argmax())
    spec = prop(tmp_path, box_text(x0 - 1.5, x0 + 1.5) + not_class(label, 3), 4, 3)
    result = verify(net, spec, time_limit=30, attack=False, surrogate=surrogate)
    check_sat(result, net, spec)
    logits = forward64(net, x0)[0]
    radius = 0.25 * (logits[label] - np.sort(logits)[-2]) / lipschitz(net)
    spec = prop(tmp_path, box_text(x0 - radius, x0 + radius) + not_class(label, 3), 4, 3)
    result = verify(net, spec, time_limit=30, attack=False, proof_bounds=None, surrogate=surrogate)
    assert result.status == "unsat", result.summary()  # proved by the dense fallback


def cnn(pool):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Unflatten(1, (1, 6, 6)),
        nn.Conv2d(1, 2, 3),
        nn.ReLU(),
        pool,
        nn.Flatten(),
        nn.Linear(8, 3),
    ).eval()


def cnn_lipschitz(net):
    bound = 1.0
    for m in net:
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            rows = m.weight.detach().abs().reshape(m.weight.shape[0], -1).sum(dim=1)
            bound *= float(rows.max())
    return bound  # ReLU and pooling are 1-Lipschitz in the L-infinity norm


def test_convolutional_networks(tmp_path):
    x0 = np.full(36, 0.5)
    for pool in (nn.AvgPool2d(2), nn.MaxPool2d(2)):
        net = cnn(pool)
        logits = forward64(net, x0)[0]
        label = int(logits.argmax())
        radius = 0.25 * (logits[label] - np.sort(logits)[-2]) / cnn_lipschitz(net)
        small = prop(tmp_path, box_text(x0 - radius, x0 + radius) + not_class(label, 3), 36, 3)
        wide_box = (x0 - 4.0, x0 + 4.0)
        wide = prop(tmp_path, box_text(*wide_box) + not_class(label, 3), 36, 3)
        result = verify(net, small, time_limit=20)
        assert result.status == "unsat", result.summary()
        assert counterexample_off_centre(net, *wide_box, label)
        check_sat(verify(net, wide, time_limit=20), net, wide)


# --------------------------------------------------------------------------- every stage's exits


#: Two unreachable polytopes in one box: Y_1 >= Y_0 (value y0 - y1 = 1) and Y_1 >= Y_0 + 5
#: (value 6): the second's attack value is never better than the first's.
UNREACHABLE = box_text([-2.0, -2.0], [2.0, 2.0]) + (
    "(assert (or (and (>= Y_1 Y_0)) (and (>= Y_1 (+ Y_0 5)))))\n"
)


def test_result_repr_and_bad_arguments(net, tmp_path):
    result = VerificationResult("sat", "", case=1, polytope=0, value=-0.5, found_by="attack")
    assert repr(result) == (
        "VerificationResult(status='sat', case=1, polytope=0, value=-0.5, found_by='attack', "
        "runtime=0)"
    )
    spec = prop(tmp_path, box_text([0.0] * 3, [1.0] * 3) + "(assert (>= Y_0 0))", 3, 3)
    with pytest.raises(TypeError, match="torch.nn.Module, got str"):
        verify("net.onnx", spec)
    # no module tells the input size: the first forward pass fails, named as a size mismatch
    unsized = nn.Sequential(nn.ReLU(), nn.Linear(4, 3))
    with pytest.raises(ShapeMismatchError, match="does not accept the property's 3 inputs"):
        verify(unsized, spec)
    spec = prop(tmp_path, box_text([0.0] * 4, [1.0] * 4) + "(assert (>= Y_0 0))", 4, 3)
    for options, name in (({"time_budget": 0}, "time_budget"), ({"steps": -1}, "steps")):
        with pytest.raises(InvalidOptionError, match=name):
            verify(net, spec, attack_options=options)


def test_a_property_without_a_feasible_input_box_is_unsat(net, tmp_path):
    text = "(assert (>= X_0 1))\n(assert (<= X_0 0))\n" + box_text([0.0] * 4, [1.0] * 4)[44:]
    spec = prop(tmp_path, text + "(assert (>= Y_0 0))", 4, 3)
    assert spec.cases == ()  # 1 <= X_0 <= 0: no input at all
    result = verify(net, spec, time_limit=10)
    assert result.status == "unsat" and result.reason == "no input box of the property is feasible"
    assert result.disjuncts == [] and result.to_vnncomp() == "unsat\n"


def test_a_counterexample_at_the_centre_is_found_before_any_stage(net, tmp_path):
    lower, upper = np.full(4, -0.5), np.full(4, 1.5)
    centre = (lower + upper) / 2
    above = float(forward64(net, centre)[0, 0]) + 1.0
    spec = prop(tmp_path, box_text(lower, upper) + f"(assert (<= Y_0 {above!r}))", 4, 3)
    result = verify(net, spec, time_limit=10)
    check_sat(result, net, spec)
    assert result.found_by == "centre check"
    np.testing.assert_array_equal(result.x, centre)
    assert result.value == pytest.approx(-1.0, abs=1e-9)
    assert result.proof_seconds == result.attack_seconds == 0.0  # no stage ran


def test_failed_attacks_leave_the_proof_to_the_milp(tmp_path, forward_passes):
    net = constant_margin_net()
    calls = forward_passes(rows=3)  # the attacks' batches
    spec = prop(tmp_path, UNREACHABLE, 2, 2)
    options = {"steps": 10, "restarts": 3, "time_budget": None}  # a step budget, no seconds
    result = verify(net, spec, time_limit=20, proof_bounds=None, attack_options=options)
    assert result.status == "unsat", result.summary()
    assert [d["decided_by"] for d in result.disjuncts] == ["MILP", "MILP"]
    assert result.x is None and result.found_by is None
    # both disjuncts attacked, each with its full step budget: the start batch, then 10 steps
    assert calls[0] == 2 * (10 + 1)


def test_an_exhausted_attack_budget_skips_the_remaining_attacks(tmp_path, forward_passes):
    net = constant_margin_net()
    # the first attack's first batch takes longer than the whole attack budget
    calls = forward_passes(sleep_at=1, seconds=0.3, rows=3)
    spec = prop(tmp_path, UNREACHABLE, 2, 2)
    options = {"steps": 10, "restarts": 3, "time_budget": 0.2}
    result = verify(net, spec, time_limit=20, proof_bounds=None, attack_options=options)
    assert calls[0] == 1  # the first attack stopped at its deadline, the second never started
    assert result.status == "unsat", result.summary()
    assert [d["decided_by"] for d in result.disjuncts] == ["MILP", "MILP"]


def test_a_time_limit_reached_before_the_proofs_is_a_timeout(tmp_path, forward_passes):
    net = constant_margin_net()
    forward_passes(sleep_at=2, seconds=0.6)  # 1: the size probe, 2: the centre
    spec = prop(tmp_path, UNREACHABLE, 2, 2)
    result = verify(net, spec, time_limit=0.5, attack=False)
    assert result.status == "timeout", result.summary()
    assert result.reason == "time limit of 0.5 s reached; 2 of 2 disjuncts undecided"
    assert [(d["status"], d["bound"]) for d in result.disjuncts] == [("open", None)] * 2
    assert result.model_stats == [] and result.to_vnncomp() == "timeout\n"


def test_a_bounding_method_that_refuses_the_network_leaves_it_to_the_milp(tmp_path, monkeypatch):
    """A registered method whose stage cannot bound through max pooling: no proof, no crash."""
    from gurobi_sparse_surrogate.bounds.problem import METHODS

    class BlindInterval:  # interval bounds, without declaring max-pooling support
        name = "blind interval"

        def __init__(self):
            (self.stage,) = METHODS["interval"]

        def layer_bounds(self, problem, index, lower, upper):
            return self.stage.layer_bounds(problem, index, lower, upper)

    monkeypatch.setitem(METHODS, "blind", (BlindInterval(),))
    net = cnn(nn.MaxPool2d(2))
    x0 = np.full(36, 0.5)
    logits = forward64(net, x0)[0]
    label = int(logits.argmax())
    radius = 0.25 * (logits[label] - np.sort(logits)[-2]) / cnn_lipschitz(net)  # robust
    spec = prop(tmp_path, box_text(x0 - radius, x0 + radius) + not_class(label, 3), 36, 3)
    result = verify(net, spec, time_limit=20, attack=False, proof_bounds="blind")
    assert result.status == "unsat", result.summary()
    assert {d["decided_by"] for d in result.disjuncts} == {"MILP"}  # the bounds proved none


def test_a_property_met_only_on_its_boundary_is_unknown(tmp_path):
    """y = relu(x) on [-1, 1] reaches Y_0 >= 1 only at x = 1, with no margin: no
    counterexample with margin (not sat), and the bound 0 is no proof (not unsat)."""
    layer = nn.Linear(1, 1)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.zero_()
    net = nn.Sequential(layer, nn.ReLU())  # ends with a ReLU: the rows are appended, not folded
    spec = prop(tmp_path, box_text([-1.0], [1.0]) + "(assert (>= Y_0 1))", 1, 1)
    result = verify(net, spec, time_limit=20)
    assert result.status == "unknown", result.summary()
    assert "1 of 1 disjuncts undecided: box 0: the MILP's proven bound" in result.reason
    assert result.reason.endswith("is not above 0.0001")
    (disjunct,) = result.disjuncts
    assert disjunct["bound"] <= 1e-9  # sound: the minimum of 1 - relu(x) is 0
    assert result.model_stats and result.model_stats[0]["case"] == 0


@needs_size_limited_licence
def test_a_network_too_large_for_the_licence_is_unknown_with_the_reason(tmp_path):
    """2100 hidden neurons without bias, all unstable on a box around 0: more variables than
    the licence allows in either ReLU formulation."""
    torch.manual_seed(0)
    hidden, out = nn.Linear(2, 2100), nn.Linear(2100, 1)
    with torch.no_grad():
        hidden.bias.zero_()
    net = nn.Sequential(hidden, nn.ReLU(), out).eval()
    spec = prop(tmp_path, box_text([-1.0, -1.0], [1.0, 1.0]) + "(assert (>= Y_0 1e6))", 2, 1)
    options = {"time_limit": 30, "attack": False, "proof_bounds": None, "bounds": "interval"}
    result = verify(net, spec, **options)
    assert result.status == "unknown", result.summary()
    assert "box 0: no MILP: the model does not fit the licence" in result.reason
    assert "with relu_formulation='max'" in result.reason  # big-M first, then max constraints
    result = verify(net, spec, relu_formulation="max", **options)
    assert result.status == "unknown", result.summary()
    assert "does not fit the licence" in result.reason
    assert "with relu_formulation='max'" not in result.reason  # tried once


def test_solve_polytopes_past_its_deadline_builds_but_does_not_solve():
    from gurobi_sparse_surrogate import Box
    from gurobi_sparse_surrogate.applications.output_condition import solve_polytopes
    from gurobi_sparse_surrogate.applications.vnnlib import OutputPolytope

    net = constant_margin_net()
    polytope = OutputPolytope(np.array([[1.0, -1.0]]), np.array([0.0]))
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    outcome = solve_polytopes(
        net, box, [polytope], time_limit=10.0, clock=lambda: 10.0, deadline=5.0
    )
    assert outcome.status == "undecided" and outcome.timed_out
    assert outcome.reason == "the time limit was reached before the MILP"
    assert "dense" in outcome.model_stats and outcome.history == []


def test_a_polytope_without_rows_is_never_proven_unreachable():
    """No rows: every output meets it, so no bound can prove it unreachable."""
    from gurobi_sparse_surrogate import Box
    from gurobi_sparse_surrogate.applications.output_condition import prove_unreachable
    from gurobi_sparse_surrogate.applications.vnnlib import OutputPolytope
    from gurobi_sparse_surrogate.network.extraction import extract_layers

    layers = extract_layers(constant_margin_net())
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    every_output = OutputPolytope(np.zeros((0, 2)), np.zeros(0))
    assert prove_unreachable(layers, box, every_output) == -np.inf
    # the same call with a row proves Y_1 >= Y_0 unreachable: y0 - y1 = 1 everywhere
    row = OutputPolytope(np.array([[1.0, -1.0]]), np.array([0.0]))
    assert prove_unreachable(layers, box, row) == pytest.approx(1.0, abs=1e-9)
