"""The attack-resistant instance set: where the MILP, not the attack, decides.

On the paper's own instances the gradient attack finds most adversarial inputs in
milliseconds, so "time to the first dense adversarial" would measure the attack. This module
screens seeded instances of the paper's family (MNIST 28x28 and 18x18, 2x64 and 4x64 MLPs,
runner-up target, L1 balls) with the attack at a fixed *step* budget (deterministic, no
wall-clock), keeps the instances where it fails, and solves each once, long, with the
package's dense model for its ground truth:

``sat``
    an input of the domain the dense network classifies differently; it is stored, so anyone
    can re-check it with a torch forward pass;
``unsat``
    proved robust: the dense MILP's bound on the margin is positive;
``open``
    neither within the ground-truth time limit.

The set is a versioned data file, ``benchmarks/data/hard_instances.json``, written only by
``python -m benchmarks make-hard`` (regenerated on purpose, never at run time), with the budget,
the radii, the time limit and the package version that made it. The ``hard`` profile of
:mod:`benchmarks.suites` reads it; each instance carries its ground truth in its parameters.
"""

from __future__ import annotations

import base64
import datetime
import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .suites import Instance, verification_instances

#: The bundled data file of the hard set.
HARD_FILE = Path(__file__).parent / "data" / "hard_instances.json"
#: Version of the file's layout.
FILE_VERSION = 1
#: The attack budget of the screening: a fixed number of steps, no time limit, so the
#: screening is the same on every machine. It is stronger than the benchmark methods' own
#: attack stage (100 steps x 5 restarts within a second).
SCREEN_ATTACK = {"steps": 200, "restarts": 10, "time_budget": None}
#: The paper's family of verification instances that the screening draws from.
SCREEN_SIZES = (28, 18)
SCREEN_HIDDENS = ((64, 64), (64, 64, 64, 64))
#: L1 radii bands screened: the paper's U[4.5, 5.5] and two wider bands (at the paper's
#: radius almost every attack-resistant instance is robust).
SCREEN_RADII = ((4.5, 5.5), (6.5, 7.5), (9.0, 11.0))


def encode_array(x: np.ndarray) -> str:
    """A float64 vector as compact text (zlib-compressed bytes in base64)."""
    raw = np.ascontiguousarray(np.asarray(x, dtype="<f8")).tobytes()
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def decode_array(text: str) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<f8").copy()


def candidates(n_images: int, seed: int = 1) -> list[Instance]:
    """The screened instances: ``n_images`` per network and radius band, seeded.

    The seed differs from the quick and paper profiles' (0), so the images are new ones.
    """
    out: list[Instance] = []
    for band in SCREEN_RADII:
        instances = verification_instances(
            SCREEN_SIZES, SCREEN_HIDDENS, n_images, seed=seed + int(band[0] * 10), radius=band
        )
        out += [
            Instance("verification", f"{inst.id}-r{inst.params['radius']:g}", inst.params)
            for inst in instances
        ]
    return out


def attack_fails(instance: Instance, cache_dir: str | None, seed: int = 0) -> dict[str, Any]:
    """Run the screening attack; return its margin and whether it failed (margin >= 0)."""
    from gurobi_sparse_surrogate.applications.attacks import pgd_attack

    from .methods import load_instance

    data = load_instance(instance, cache_dir)
    res = pgd_attack(
        data.network,
        data.x0,
        data.domain,
        true_label=data.label,
        target=data.target,
        seed=seed,
        **SCREEN_ATTACK,
    )
    margin = data.score(np.asarray(res.x, dtype=np.float64))
    return {"attack_margin": margin, "attack_failed": bool(margin >= 0)}


def ground_truth(
    instance: Instance, time_limit: float, cache_dir: str | None, threads: int = 1
) -> dict[str, Any]:
    """Solve the instance once with the package's dense model, without an attack stage."""
    from gurobi_sparse_surrogate import find_adversarial

    from .methods import MARGIN_TOL, load_instance

    data = load_instance(instance, cache_dir)
    res = find_adversarial(
        data.network,
        data.x0,
        data.domain,
        target=data.target,
        true_label=data.label,
        time_limit=time_limit,
        threads=threads,
        attack=False,
        stop_at_first=True,
    )
    truth: dict[str, Any] = {"truth_seconds": round(float(res.runtime), 3)}
    if res.status == "adversarial":
        x = np.asarray(res.x, dtype=np.float64)
        verdict = data.verdict(x)
        if verdict["valid"] and verdict["score"] < -MARGIN_TOL:
            truth.update(truth="sat", truth_margin=verdict["score"], adversarial=encode_array(x))
            return truth
    if res.status == "robust":
        truth.update(truth="unsat", truth_bound=getattr(res, "bound", None))
        return truth
    truth["truth"] = "open"
    return truth


