"""Tests of the benchmark suite: profiles, methods, resumable runner, metrics, report, CLI."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import forward64

# the benchmarks package lives at the repository root, next to tests/
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import methods as bm
from benchmarks.__main__ import main
from benchmarks.report import (
    geometric_mean,
    load_results,
    paired,
    reading,
    suite_table,
    time_ratios,
    wins_losses,
    write_report,
)
from benchmarks.runner import (
    Task,
    execute_task,
    make_tasks,
    read_results,
    record_key,
    run_benchmark,
)
from benchmarks.suites import (
    PROFILES,
    Instance,
    MethodSpec,
    Profile,
    get_profile,
    maximization_instances,
    method,
    verification_instances,
)

# ------------------------------------------------------------------------------ fixtures


def digits_instances(n: int = 2) -> list[Instance]:
    """Tiny verification instances on sklearn's 8x8 digits (fast to train and solve)."""
    out = verification_instances([8], [(8,)], n, dataset="digits", n_test=360, seed=3)
    return [Instance(i.suite, i.id, {**i.params, "radius": 1.0}) for i in out]


def tiny_profile(methods, instances=None, time_limit=5.0) -> Profile:
    return Profile(
        "tiny",
        tuple(instances if instances is not None else digits_instances()),
        tuple(methods),
        time_limit=time_limit,
    )


# ------------------------------------------------------------------------------ suites


def test_profiles_are_deterministic_and_complete():
    for name in PROFILES:
        a, b = get_profile(name), get_profile(name)
        assert [i.id for i in a.instances] == [i.id for i in b.instances]
        assert [i.params for i in a.instances] == [i.params for i in b.instances]
        names = [m.name for m in a.methods]
        assert len(names) == len(set(names))
        ids = [(i.suite, i.id) for i in a.instances]
        assert len(ids) == len(set(ids))
    quick = {m.name for m in get_profile("quick").methods}
    for r in (0.5, 0.8, 0.9):
        assert {f"surrogate-{r:g}", f"surrogate-{r:g}-nofallback", f"paper-{r:g}"} <= quick
    assert {"gurobi-ml", "gurobi-ml-obbt", "dense", "attack", "surrogate-0.8-finetuned"} <= quick
    assert "surrogate-0.8-neuron" in quick and "dense+attack" in quick
    smoke = get_profile("smoke")
    assert {m.kind for m in smoke.methods} == {"gurobi-ml", "paper", "dense", "surrogate", "attack"}
    paper = get_profile("paper")
    assert len([m for m in paper.methods if m.kind == "surrogate"]) == 2 * 5 * 2 * 2 * 2
    # radii from U[4.5, 5.5]
    radii = [i.params["radius"] for i in paper.instances if i.suite == "verification"]
    assert min(radii) >= 4.5 and max(radii) <= 5.5 and len(set(radii)) > 1


def test_method_names_and_validation():
    assert method("paper", rate=0.5).name == "paper-0.5"
    spec = method("surrogate", rate=0.9, finetune=True, structure="neuron", fallback=False)
    assert spec.name == "surrogate-0.9-finetuned-neuron-nofallback"
    assert spec.family == "surrogate-finetuned-neuron-nofallback"
    assert method("dense", attack=True).name == "dense+attack"
    with pytest.raises(ValueError, match="pruning rate"):
        method("surrogate", rate=1.0)
    with pytest.raises(ValueError, match="unknown method kind"):
        method("magic")
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("huge")


def test_instances_are_seeded():
    a = verification_instances([18], [(32, 32)], 3, seed=1)
    b = verification_instances([18], [(32, 32)], 3, seed=1)
    c = verification_instances([18], [(32, 32)], 3, seed=2)
    assert [i.params for i in a] == [i.params for i in b] != [i.params for i in c]
    m = maximization_instances([(100, 2, 50)], seeds=(0, 1))
    assert [i.id for i in m] == ["rand100-2x50-s0", "rand100-2x50-s1"]
    assert m[0].estimated_size() == (100 + 200 + 1, 101)


# ------------------------------------------------------------------------------ methods


def test_judge_against_an_independent_forward_pass():
    inst = digits_instances(1)[0]
    data = bm.load_instance(inst)
    out0 = forward64(data.network, data.x0)[0]
    assert data.label == int(np.argmax(out0))
    assert data.target == int(np.argsort(-out0)[1])
    rng = np.random.default_rng(0)
    for x in data.domain.sample(5, rng):
        out = forward64(data.network, x)[0]
        verdict = data.verdict(x)
        assert verdict["in_domain"] and not verdict["projected"]
        assert verdict["score"] == pytest.approx(out[data.label] - out[data.target], abs=1e-9)
        assert verdict["valid"] == bool(out[data.label] - out[data.target] < 0)
    far = np.ones_like(data.x0)  # outside the L1 ball: projected before judging
    verdict = data.verdict(far)
    assert verdict["projected"] and verdict["in_domain"]


