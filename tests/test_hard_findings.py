"""The attack-resistant instance set (benchmarks/hard.py) and the findings tables."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from benchmarks import hard
from benchmarks.__main__ import main
from benchmarks.findings import compare, tables, write_findings
from benchmarks.methods import load_instance
from benchmarks.suites import Instance, get_profile, method, verification_instances

#: Attack margin above which the screening attack's failure is expected on any machine.
CLEAR_MARGIN = 0.25


def test_arrays_round_trip_exactly():
    x = np.random.default_rng(0).random(324)
    assert np.array_equal(hard.decode_array(hard.encode_array(x)), x)


def test_the_bundled_hard_set_is_honest(tmp_path):
    """Every stored adversarial input lies in its domain and is misclassified by the torch
    network, and the screening attack with the recorded budget fails on the instance.

    The attack is a local search in floating point: an instance it failed on by a hair (the one
    sat instance's margin is 0.011) can fall on another machine, whose training and attack round
    differently. So the attack is re-run on the instances it failed on by a clear margin.
    """
    content = hard.load_hard_set()
    assert content["attack_budget"] == hard.SCREEN_ATTACK
    assert content["instances"], "the hard set is empty"
    sat = [r for r in content["instances"] if r["truth"] == "sat"]
    assert sat, "the hard set has no adversarial instance"
    for record in sat[:3]:
        inst = Instance("verification", record["id"], record["params"])
        data = load_instance(inst, str(tmp_path))
        x = hard.decode_array(record["adversarial"])
        assert bool(data.domain.contains(x, tol=1e-6)), record["id"]
        outputs = data.outputs(x)
        assert int(np.argmax(outputs)) != data.label, record["id"]
    clear = [r for r in content["instances"] if r["attack_margin"] >= CLEAR_MARGIN]
    assert len(clear) >= 3
    for record in clear[:3]:
        inst = Instance("verification", record["id"], record["params"])
        assert hard.attack_fails(inst, str(tmp_path))["attack_failed"], record["id"]
    assert sum(c["screened"] for c in content["screened_cells"]) == content["screened"]
    for record in content["instances"]:
        assert record["truth"] in ("sat", "unsat", "open")
        assert record["attack_margin"] >= 0


def test_hard_profile_carries_the_ground_truth():
    profile = get_profile("hard")
    verification = [i for i in profile.instances if i.suite == "verification"]
    assert verification and all(i.params["truth"] in ("sat", "unsat", "open") for i in verification)
    assert all("adversarial" in i.params for i in verification if i.params["truth"] == "sat")
    names = {m.name for m in profile.methods}
    assert {"surrogate-0.8-bound-aware", "surrogate-0.8-activation-aware", "gurobi-ml"} <= names
    for inst in profile.instances:
        if inst.suite == "maximization":  # chosen as the largest that fit the licence
            variables, constraints = inst.estimated_size()
            assert variables <= 2000 and constraints <= 2000, inst.id


def test_make_hard_set_screens_and_solves(tmp_path, monkeypatch):
    insts = verification_instances([8], [(8,)], 3, dataset="digits", n_test=360, seed=3)
    insts = [Instance(i.suite, i.id, {**i.params, "radius": 3.0}) for i in insts]
    monkeypatch.setattr(hard, "candidates", lambda n_images: insts[:n_images])
    out = tmp_path / "hard.json"
    content = hard.make_hard_set(3, time_limit=20.0, cache_dir=str(tmp_path), output=out)
    assert json.loads(out.read_text()) == content
    assert content["screened"] == 3
    assert sum(c["screened"] for c in content["screened_cells"]) == 3
    for record in content["instances"]:
        inst = Instance("verification", record["id"], record["params"])
        data = load_instance(inst, str(tmp_path))
        if record["truth"] == "sat":
            x = hard.decode_array(record["adversarial"])
            assert data.domain.contains(x, tol=1e-6)
            assert data.score(x) < 0
    kept = {r["id"] for r in content["instances"]}
    for inst in insts:  # an instance is kept exactly when the attack fails on it
        assert (inst.id in kept) == hard.attack_fails(inst, str(tmp_path))["attack_failed"]
    assert "screened instances resist the attack" in hard.summary(content)
    loaded = hard.hard_instances(("sat", "unsat", "open"), path=out)
    assert [i.id for i in loaded] == [r["id"] for r in content["instances"]]


def test_missing_or_foreign_hard_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="make-hard"):
        hard.load_hard_set(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        hard.load_hard_set(bad)


def _record(instance, method_name, found, t, suite="verification", value=None, pruning=0.0):
    spec = {
        "gurobi-ml": method("gurobi-ml"),
        "dense": method("dense"),
        "surrogate-0.8": method("surrogate", rate=0.8),
        "surrogate-0.8-finetuned": method("surrogate", rate=0.8, finetune=True),
        "surrogate-0.8-bound-aware": method("surrogate", rate=0.8, criterion="bound"),
    }[method_name]
    return {
        "suite": suite,
        "instance": instance,
        "method": method_name,
        "kind": spec.kind,
        "family": spec.family,
        "rate": spec.rate,
        "status": "adversarial" if found else "unknown",
        "found": found,
        "time_to_first": t if found else None,
        "runtime": t,
        "value": value,
        "time_limit": 10.0,
        "options": spec.options,
        "pruning_seconds": pruning,
    }


def test_findings_count_wins_and_ratios_by_hand(tmp_path):
    records = [
        # i1: surrogate 1 s, dense 4 s -> win, ratio 0.25
        _record("i1", "surrogate-0.8", True, 1.0),
        _record("i1", "dense", True, 4.0),
        # i2: surrogate found nothing, dense 2 s -> loss
        _record("i2", "surrogate-0.8", False, 10.0),
        _record("i2", "dense", True, 2.0),
        # i3: both 3 s -> tie
        _record("i3", "surrogate-0.8", True, 3.0),
        _record("i3", "dense", True, 3.0),
        # finetuning: 5 s with 4 s of it pruning/finetuning, against 2 s with 0.5 s
        _record("i1", "surrogate-0.8-finetuned", True, 5.0, pruning=4.0),
        _record("i1", "surrogate-0.8-bound-aware", True, 0.5),
    ]
    results = tmp_path / "toy.jsonl"
    results.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    from benchmarks.report import load_results

    frame = load_results(results)
    row = compare(frame, "verification", "surrogate-0.8", "dense")
    assert (row["wins"], row["losses"], row["ties"], row["instances"]) == (1, 1, 1, 3)
    assert row["median"] == pytest.approx((0.25 + 1.0) / 2)
    counted = compare(frame, "verification", "surrogate-0.8-finetuned", "surrogate-0.8")
    assert counted["median"] == pytest.approx(5.0)
    excluded = compare(
        frame, "verification", "surrogate-0.8-finetuned", "surrogate-0.8", exclude_pruning=True
    )
    assert excluded["median"] == pytest.approx(1.0)
    tabs = tables(frame)
    assert list(tabs["d"]["method"]) == ["surrogate-0.8-bound-aware"]
    assert tabs["c"].empty and tabs["e"].empty
    text = write_findings([results], tmp_path / "out")
    assert "surrogate-0.8 vs dense: 1 wins" in text
    csv = pd.read_csv(tmp_path / "out" / "findings_a.csv")
    assert csv.loc[0, "profile"] == "toy" and csv.loc[0, "wins"] == 1
    assert main(["findings", str(results), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "findings_d.csv").is_file()
    assert main(["findings", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path)]) == 2


@pytest.fixture
def trained_once(monkeypatch):
    """Train each classifier once in this test (the instances differ only in their radius)."""
    import functools

    from benchmarks import methods

    train = methods.classifier
    memo = functools.cache(lambda key, inst, cache_dir: train(inst, cache_dir))
    monkeypatch.setattr(
        methods,
        "classifier",
        lambda inst, cache_dir=None: memo(inst.network_key(), inst, cache_dir),
    )


def _digits_instance(radius: float) -> Instance:
    (inst,) = verification_instances([8], [(8,)], 1, dataset="digits", n_test=360, seed=3)
    return Instance(inst.suite, f"{inst.id}-r{radius:g}", {**inst.params, "radius": radius})


def test_ground_truth_stores_a_checkable_adversarial_input_and_proofs(trained_once):
    from conftest import forward64

    wide = _digits_instance(8.0)  # an L1 ball of radius 8 on 64 pixels holds another digit
    truth = hard.ground_truth(wide, time_limit=60.0, cache_dir=None)
    assert truth["truth"] == "sat", truth
    data = load_instance(wide)
    x = hard.decode_array(truth["adversarial"])
    assert bool(data.domain.contains(x, tol=1e-6))
    out = forward64(data.network, x)[0]
    assert int(np.argmax(out)) != data.label
    assert truth["truth_margin"] == pytest.approx(out[data.label] - out[data.target], abs=1e-6)

    tiny = _digits_instance(0.01)
    truth = hard.ground_truth(tiny, time_limit=60.0, cache_dir=None)
    assert truth["truth"] == "unsat", truth
    assert truth["truth_bound"] > 0 and "adversarial" not in truth
    data = load_instance(tiny)
    samples = data.domain.sample(200, np.random.default_rng(0))
    out = forward64(data.network, samples)
    assert (out.argmax(axis=1) == data.label).all()  # sampling never contradicts the proof


def test_ground_truth_is_open_without_a_verdict_or_with_a_false_claim(monkeypatch):
    import gurobi_sparse_surrogate as gss

    inst = _digits_instance(0.01)
    data = load_instance(inst)
    answers = iter(
        [
            SimpleNamespace(status="unknown", runtime=3.0, x=None),
            # a claimed adversarial input that the dense network classifies correctly
            SimpleNamespace(status="adversarial", runtime=2.0, x=data.x0.copy()),
        ]
    )
    monkeypatch.setattr(gss, "find_adversarial", lambda *a, **k: next(answers))
    assert hard.ground_truth(inst, 1.0, None) == {"truth": "open", "truth_seconds": 3.0}
    assert hard.ground_truth(inst, 1.0, None) == {"truth": "open", "truth_seconds": 2.0}


def test_candidates_draw_each_network_and_radius_band():
    pool = hard.candidates(2)
    cells = len(hard.SCREEN_SIZES) * len(hard.SCREEN_HIDDENS) * len(hard.SCREEN_RADII)
    assert len(pool) == 2 * cells and len({i.id for i in pool}) == len(pool)
    for inst in pool:
        assert inst.id.endswith(f"-r{inst.params['radius']:g}")
    for row in hard.screened_cells(pool):  # each radius falls in its band, 2 per cell
        assert row["screened"] == 2 and row["radius"].startswith("U[")
    assert [i.id for i in hard.candidates(2)] == [i.id for i in pool]  # seeded
