"""The benchmark's methods (benchmarks/methods.py): the gurobi-ml baseline's verdicts checked
with torch, the class loops' stops, the plumbing around the package's answers, the records'
JSON form, the classifier cache, and the failures a run records instead of raising."""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass
from types import SimpleNamespace

import gurobipy as gp
import numpy as np
import pytest
import torch
from conftest import forward64
from torch import nn

import gurobi_sparse_surrogate as gss
from benchmarks import methods as bm
from benchmarks.suites import Instance, MethodSpec, maximization_instances, method
from benchmarks.suites import verification_instances as _verification_instances
from gurobi_sparse_surrogate.solving import Incumbent

#: The classifier function itself (the fixture below memoises it for this module).
CLASSIFIER = bm.classifier


@pytest.fixture(scope="module", autouse=True)
def trained_once():
    """Train each digits classifier once in this module (instances differ in their radius)."""
    memo = functools.cache(lambda key, inst, cache_dir: CLASSIFIER(inst, cache_dir))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            bm, "classifier", lambda inst, cache_dir=None: memo(inst.network_key(), inst, None)
        )
        yield


def digits(radius: float, **params) -> Instance:
    """The 8x8 digits instance of the benchmark tests with another L1 radius (or norm)."""
    (inst,) = _verification_instances([8], [(8,)], 1, dataset="digits", n_test=360, seed=3)
    tag = "-".join(f"{k}{v}" for k, v in params.items())
    return Instance(
        inst.suite, f"{inst.id}-r{radius:g}{tag}", {**inst.params, "radius": radius, **params}
    )


WIDE = 8.0  # an L1 ball of radius 8 on 64 pixels in [0, 1] holds another digit
TINY = 0.01  # a ball this small is robust (the ground truth tests of hard.py prove it)


def misclassified(data: bm.InstanceData, x: np.ndarray) -> bool:
    """An independent check of an adversarial input: in the ball, and torch's top class moves."""
    out = forward64(data.network, x)[0]
    return bool(data.domain.contains(x, tol=1e-6)) and int(np.argmax(out)) != data.label


# ------------------------------------------------------------------------------ gurobi-ml


def test_gurobi_ml_baseline_finds_an_input_torch_misclassifies():
    data = bm.load_instance(digits(WIDE))
    out = bm.run_gurobi_ml(data, method("gurobi-ml"), 60.0, 1, 0)
    assert out["status"] == "adversarial", out.get("solver_status")
    assert misclassified(data, out["x"])
    first_valid = min(h.time for h in out["history"] if h.valid)
    assert out["time_to_first"] == pytest.approx(first_valid, abs=1e-4)
    # gurobi-ml: a max constraint per hidden neuron, no binary
    assert (out["binaries"], out["general_constraints"]) == (0, 8)


def test_gurobi_ml_baseline_proves_a_tiny_ball_robust():
    data = bm.load_instance(digits(TINY))
    out = bm.run_gurobi_ml(data, method("gurobi-ml"), 60.0, 1, 0)
    assert out["status"] == "robust", out.get("solver_status")
    samples = data.domain.sample(200, np.random.default_rng(0))
    assert (forward64(data.network, samples).argmax(axis=1) == data.label).all()


def test_a_run_records_the_first_time_of_an_answer_that_gives_none():
    inst = digits(WIDE)
    data = bm.load_instance(inst)
    x = bm.run_gurobi_ml(data, method("gurobi-ml"), 60.0, 1, 0)["x"]
    bm.RUNNERS["returns-x"] = lambda *a: {"status": "adversarial", "x": x}
    try:
        rec = bm.run_method(inst, MethodSpec("returns-x", "returns-x"), time_limit=1.0)
    finally:
        del bm.RUNNERS["returns-x"]
    assert rec["found"] and rec["status"] == "adversarial"
    assert rec["time_to_first"] == rec["runtime"]
    out = forward64(data.network, x)[0]
    assert rec["dense_margin"] == pytest.approx(out[data.label] - out[data.target], abs=1e-9)