def test_gurobi_ml_and_paper_baselines_are_judged_on_the_dense_network(tmp_path):
    inst = digits_instances(1)[0]
    data = bm.load_instance(inst)
    for spec in (method("gurobi-ml"), method("paper", rate=0.7), method("attack")):
        rec = bm.run_method(inst, spec, time_limit=20.0)
        assert rec["status"] in ("adversarial", "robust", "unknown"), rec.get("error")
        if rec["found"]:
            assert rec["dense_margin"] < 0 and rec["in_domain"]
            assert 0 <= rec["time_to_first"] <= rec["runtime"] + 1e-6
        if spec.kind == "paper":
            assert rec["status"] != "robust"  # a pruned network proves nothing about the dense
            assert rec["sparsity"] == pytest.approx(0.7, abs=0.01)
            assert 0 <= rec["surrogate_accuracy"] <= 1
    gml = bm.run_method(inst, method("gurobi-ml"), time_limit=20.0)
    attack = bm.run_method(inst, method("attack"), time_limit=5.0)
    if gml["status"] == "robust":  # a proof must not be contradicted by the attack
        assert not attack["found"]
    if attack["found"]:
        assert gml["status"] != "robust"
    assert data.network[0].weight.shape == (8, 64)  # the dense network is untouched


def test_paper_network_is_embedded_by_gurobi_ml_itself(model):
    import gurobi_ml

    from gurobi_sparse_surrogate.network.pruning import prune_network

    data = bm.load_instance(digits_instances(1)[0])
    pruned = prune_network(data.network, 0.7, permanent=True)
    plain = bm._plain_sequential(pruned)
    assert type(plain) is torch.nn.Sequential
    x = model.addMVar(64, lb=0.0, ub=1.0)
    constr = gurobi_ml.add_predictor_constr(model, plain, x)
    assert type(constr).__module__.startswith("gurobi_ml")  # not this package's formulation
    zeros = sum(int((m.weight == 0).sum()) for m in plain if isinstance(m, torch.nn.Linear))
    total = sum(m.weight.numel() for m in plain if isinstance(m, torch.nn.Linear))
    assert zeros / total == pytest.approx(0.7, abs=0.01)
    xs = np.random.default_rng(1).random((3, 64))
    np.testing.assert_allclose(forward64(plain, xs), forward64(pruned, xs), atol=1e-6)


def test_failures_are_recorded_not_raised(monkeypatch):
    from gurobi_sparse_surrogate import ModelTooLargeError

    def too_large(*args):
        raise ModelTooLargeError("the model would have 5000 variables")

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setitem(bm.RUNNERS, "too-large", too_large)
    monkeypatch.setitem(bm.RUNNERS, "broken", broken)
    inst = digits_instances(1)[0]
    rec = bm.run_method(inst, MethodSpec("x", "too-large"), time_limit=1.0)
    assert rec["status"] == "skipped" and "5000 variables" in rec["reason"]
    rec = bm.run_method(inst, MethodSpec("y", "broken"), time_limit=1.0)
    assert rec["status"] == "error" and "RuntimeError: boom" in rec["error"]
    json.dumps(rec, allow_nan=False)


# ------------------------------------------------------------------------------ runner


def test_interrupted_run_resumes_without_duplicates(tmp_path, monkeypatch):
    calls = []

    def fake(data, spec, time_limit, threads, seed):
        calls.append((data.instance.id, spec.name))
        return {"status": "adversarial", "x": data.x0, "time_to_first": 0.1}

    monkeypatch.setitem(bm.RUNNERS, "fake", fake)
    profile = tiny_profile([MethodSpec(f"fake-{k}", "fake") for k in range(3)])
    out = tmp_path / "res.jsonl"
    first = run_benchmark(profile, out, max_runs=4, progress=False)
    assert first == {"total": 6, "done_before": 0, "ran": 4, "unknown": 4}
    with out.open("a") as handle:  # a crash in the middle of writing a line
        handle.write('{"suite": "verification", "instance": "trunc')
    with pytest.warns(UserWarning, match="malformed line"):
        second = run_benchmark(profile, out, progress=False)
    assert second["done_before"] == 4 and second["ran"] == 2
    with pytest.warns(UserWarning, match="malformed line"):
        records = read_results(out)
    keys = [record_key(r) for r in records]
    assert len(keys) == len(set(keys)) == 6
    assert sorted(set(calls)) == sorted(calls) and len(calls) == 6
    with pytest.warns(UserWarning, match="malformed line"):
        assert run_benchmark(profile, out, progress=False)["ran"] == 0
    # the fake returns x0, which is not adversarial: judged on the dense network
    assert all(not r["found"] and r["status"] == "unknown" for r in records)
    record = records[0]
    assert record["env"]["licence"] in ("size-limited", "full")
    assert {"torch", "gurobipy", "gurobi_ml", "threads"} <= set(record["env"])


def test_errors_are_rerun_on_request_and_crashed_workers_recorded(tmp_path, monkeypatch):
    from concurrent.futures import Future

    from benchmarks.runner import _result_or_error

    state = {"fail": True}

    def flaky(data, spec, time_limit, threads, seed):
        if state["fail"]:
            raise RuntimeError("licence server unreachable")
        return {"status": "unknown", "x": None}

    monkeypatch.setitem(bm.RUNNERS, "flaky", flaky)
    profile = tiny_profile([MethodSpec("flaky", "flaky")], instances=digits_instances(1))
    out = tmp_path / "res.jsonl"
    assert run_benchmark(profile, out, progress=False)["error"] == 1
    state["fail"] = False
    assert run_benchmark(profile, out, progress=False)["ran"] == 0  # errors count as done
    assert run_benchmark(profile, out, progress=False, retry_errors=True)["ran"] == 1
    assert load_results(out)["status"].tolist() == ["unknown"]  # the later line supersedes
    future = Future()
    future.set_exception(RuntimeError("process died"))
    task = make_tasks(profile)[0]
    record = _result_or_error(future, task)
    assert record["status"] == "error" and "process died" in record["error"]
    assert record_key(record) == task.key