def make_hard_set(
    n_images: int = 10,
    *,
    time_limit: float = 120.0,
    cache_dir: str | None = "results/cache",
    output: Path = HARD_FILE,
    threads: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Screen, solve and write the hard set (see the module docstring). Returns the file's
    content."""
    from tqdm.auto import tqdm

    import gurobi_sparse_surrogate

    pool = candidates(n_images)
    kept: list[dict[str, Any]] = []
    screened = 0
    for inst in tqdm(pool, desc="screening", unit="instance", disable=not progress):
        screened += 1
        attack = attack_fails(inst, cache_dir)
        if not attack["attack_failed"]:
            continue
        record = {"id": inst.id, "params": dict(inst.params), **attack}
        record.update(ground_truth(inst, time_limit, cache_dir, threads))
        kept.append(record)
    content = {
        "version": FILE_VERSION,
        "created": datetime.date.today().isoformat(),
        "package_version": gurobi_sparse_surrogate.__version__,
        "attack_budget": SCREEN_ATTACK,
        "radii": [list(b) for b in SCREEN_RADII],
        "truth_time_limit": time_limit,
        "screened": screened,
        "screened_cells": screened_cells(pool),
        "instances": kept,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(content, indent=1) + "\n")
    return content


def load_hard_set(path: Path = HARD_FILE) -> dict[str, Any]:
    """The recorded hard set (raises ``FileNotFoundError`` naming the command that makes it)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: make it with `python -m benchmarks make-hard`"
        )
    content = json.loads(path.read_text())
    if content.get("version") != FILE_VERSION:
        raise ValueError(
            f"{path} has layout version {content.get('version')}, expected {FILE_VERSION}"
        )
    return content


def hard_instances(
    truths: Sequence[str] = ("sat", "unsat"), limit: int | None = None, path: Path = HARD_FILE
) -> list[Instance]:
    """Instances of the hard set with the given ground truths, their truth in ``params``."""
    records = [r for r in load_hard_set(path)["instances"] if r["truth"] in truths]
    out = []
    for r in records[:limit]:
        params = dict(r["params"])
        params["truth"] = r["truth"]
        if "adversarial" in r:
            params["adversarial"] = r["adversarial"]
        out.append(Instance("verification", r["id"], params))
    return out


def _cell(instance_id: str, radius: float, radii: Sequence[Sequence[float]]) -> tuple[str, str]:
    """(network, radius band) of an instance, e.g. ``("mnist28-2x64", "U[4.5,5.5]")``."""
    band = next((f"U[{a:g},{b:g}]" for a, b in radii if a <= radius <= b), f"{radius:g}")
    return instance_id.split("-s")[0], band


def summary_table(content: dict[str, Any]) -> list[dict[str, Any]]:
    """Screened and attack-resistant instances per network and radius band, by ground truth
    (so it also says where hard adversarial instances are common)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for cell in content["screened_cells"]:
        rows[(cell["network"], cell["radius"])] = {
            "screened": cell["screened"],
            "sat": 0,
            "unsat": 0,
            "open": 0,
        }
    for r in content["instances"]:
        cell = _cell(r["id"], r["params"]["radius"], content["radii"])
        rows[cell][r["truth"]] += 1
    return [
        {"network": net, "radius": band, **c, "resistant": c["sat"] + c["unsat"] + c["open"]}
        for (net, band), c in rows.items()
    ]


def screened_cells(pool: Sequence[Instance]) -> list[dict[str, Any]]:
    """How many instances of ``pool`` fall in each (network, radius band) cell."""
    counts: dict[tuple[str, str], int] = {}
    for inst in pool:
        cell = _cell(inst.id, inst.params["radius"], SCREEN_RADII)
        counts[cell] = counts.get(cell, 0) + 1
    return [{"network": n, "radius": b, "screened": k} for (n, b), k in counts.items()]


def summary(content: dict[str, Any]) -> str:
    """:func:`summary_table` as markdown, with a header line."""
    budget = content["attack_budget"]
    lines = [
        f"{len(content['instances'])} of {content['screened']} screened instances resist the "
        f"attack ({budget['steps']} steps x {budget['restarts']} restarts)",
        "",
        "| network | radius | screened | resistant | sat | unsat | open |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in summary_table(content):
        lines.append(
            f"| {row['network']} | {row['radius']} | {row['screened']} | {row['resistant']} | "
            f"{row['sat']} | {row['unsat']} | {row['open']} |"
        )
    return "\n".join(lines)