def test_an_attack_stage_that_succeeds_skips_the_solve(monkeypatch):
    data = bm.load_instance(digits(WIDE))
    x = bm.run_gurobi_ml(data, method("gurobi-ml"), 60.0, 1, 0)["x"]
    monkeypatch.setattr(bm, "attack_stage", lambda d, budget, seed: (x, d.score(x), 0.25))

    def no_solve(*args, **kwargs):
        raise AssertionError("the MILP must not be built after a successful attack")

    monkeypatch.setattr(bm, "_gurobi_ml_solve", no_solve)
    out = bm.run_gurobi_ml(data, method("gurobi-ml", attack=True), 10.0, 1, 0)
    assert out["status"] == "adversarial" and out["attack_seconds"] == 0.25
    assert out["x"] is x and [h.phase for h in out["history"]] == ["attack"]


def test_no_time_left_means_no_model():
    data = bm.load_instance(digits(WIDE))
    out = bm._gurobi_ml_solve(
        data, bm._plain_sequential(data.network), start=time.perf_counter() - 5.0,
        time_limit=1.0, threads=1, seed=0,
    )  # fmt: skip
    assert out == {
        "history": [],
        "status": "unknown",
        "x": None,
        "time_to_first": None,
        "solver_status": "no time left",
    }


def test_an_interrupted_solve_is_not_recorded(monkeypatch):
    inst = digits(WIDE)
    monkeypatch.setattr(bm, "optimize_judging", lambda *args: True)  # the user pressed Ctrl-C
    with pytest.raises(KeyboardInterrupt, match="not recorded"):
        bm.run_method(inst, method("gurobi-ml"), time_limit=10.0)

    def interrupted(*args, **kwargs):
        return SimpleNamespace(interrupted=True)

    monkeypatch.setattr(gss, "find_adversarial", interrupted)
    with pytest.raises(KeyboardInterrupt, match="not recorded"):
        bm.run_method(inst, method("dense"), time_limit=10.0)


@pytest.mark.parametrize("kind", ["gurobi-ml", "gurobi-ml-loop"])
def test_a_size_limit_error_skips_and_any_other_solver_error_is_recorded(monkeypatch, kind):
    inst = digits(WIDE)
    spec = method(kind)
    errors = iter([gp.GurobiError(10010, "Model too large for size-limited license")])

    def fail(*args):
        raise next(errors, gp.GurobiError(10005, "Unable to retrieve attribute"))

    monkeypatch.setattr(bm, "optimize_judging", fail)
    rec = bm.run_method(inst, spec, time_limit=10.0)
    assert rec["status"] == "skipped" and "size-limited Gurobi licence" in rec["reason"]
    rec = bm.run_method(inst, spec, time_limit=10.0)
    assert rec["status"] == "error" and "Unable to retrieve attribute" in rec["error"]


# ------------------------------------------------------------------------------ class loops


def test_class_loop_without_time_decides_nothing():
    data = bm.load_instance(digits(WIDE, norm="linf"))
    out = bm.run_class_loop(data, method("gurobi-ml-loop"), 0.0, 1, 0)
    assert out["status"] == "unknown" and out["classes"] == [] and out["classes_proven"] == 0


def test_class_loop_stops_at_a_class_left_undecided(monkeypatch):
    data = bm.load_instance(digits(0.3, norm="linf"))

    def stopped(model, *args):  # a solve that stops before any answer (as at a time limit)
        model.Params.IterationLimit = 0
        model.optimize()
        return False

    monkeypatch.setattr(bm, "optimize_judging", stopped)
    out = bm.run_class_loop(data, method("dense-loop"), 10.0, 1, 0)
    assert out["status"] == "unknown" and out["classes_proven"] == 0
    (first,) = out["classes"]  # the loop stopped there, without a verdict
    runner_up = int(np.argsort(-data.outputs(data.x0), kind="stable")[1])
    assert first["class"] == runner_up and not first["proved"] and not first["adversarial"]


def test_class_loop_skips_a_model_too_large_for_the_licence(monkeypatch):
    class TooLarge:
        fits = False

        def message(self, what):
            return f"2100 variables > 2000: {what}"

    monkeypatch.setattr(gss, "check_model_size", lambda model: TooLarge())
    rec = bm.run_method(digits(0.3, norm="linf"), method("gurobi-ml-loop"), time_limit=10.0)
    assert rec["status"] == "skipped"
    assert rec["reason"] == "2100 variables > 2000: gurobi-ml embeds every neuron of the network"