@pytest.mark.slow
def test_worker_processes_run_the_grid(tmp_path):
    profile = tiny_profile([method("attack"), method("gurobi-ml")], instances=digits_instances(2))
    out = tmp_path / "res.jsonl"
    with out.open("w") as handle:  # one run already done
        handle.write(json.dumps(execute_task(make_tasks(profile)[0])) + "\n")
    summary = run_benchmark(profile, out, jobs=2, progress=False)
    assert summary["ran"] == 3 and summary["done_before"] == 1
    records = read_results(out)
    assert len({record_key(r) for r in records}) == len(records) == 4
    assert all(r["status"] not in ("error", "skipped") for r in records), records


# ------------------------------------------------------------------------------ metrics


def _rec(suite, inst, name, found, t=None, value=None, status=None, rate=None, **kw):
    status = status or (
        ("adversarial" if found else "unknown") if suite == "verification" else "feasible"
    )
    return {
        "suite": suite,
        "instance": inst,
        "method": name,
        "kind": name.split("-")[0],
        "family": name,
        "rate": rate,
        "status": status,
        "found": found,
        "time_to_first": t,
        "value": value,
        "time_limit": 10.0,
        **kw,
    }


@pytest.fixture
def hand_made(tmp_path):
    v = "verification"
    records = [
        _rec(v, "i1", "gurobi-ml", True, 2.0, binaries=0),
        _rec(v, "i2", "gurobi-ml", True, 4.0),
        _rec(v, "i3", "gurobi-ml", False),
        _rec(v, "i4", "gurobi-ml", True, 1.0),
        _rec(v, "i5", "gurobi-ml", False, status="robust"),
        _rec(v, "i1", "paper-0.8", True, 1.0, rate=0.8, surrogate_accuracy=0.5),
        _rec(v, "i2", "paper-0.8", True, 8.0, rate=0.8, surrogate_accuracy=0.5),
        _rec(v, "i3", "paper-0.8", True, 3.0, rate=0.8, surrogate_accuracy=0.5),
        _rec(v, "i4", "paper-0.8", False, rate=0.8),
        _rec(v, "i5", "paper-0.8", False, rate=0.8),
        _rec(v, "i1", "surrogate-0.8", True, 0.5, rate=0.8, binaries=10, stable=30),
        _rec(v, "i2", "surrogate-0.8", True, 1.0, rate=0.8, binaries=20, stable=40),
        _rec(v, "i3", "surrogate-0.8", False, rate=0.8, binaries=30, stable=50),
        _rec(v, "i4", "surrogate-0.8", True, 4.0, rate=0.8, binaries=40, stable=60),
        _rec(v, "i5", "surrogate-0.8", False, status="skipped", rate=0.8),
        # an older line of the same key is superseded by the later one
        _rec(v, "i1", "dense", False),
        _rec(v, "i1", "dense", True, 1.0, status="robust"),
        _rec(v, "i2", "dense", False, status="error"),
        _rec("maximization", "m1", "gurobi-ml", True, value=2.0),
        _rec("maximization", "m2", "gurobi-ml", True, value=-4.0, status="optimal"),
        _rec("maximization", "m1", "paper-0.8", True, value=3.0, rate=0.8),
        _rec("maximization", "m2", "paper-0.8", True, value=-4.0, rate=0.8),
    ]
    path = tmp_path / "hand.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_metrics_on_a_hand_made_results_file(hand_made):
    frame = load_results(hand_made)
    assert len(frame) == 21  # the superseded dense line is dropped
    pairs = paired(frame, "surrogate-0.8", "gurobi-ml")
    assert sorted(time_ratios(pairs)) == [0.25, 0.25, 4.0]  # i1, i2, i4
    table = suite_table(frame, "verification").set_index("method")
    s = table.loc["surrogate-0.8"]
    assert s["found"] == 3 and s["runs"] == 4 and s["skipped"] == 1
    assert s["median_ratio"] == pytest.approx(0.25)
    assert s["geomean_ratio"] == pytest.approx((0.25 * 0.25 * 4.0) ** (1 / 3))
    # vs gurobi-ml: i1, i2 faster (wins); i3 neither found (tie); i4 slower (loss)
    assert (s["wins_gml"], s["losses_gml"], s["ties_gml"]) == (2, 1, 1)
    # vs paper-0.8: i1 win (0.5 < 1), i2 win, i3 loss (paper found), i4 win (paper failed)
    assert s["paper_ref"] == "paper-0.8" and (s["wins_paper"], s["losses_paper"]) == (3, 1)
    assert s["binaries"] == 25 and s["stable"] == 45
    p = table.loc["paper-0.8"]
    assert p["median_ratio"] == pytest.approx(1.25)  # ratios 0.5 and 2.0
    assert p["geomean_ratio"] == pytest.approx(1.0)
    assert (p["wins_gml"], p["losses_gml"]) == (2, 2)  # i1, i3 won; i2, i4 lost; i5 tie
    assert p["accuracy"] == pytest.approx(0.5)
    g = table.loc["gurobi-ml"]
    assert g["found"] == 3 and g["robust"] == 1 and g["runs"] == 5
    d = table.loc["dense"]
    assert d["robust"] == 1 and d["errors"] == 1 and d["runs"] == 1
    m = suite_table(frame, "maximization").set_index("method")
    assert m.loc["paper-0.8", "median_rel_value"] == pytest.approx(0.25)  # 0.5 and 0.0
    assert (m.loc["paper-0.8", "wins_gml"], m.loc["paper-0.8", "losses_gml"]) == (1, 0)
    assert m.loc["gurobi-ml", "optimal"] == 1
    assert math.isnan(geometric_mean([]))


def test_wins_losses_maximization_handles_missing_values():
    pairs = pd.DataFrame(
        {
            "found_m": [True, False, True],
            "found_r": [False, True, True],
            "value_m": [1.0, None, 5.0],
            "value_r": [None, 2.0, 5.0 + 1e-9],
        }
    )
    assert wins_losses(pairs, "maximization") == (1, 1, 1)


def test_report_and_cli(hand_made, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(hand_made), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "## Verification" in capsys.readouterr().out  # printed as well
    for name in ("gurobi-ml", "paper-0.8", "surrogate-0.8", "dense"):
        assert f"| {name} |" in text
    # the reading is generated from the numbers of this file
    assert "gurobi-ml found dense-adversarial inputs on 3/5, proved 1 robust" in text
    assert "paper-0.8 beat gurobi-ml on 2/5 instances and lost on 2" in text
    for png in ("scatter_verification.png", "success_vs_rate.png", "maximization_values.png"):
        assert (out / png).stat().st_size > 1000
    assert main(["report", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["list", "--profile", "smoke"]) == 0
    assert "surrogate-0.8-nofallback" in capsys.readouterr().out


# ------------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_smoke_profile_end_to_end(tmp_path):
    profile = get_profile("smoke")
    out = tmp_path / "smoke.jsonl"
    torch.set_num_threads(2)  # the caller's setting: runs use one thread, then it is put back
    try:
        summary = run_benchmark(profile, out, jobs=1, progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    assert summary["ran"] == len(profile.tasks())
    records = read_results(out)
    assert {r["method"] for r in records} == {m.name for m in profile.methods}
    errors = [(r["method"], r.get("error")) for r in records if r["status"] == "error"]
    assert not errors, errors
    for r in records:
        assert r["runtime"] <= 4 * profile.time_limit + 30  # limits are honoured (loosely)
        if r["found"] and r["suite"] == "verification":
            assert r["dense_margin"] < 0 and r["in_domain"]
        if r["suite"] == "maximization" and r["found"]:
            assert math.isfinite(r["value"])
    markdown = write_report(out, tmp_path / "report")
    for m in profile.methods:
        assert f"| {m.name} |" in markdown
    assert (tmp_path / "report" / "scatter_verification.png").is_file()
    assert all(r["env"]["torch_threads"] == 1 for r in records)


def test_execute_task_adds_the_key_and_settings(monkeypatch):
    monkeypatch.setitem(bm.RUNNERS, "fake", lambda *a: {"status": "unknown", "x": None})
    inst = digits_instances(1)[0]
    task = Task(inst, MethodSpec("f", "fake"), time_limit=3.0, threads=1)
    rec = execute_task(task)
    # the key is made of the task's instance and method, not of whatever the record holds
    assert (rec["suite"], rec["instance"], rec["method"]) == (inst.suite, inst.id, "f")
    assert record_key(rec) == task.key == (inst.suite, inst.id, "f")
    assert rec["time_limit"] == 3.0 and rec["threads"] == 1 and rec["params"] == inst.params


def test_bounding_method_variants_are_named_and_reach_the_package():
    from benchmarks.suites import get_profile, method

    spec = method("dense", bounds="interval")
    assert spec.name == "dense-interval" and spec.options["bounds"] == "interval"
    with pytest.raises(ValueError, match="bounds="):
        method("gurobi-ml", bounds="linear")
    names = {m.name for m in get_profile("paper").methods}
    assert {"dense", "dense-interval", "dense-linear", "dense-lp"} <= names
    assert "dense-interval" in {m.name for m in get_profile("quick").methods}


def test_bounding_method_option_is_the_one_the_package_uses(monkeypatch):
    import functools

    import gurobi_sparse_surrogate as gss

    seen = []
    original = gss.find_adversarial

    @functools.wraps(original)
    def spy(*args, **kwargs):
        # no objective-aware proof: it would decide this small instance before any MILP
        result = original(*args, **kwargs, proof_steps=None)
        seen.append((kwargs, result))
        return result

    monkeypatch.setattr(gss, "find_adversarial", spy)
    # an L1 radius large enough that the answer takes a MILP (smaller ones are proved robust
    # before any model is built), so that an embedding is bounded
    base = digits_instances(1)[0]
    inst = Instance(base.suite, base.id + "-r10", {**base.params, "radius": 10.0})
    records = {}
    for bounds, stages in (("interval", {"interval"}), ("linear", {"interval", "linear"})):
        rec = bm.run_method(inst, method("dense", bounds=bounds), time_limit=20.0)
        kwargs, result = seen[-1]
        assert kwargs["bounds"] == bounds and rec["ignored_options"] == []
        # the embedding that was solved was bounded by that method, with its stages
        stats = result.model_stats["dense"]
        assert stats["bounds_method"] == bounds
        assert {row["stage"] for row in stats["bounds_stages"]} == stages
        assert rec["unstable"] == sum(r["unstable"] for r in stats["layers"])
        records[bounds] = rec
    assert records["linear"]["unstable"] <= records["interval"]["unstable"]


def test_unstable_neurons_per_layer_are_medians_by_depth():
    from benchmarks.report import load_results, unstable_by_layer

    rows = [
        {
            "suite": "verification",
            "instance": f"a{i}",
            "method": "dense",
            "status": "robust",
            "found": False,
            "unstable_per_layer": [i, 10 * i, 0],
        }
        for i in (1, 2, 6)
    ]
    rows += [
        {
            "suite": "verification",
            "instance": "deep",
            "method": "dense",
            "status": "robust",
            "found": False,
            "unstable_per_layer": [4, 4, 4, 4, 0],
        },
        {
            "suite": "verification",
            "instance": "a1",
            "method": "attack",
            "status": "unknown",
            "found": False,
        },
    ]
    table = unstable_by_layer(load_results(rows), "verification")
    assert table["method"].tolist() == ["dense", "dense"]
    assert table["layers"].tolist() == [3, 5] and table["runs"].tolist() == [3, 1]
    assert table["median"].tolist() == [[2.0, 20.0, 0.0], [4.0, 4.0, 4.0, 4.0, 0.0]]


# ------------------------------------------------------------------------------ paths of the runner


def test_dask_scheduler_runs_the_grid_on_a_local_cluster(tmp_path, monkeypatch):
    import zipfile

    from dask.distributed import Client, LocalCluster

    uploaded, archives = [], []

    def upload_file(self, filename, **kwargs):
        # remote workers import the uploaded benchmarks package; this cluster's worker runs
        # in the test's process, whose own package must not be reloaded from a temporary zip
        archives.append(Path(filename))
        with zipfile.ZipFile(filename) as archive:
            uploaded.extend(archive.namelist())

    monkeypatch.setattr(Client, "upload_file", upload_file)
    # the worker start-up ignores SIGINT, which only a process's main thread may do: this
    # cluster's worker is a thread of the test's process, so only the thread count is set
    import benchmarks.runner as runner

    monkeypatch.setattr(runner, "_init_worker", lambda: torch.set_num_threads(1))
    profile = tiny_profile([method("attack")], instances=digits_instances(2))
    out = tmp_path / "res.jsonl"
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        summary = run_benchmark(profile, out, scheduler=cluster.scheduler_address, progress=False)
    assert summary["ran"] == summary["total"] == 2
    assert {"benchmarks/__init__.py", "benchmarks/methods.py", "benchmarks/runner.py"} <= set(
        uploaded
    )
    assert len(archives) == 1 and not archives[0].exists()  # the temporary zip is deleted
    records = read_results(out)
    assert sorted(record_key(r) for r in records) == sorted(t.key for t in make_tasks(profile))
    for r in records:
        assert r["status"] in ("adversarial", "unknown"), r.get("error")
        data = bm.load_instance(next(i for i in profile.instances if i.id == r["instance"]))
        assert r["label"] == data.label and r["target"] == data.target
        if r["found"]:
            assert r["dense_margin"] < 0 and r["in_domain"]


def test_interrupting_a_run_cancels_the_queued_work_and_a_rerun_resumes(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    import benchmarks.runner as runner

    calls = []

    def fake(data, spec, time_limit, threads, seed):
        calls.append(spec.name)
        return {"status": "unknown", "x": None}

    class Pool(ThreadPoolExecutor):  # the process pool's interface, in threads
        def __init__(self, jobs, mp_context=None, initializer=None):
            super().__init__(1)

    monkeypatch.setitem(bm.RUNNERS, "fake", fake)
    monkeypatch.setattr(runner, "ProcessPoolExecutor", Pool)
    append = runner._append
    written = []

    def append_then_interrupt(path, record):
        append(path, record)
        written.append(record)
        raise KeyboardInterrupt  # Ctrl-C while the first result is written

    monkeypatch.setattr(runner, "_append", append_then_interrupt)
    profile = tiny_profile([MethodSpec(f"fake-{k}", "fake") for k in range(4)])
    out = tmp_path / "res.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(profile, out, jobs=2, progress=False)
    total = len(profile.tasks())
    assert len(written) == 1
    assert len(calls) < total  # the queued runs were cancelled, not run
    monkeypatch.setattr(runner, "_append", append)
    summary = run_benchmark(profile, out, jobs=1, progress=False)
    assert summary["done_before"] == 1 and summary["ran"] == total - 1


def test_cli_run_and_quick_on_a_tiny_profile(tmp_path, monkeypatch, capsys):
    import benchmarks.__main__ as cli

    profile = tiny_profile([method("attack")], instances=digits_instances(1))
    monkeypatch.setattr(cli, "get_profile", lambda name: profile)
    out = tmp_path / "run.jsonl"
    args = ["--profile", "smoke", "--output", str(out), "--jobs", "1", "--no-progress"]
    assert main(["run", *args, "--time-limit", "3"]) == 0
    records = read_results(out)
    assert [r["method"] for r in records] == ["attack"] and records[0]["time_limit"] == 3.0
    assert "1 runs done now, 0 of 1 were already in" in capsys.readouterr().err
    # quick: the same run (resumed: nothing left), then the report of the file
    assert main(["quick", *args]) == 0
    captured = capsys.readouterr()
    assert "0 runs done now, 1 of 1 were already in" in captured.err
    assert "## Verification" in captured.out and "| attack |" in captured.out
    assert (tmp_path / "run" / "report.md").is_file()
    assert len(read_results(out)) == 1


# ------------------------------------------------------------------------------ baselines' paths


def test_baselines_too_large_for_the_licence_are_skipped_not_failed(monkeypatch):
    import gurobipy as gp

    import gurobi_sparse_surrogate as gss
    from gurobi_sparse_surrogate.license import SizeReport

    inst = digits_instances(1)[0]
    # the size check before solving says no
    monkeypatch.setattr(gss, "check_model_size", lambda m: SizeReport(2500, 10, 2400))
    rec = bm.run_method(inst, method("gurobi-ml"), time_limit=5.0)
    assert rec["status"] == "skipped" and "2500 variables" in rec["reason"]
    assert "gurobi-ml embeds every neuron" in rec["reason"] and not rec["found"]
    monkeypatch.undo()

    # Gurobi itself refuses the model (a limit the check did not foresee)
    def refuse(*args, **kwargs):
        raise gp.GurobiError(10010, "Model too large for size-limited license")

    monkeypatch.setattr(bm, "optimize_judging", refuse)
    rec = bm.run_method(inst, method("paper", rate=0.5), time_limit=5.0)
    assert rec["status"] == "skipped" and "size-limited Gurobi licence" in rec["reason"]

    def broken(*args, **kwargs):
        raise gp.GurobiError(10005, "something else")

    monkeypatch.setattr(bm, "optimize_judging", broken)
    rec = bm.run_method(inst, method("gurobi-ml"), time_limit=5.0)
    assert rec["status"] == "error" and "something else" in rec["error"]


def test_attack_stage_rescues_a_solve_that_found_nothing(monkeypatch):
    inst = maximization_instances([(4, 1, 8)], seeds=(0,))[0]
    data = bm.load_instance(inst)
    solves = []

    def nothing(data, embedded, **kwargs):  # the solver ran out of time without a solution
        solves.append(kwargs["mip_start"])
        return {"status": "unknown", "x": None, "time_to_first": None, "history": []}

    monkeypatch.setattr(bm, "_gurobi_ml_solve", nothing)
    rec = bm.run_method(inst, method("gurobi-ml", attack=True), time_limit=10.0)
    # the attack's point was the MIP start and, the solve having nothing, is the answer
    assert solves[0] is not None and data.domain.contains(solves[0])
    assert rec["status"] == "feasible" and rec["found"]
    assert rec["value"] == pytest.approx(data.score(solves[0]), abs=1e-9)
    assert rec["time_to_first"] == rec["time_to_best"] == pytest.approx(rec["attack_seconds"])
    # without the attack stage the same solve finds nothing
    rec = bm.run_method(inst, method("gurobi-ml"), time_limit=10.0)
    assert rec["status"] == "unknown" and not rec["found"] and solves[-1] is None


# ------------------------------------------------------------------------------ report wording


def _reading_of(records) -> str:
    frame = load_results(records)
    tables = {s: suite_table(frame, s) for s in sorted(set(frame["suite"]))}
    return reading(frame, tables)


def test_reading_never_calls_a_faster_method_slowest():
    v = "verification"
    records = [_rec(v, f"i{k}", "gurobi-ml", True, 4.0) for k in range(3)]
    records += [_rec(v, f"i{k}", "surrogate-0.8", True, 1.0, rate=0.8) for k in range(3)]
    records += [_rec(v, f"i{k}", "paper-0.8", True, 2.0, rate=0.8) for k in range(3)]
    text = _reading_of(records)
    # ratios 0.25 and 0.5: both faster than gurobi-ml, so none is "slowest"
    assert "Slowest" not in text
    assert "Fastest against gurobi-ml by median time ratio: surrogate-0.8" in text
    assert "Every method with pairs was faster than gurobi-ml" in text
    records += [_rec(v, f"i{k}", "dense", True, 8.0) for k in range(3)]
    text = _reading_of(records)
    assert "Slowest, slower than gurobi-ml: dense (median 2.00x)" in text


def test_reading_names_the_best_method_without_an_attack_stage():
    v = "verification"
    records = [_rec(v, f"i{k}", "gurobi-ml", True, 4.0) for k in range(2)]
    records += [_rec(v, f"i{k}", "dense+attack", True, 1.0) for k in range(2)]
    records += [_rec(v, f"i{k}", "attack", True, 0.5) for k in range(2)]
    records += [_rec(v, f"i{k}", "dense", True, 2.0) for k in range(2)]
    frame = load_results(records)
    tables = {v: suite_table(frame, v), "maximization": suite_table(frame, "maximization")}
    assert tables["maximization"].empty  # no maximization run: no paragraph for it
    text = reading(frame, tables)
    assert "Fastest against gurobi-ml by median time ratio: attack (median 0.12x" in text
    # the attack alone and dense+attack have attack stages: dense is the best MILP (4 s / 2 s)
    assert "Best without an attack stage: dense (median 0.50x, 2 wins, 0 losses)." in text
    assert "Maximization" not in text


def test_reading_with_no_faster_method_and_nothing_solved():
    v = "verification"
    records = [_rec(v, f"i{k}", "gurobi-ml", True, 1.0) for k in range(2)]
    records += [_rec(v, f"i{k}", "dense", True, 3.0) for k in range(2)]
    text = _reading_of(records)
    assert "Fastest" not in text
    assert "No method was faster than gurobi-ml by median time ratio; the closest: dense" in text
    nothing = [_rec(v, f"i{k}", m, False) for k in range(2) for m in ("gurobi-ml", "dense")]
    text = _reading_of(nothing)
    assert "Most instances solved" not in text and "(0%)" not in text
    assert "No method found a dense-adversarial input on any instance." in text


def test_main_table_is_narrow_and_the_csv_has_every_column(hand_made, tmp_path):
    out = tmp_path / "report"
    markdown = write_report(hand_made, out, plots=False)
    section = markdown.split("## Verification")[1]
    header = next(line for line in section.splitlines() if line.startswith("| method"))
    assert header.count("|") - 1 <= 9
    csv = pd.read_csv(out / "verification.csv")
    for column in ("geomean_ratio", "n_ratio", "paper_ref", "disjunctions", "stable", "unstable"):
        assert column in csv.columns
    assert "verification.csv" in section


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--profile", "smoke", "--methods", "foo"], "unknown method(s) foo"),
        (["quick", "--methods", "dense", "bar"], "unknown method(s) bar"),
        (["run", "--profile", "smoke", "--jobs", "0"], "--jobs: must be positive"),
        (["run", "--profile", "smoke", "--time-limit", "x"], "--time-limit: expected a float"),
        (["run", "--profile", "nope"], "invalid choice: 'nope'"),
    ],
)
def test_cli_rejects_bad_values_with_an_argparse_error(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    if "unknown method" in message:
        assert "valid: gurobi-ml" in err and "surrogate-0.8" in err


# ------------------------------------------------------------------------------ mnistfc


def linf_digits_instances(radii=(0.02, 0.3)) -> list[Instance]:
    """Untargeted L-infinity instances on the 8x8 digits (the mnistfc protocol, tiny)."""
    base = digits_instances(1)[0]
    return [
        Instance(
            "verification",
            f"mnistfc-1x8-digits-r{r:g}",
            {**base.params, "radius": r, "norm": "linf", "target": "any"},
        )
        for r in radii
    ]


def test_mnistfc_profiles_and_instances():
    from benchmarks.suites import mnistfc_instances

    full, reduced = get_profile("mnistfc"), get_profile("mnistfc-reduced")
    assert [m.name for m in full.methods] == ["gurobi-ml-loop", "dense-loop", "dense+attack"]
    archs = {tuple(i.params["hidden"]) for i in full.instances}
    assert archs == {(256,) * 2, (256,) * 4, (256,) * 6}
    assert {i.params["radius"] for i in full.instances} == {0.03, 0.05}
    assert all(i.params["norm"] == "linf" and i.params["target"] == "any" for i in full.instances)
    assert len(full.instances) == 2 * (15 + 8 + 8) and full.time_limit == 120.0
    assert len(reduced.instances) == 2 * (5 + 2 + 2) and reduced.time_limit == 60.0
    assert mnistfc_instances([(256, 256)], 3) == mnistfc_instances([(256, 256)], 3)


def test_instance_patterns_select_a_subset_of_a_profile():
    profile = get_profile("mnistfc")
    tasks = make_tasks(profile, methods=["dense-loop"], instances=["mnistfc-2x256*"])
    ids = {t.instance.id for t in tasks}
    expected = {i.id for i in profile.instances if tuple(i.params["hidden"]) == (256, 256)}
    assert ids == expected and len(ids) == 30
    both = make_tasks(profile, instances=["*-r0.03", "mnistfc-4x256-*-r0.05"])
    assert {(i.instance.params["radius"], len(i.instance.params["hidden"])) for i in both} == {
        (0.03, 2),
        (0.03, 4),
        (0.03, 6),
        (0.05, 4),
    }
    with pytest.raises(ValueError, match=r"pattern\(s\) \['nope\*'\] match no instance"):
        make_tasks(profile, instances=["mnistfc-2x256*", "nope*"])


def test_cli_instances_option(capsys, monkeypatch):
    import benchmarks.runner as runner

    seen = {}

    def fake_run(profile, output, **kwargs):
        seen.update(kwargs)
        return {"total": 0, "done_before": 0, "ran": 0}

    monkeypatch.setattr(runner, "run_benchmark", fake_run)
    argv = ["run", "--profile", "mnistfc", "--output", "x.jsonl", "--instances", "*2x256*r0.05"]
    assert main(argv) == 0
    assert seen["instances"] == ["*2x256*r0.05"]
    with pytest.raises(SystemExit) as stop:
        main(["run", "--profile", "mnistfc", "--instances", "mnistfc-9x*"])
    assert stop.value.code == 2
    assert "instance pattern(s) mnistfc-9x* match no instance" in capsys.readouterr().err


def test_class_loops_and_find_adversarial_agree_on_untargeted_linf_instances():
    from benchmarks.mnistfc import format_mnistfc, mnistfc_summary

    records = []
    for inst in linf_digits_instances():
        data = bm.load_instance(inst)
        assert data.untargeted and type(data.domain).__name__ == "LinfBall"
        run = {}
        for spec in (method("gurobi-ml-loop"), method("dense-loop"), method("dense", attack=True)):
            rec = bm.run_method(inst, spec, time_limit=30.0)
            assert rec["status"] in ("adversarial", "robust"), rec.get("error")
            if rec["status"] == "adversarial":  # judged by a float64 torch pass, any class
                assert rec["found"] and rec["dense_margin"] < 0 and rec["in_domain"]
            run[spec.name] = rec["status"]
            records.append({**rec, "instance": inst.id, "method": spec.name, "time_limit": 30.0})
        assert len(set(run.values())) == 1, run  # the three methods agree
    rows = mnistfc_summary(records)
    assert {r["method"] for r in rows} == {"gurobi-ml-loop", "dense-loop", "dense+attack"}
    assert all(r["wrong"] == 0 and r["solved"] == 2 for r in rows)
    assert "geomean" in format_mnistfc(rows)


def test_mnistfc_summary_flags_contradicted_proofs():
    from benchmarks.mnistfc import mnistfc_summary

    records = [
        {"instance": "mnistfc-2x256-a", "method": "gurobi-ml-loop", "status": "adversarial",
         "found": True, "runtime": 4.0, "time_limit": 60},
        {"instance": "mnistfc-2x256-a", "method": "dense-loop", "status": "robust",
         "runtime": 2.0, "time_limit": 60},
        {"instance": "mnistfc-2x256-b", "method": "gurobi-ml-loop", "status": "unknown",
         "runtime": 60.0, "time_limit": 60},
        {"instance": "mnistfc-2x256-b", "method": "dense-loop", "status": "robust",
         "runtime": 6.0, "time_limit": 60},
    ]  # fmt: skip
    rows = {r["method"]: r for r in mnistfc_summary(records)}
    assert rows["dense-loop"]["wrong"] == 1 and rows["gurobi-ml-loop"]["wrong"] == 0
    assert rows["dense-loop"]["total_ratio"] == pytest.approx(64.0 / 8.0)
    assert rows["dense-loop"]["geomean_ratio"] == pytest.approx(math.sqrt(2.0 * 10.0))
    assert rows["dense-loop"]["min_ratio"] == pytest.approx(2.0)


def test_task_selection_and_results_file_edge_cases(tmp_path, monkeypatch):
    import gurobipy as gp

    import benchmarks.runner as runner
    import gurobi_sparse_surrogate as gss

    profile = tiny_profile([method("attack"), method("gurobi-ml")])
    with pytest.raises(ValueError, match=r"methods \['magic'\] are not in profile 'tiny'"):
        make_tasks(profile, methods=["magic", "attack"])
    assert {t.method.name for t in make_tasks(profile, methods=["attack"])} == {"attack"}
    assert make_tasks(profile, suites=["maximization"]) == []
    # blank lines, JSON that is not a record, and records without their key are skipped
    path = tmp_path / "odd.jsonl"
    good = {"suite": "verification", "instance": "i", "method": "attack", "status": "unknown"}
    path.write_text(
        "\n".join(["", json.dumps([1, 2]), json.dumps({"suite": "verification"}), json.dumps(good)])
        + "\n"
    )
    assert read_results(path) == [good]

    # the environment says when there is no licence at all, and a run still gets recorded
    def no_licence():
        raise gp.GurobiError(10009, "No Gurobi license found")

    monkeypatch.setattr(gss, "license_is_size_limited", no_licence)
    runner._static_environment.cache_clear()  # the licence is looked up once per process
    try:
        env = runner.environment(3)
    finally:
        runner._static_environment.cache_clear()
    assert env["licence"] == "unavailable (GurobiError: No Gurobi license found)"
    assert env["threads"] == 3 and env["gurobi_sparse_surrogate"] == gss.__version__

    def broken_environment(threads):
        raise OSError("no hostname")

    monkeypatch.setitem(bm.RUNNERS, "fake", lambda *a: {"status": "unknown", "x": None})
    monkeypatch.setattr(runner, "environment", broken_environment)
    rec = execute_task(Task(digits_instances(1)[0], MethodSpec("f", "fake"), 1.0, 1))
    assert rec["env"] == {"error": "OSError('no hostname')"} and rec["status"] == "unknown"


def test_instances_name_their_suite_and_size():
    with pytest.raises(ValueError, match="unknown suite 'sorting'"):
        Instance("sorting", "x", {})
    (inst,) = verification_instances([18], [(32, 16)], 1, seed=0)
    # gurobi-ml's dense embedding on 18x18 inputs in an L1 ball: 2 variables per neuron, the
    # inputs and one absolute value each, the 10 outputs
    n_in, neurons = 18 * 18, 32 + 16
    assert inst.estimated_size() == (2 * n_in + 2 * neurons + 10, neurons + 10 + 2 * n_in + 1)
    assert inst.network_key() == ("v", "mnist", 18, (32, 16), inst.params["net_seed"])
    assert "32-16" in inst.id