def test_class_loop_refuses_a_maximization_instance():
    (inst,) = maximization_instances([(4, 1, 4)])
    rec = bm.run_method(inst, method("gurobi-ml-loop"), time_limit=1.0)
    assert rec["status"] == "error"
    assert rec["error"] == "ValueError: gurobi-ml-loop is a verification method"


# ------------------------------------------------------------------------------ the package


def test_package_statistics_of_a_single_model_are_recorded(monkeypatch):
    data = bm.load_instance(digits(WIDE))
    layers = [
        {"neurons": 8, "active": 2, "inactive": 3, "unstable": 3, "removed": 1},
        {"neurons": 10, "active": 10, "inactive": 0, "unstable": 0, "removed": 0},
    ]

    def fake(network, x0, domain, **kwargs):
        return SimpleNamespace(
            x=None, status="unknown", runtime=0.5, bounding_seconds=0.125,
            model_stats={"layers": layers, "binaries": 3, "variables": 90},
        )  # fmt: skip

    monkeypatch.setattr(gss, "find_adversarial", fake)
    out = bm.run_package(data, method("dense"), 10.0, 1, 0)
    assert out["bounding_seconds"] == 0.125
    assert "attack_seconds" not in out and "pruning_seconds" not in out
    assert (out["binaries"], out["variables"]) == (3, 90)
    assert (out["stable"], out["unstable"], out["removed"], out["neurons"]) == (15, 3, 1, 18)
    assert out["stable_per_layer"] == [5, 10] and out["unstable_per_layer"] == [3, 0]


def test_formulation_stats_without_layers_keep_the_sizes():
    assert bm._formulation_stats(None) == {}
    assert bm._formulation_stats({"binaries": 4, "nonzeros": 30, "other": 1}) == {
        "binaries": 4,
        "nonzeros": 30,
    }


# ------------------------------------------------------------------------------ helpers


def test_plain_sequential_drops_no_op_layers_and_names_what_it_cannot_convert():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(6, 4, bias=False), nn.ReLU(), nn.Dropout(0.5), nn.Identity(),
        nn.Linear(4, 2),
    ).eval()  # fmt: skip
    plain = bm._plain_sequential(net)
    assert [type(m) for m in plain] == [nn.Linear, nn.ReLU, nn.Linear]
    xs = np.random.default_rng(0).random((5, 6))
    np.testing.assert_allclose(forward64(plain, xs), forward64(net, xs), atol=1e-6)
    with pytest.raises(TypeError, match="cannot convert a Conv2d module"):
        bm._plain_sequential(nn.Sequential(nn.Conv2d(1, 1, 3)))


def test_prune_options_pass_what_each_criterion_needs():
    data = bm.load_instance(digits(WIDE))
    aware = bm._prune_options(data, method("surrogate", rate=0.5, criterion="activation"), 7)
    assert aware == {"method": "activation", "structure": "global", "domain": data.domain}
    control = bm._prune_options(data, method("surrogate", rate=0.5, criterion="random"), 7)
    assert control == {"method": "random", "structure": "global", "seed": 7}
    assert bm.surrogate_quality(data, method("dense"), 0) == {}  # nothing pruned


def test_an_attack_without_budget_does_not_run():
    data = bm.load_instance(digits(WIDE))
    assert bm.attack_stage(data, 0.0, 0) == (None, None, 0.0)


def test_unknown_kinds_and_images_are_named_in_the_record():
    rec = bm.run_method(digits(WIDE), MethodSpec("m", "magic"), time_limit=1.0)
    assert rec["status"] == "error" and "no method of kind 'magic'" in rec["error"]
    far = digits(WIDE, image=999)
    rec = bm.run_method(far, method("attack"), time_limit=1.0)
    assert rec["status"] == "error"
    assert "image index 999 outside the 360 held-out images" in rec["error"]


@dataclass
class _Point:
    x: float
    tags: tuple


def test_records_are_plain_json():
    value = {
        1: _Point(1.5, ("a", np.int64(2))),
        "small": np.arange(3.0),
        "large": np.zeros(17),
        "numbers": [np.float32(0.5), math.nan, math.inf, -math.inf, None, True],
        "other": {1, 2},
    }
    out = bm._jsonable(value)
    assert out == {
        "1": {"x": 1.5, "tags": ["a", 2]},
        "small": [0.0, 1.0, 2.0],
        "large": None,
        "numbers": [0.5, None, 1e300, -1e300, None, True],
        "other": "{1, 2}",
    }
    json.dumps(out, allow_nan=False)


def test_long_histories_keep_their_first_and_last_entries():
    history = [Incumbent(float(t), "dense", None, -float(t), True, True) for t in range(250)]
    kept = bm._history(history)
    half = bm.MAX_HISTORY // 2
    assert len(kept) == bm.MAX_HISTORY
    assert [h["time"] for h in kept] == [*range(half), *range(250 - half, 250)]
    assert kept[0] == history[0].as_dict()


def test_call_passes_any_keyword_to_a_function_that_takes_them_all():
    assert bm._call(lambda a, **kw: (a, kw), 1, b=2) == (1, {"b": 2})
    with pytest.raises(TypeError, match=r"does not accept \['b'\]"):
        bm._call(lambda a: a, 1, b=2)


# ------------------------------------------------------------------------------ classifier cache


def test_mnist_classifiers_are_cached_on_disk_and_reloaded(tmp_path, monkeypatch):
    from gurobi_sparse_surrogate import datasets

    inst = Instance(
        "verification", "mnist8", {"size": 8, "hidden": [8], "net_seed": 0, "image": 0, "radius": 1}
    )
    net, (X_tr, y_tr), (X_te, y_te), acc = CLASSIFIER(inst, str(tmp_path))
    files = sorted(p.name for p in tmp_path.glob("bench-mnist8-8-s0-*"))
    assert [f.rsplit(".", 1)[1] for f in files] == ["npz", "pt"]
    assert not list(tmp_path.glob("tmp*"))  # written through temporary files, renamed

    def no_training(*args, **kwargs):
        raise AssertionError("a cached classifier must not be trained again")

    monkeypatch.setattr(datasets, "mnist_classifier", no_training)
    net2, (X_tr2, y_tr2), (X_te2, y_te2), acc2 = CLASSIFIER(inst, str(tmp_path))
    np.testing.assert_array_equal(X_te2, X_te)
    np.testing.assert_array_equal(y_tr2, y_tr)
    assert acc2 == acc and X_tr2.shape == X_tr.shape and len(y_te2) == len(y_te)
    np.testing.assert_array_equal(forward64(net2, X_te[:20]), forward64(net, X_te[:20]))


def test_atomic_save_leaves_nothing_behind_when_the_write_fails(tmp_path):
    target = tmp_path / "sub" / "net.pt"

    def half_written(name):
        with open(name, "w") as handle:
            handle.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        bm._save_atomic(target, half_written)
    assert list((tmp_path / "sub").iterdir()) == []
    bm._save_atomic(target, lambda name: open(name, "w").write("whole"))
    assert target.read_text() == "whole" and [p.name for p in target.parent.iterdir()] == ["net.pt"]


def test_cnn_instances_train_the_benchmark_cnn_and_report_its_accuracy():
    (inst,) = _verification_instances([8], [(16,)], 1, arch="cnn", n_test=1000)
    net, (X_tr, y_tr), (X_te, y_te), accuracy = bm.classifier(inst)
    assert [type(m).__name__ for m in net] == [
        "Unflatten", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear",
    ]  # fmt: skip
    assert net[5].out_features == 16 and X_tr.shape[1] == X_te.shape[1] == 64
    assert len(X_te) == 1000 and len(X_tr) == 4000  # the bundled 5,000 digits, 80/20
    predicted = forward64(net, X_te).argmax(axis=1)
    assert accuracy == pytest.approx(float((predicted == y_te).mean()), abs=1e-6)
    assert accuracy > 0.3  # trained: well above chance (0.1)
