"""The methods compared by the benchmark, each judged on the dense network.

A method takes an :class:`InstanceData` (the dense network, the domain and, for verification,
the image and its top-2 classes) and returns a dict of raw results. :func:`run_method` wraps
every method the same way: it times it, re-checks the returned point with a float64 torch
forward pass of the dense network and ``domain.contains`` (projecting onto the domain first
when the solver's point violates it by more than tolerances), records the surrogate's accuracy
(outside the timing), and turns licence-size errors into ``skipped`` and any other error into
``error`` instead of raising.

Baselines implemented here:

``gurobi-ml`` (``-obbt``)
    ``gurobi_ml.add_predictor_constr`` on the dense network (a plain ``nn.Sequential``), the
    same domain constraints, objective ``min y_true - y_target`` (verification) or ``max y``
    (maximization), a MIPSOL callback that stops at the first incumbent adversarial for the
    dense net, Gurobi's default parameters (``Obbt=3`` for the ``-obbt`` variant).
``paper-R``
    Global unstructured magnitude pruning to ``R`` (no finetuning) with
    :func:`~gurobi_sparse_surrogate.network.pruning.prune_network`, converted to a plain
    ``nn.Sequential`` with permanent zeros so that gurobi-ml's own formulation embeds it; every
    incumbent is re-scored on the dense network in a MIPSOL callback; no bounds of its own, no
    fallback, never a proof.
``attack``
    :func:`~gurobi_sparse_surrogate.applications.attacks.pgd_attack` (or ``pgd_maximize``) alone.

``dense`` and ``surrogate-*`` go through the package's ``find_adversarial`` and
``maximize_output``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import math
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gurobi_sparse_surrogate.applications.adversarial import MARGIN_TOL, ROBUST_TOL
from gurobi_sparse_surrogate.solving import Incumbent, optimize_judging, proven_bound

from .suites import Instance, MethodSpec

#: Epochs of the finetuned surrogates (the built-in loop of ``prune_network``).
FINETUNE_EPOCHS = 1
#: Samples used to finetune / evaluate surrogates of random (maximization) networks.
REGRESSION_SAMPLES = 2000
#: Options of every attack stage (the package's defaults); the budget is :func:`_attack_budget`.
ATTACK_OPTIONS = {"steps": 100, "restarts": 5}
#: Tolerance of the domain check of a returned point.
DOMAIN_TOL = 1e-6
#: Largest number of history entries kept in a result line.
MAX_HISTORY = 200
_SIZE_LIMIT_ERRNO = 10010


class SkipRun(Exception):
    """The run cannot happen in this environment (e.g. too large for the licence)."""


# ------------------------------------------------------------------------------ instances


@dataclass
class InstanceData:
    """A materialised instance.

    Attributes
    ----------
    instance : Instance
    network : torch.nn.Sequential
        The dense network (float32, evaluation mode); never modified.
    domain : Domain
        ``L1Ball`` around the image (verification) or the box ``[0, 1]^n`` (maximization).
    x0 : numpy.ndarray or None
        The image (verification).
    label, target : int or None
        The dense network's top class at ``x0`` and the runner-up (verification).
    untargeted : bool
        Verification against every wrong class (the score is then ``out[label]`` minus the
        largest other output).
    train, test : tuple (X, y) or None
        Finetuning data and evaluation data of surrogates (classification labels for
        verification, dense outputs for maximization).
    """

    instance: Instance
    network: nn.Sequential
    domain: Any
    x0: np.ndarray | None = None
    label: int | None = None
    target: int | None = None
    train: tuple[np.ndarray, np.ndarray] | None = None
    test: tuple[np.ndarray, np.ndarray] | None = None
    network_accuracy: float | None = None
    untargeted: bool = False

    def __post_init__(self) -> None:
        self._net64 = _float64(self.network)

    @property
    def verification(self) -> bool:
        return self.instance.suite == "verification"

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Dense float64 forward pass at one point."""
        with torch.no_grad():
            t = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(1, -1))
            return self._net64(t)[0].numpy()

    def score(self, x: np.ndarray) -> float:
        """Dense margin ``out[label] - out[target]`` (verification) or output (maximization)."""
        out = self.outputs(x)
        if self.verification and self.untargeted:
            return float(out[self.label] - np.delete(out, self.label).max())
        if self.verification:
            return float(out[self.label] - out[self.target])
        return float(out[0])

    def verdict(self, x: Any) -> dict[str, Any]:
        """Re-check a point on the dense network: domain membership and dense score.

        A point outside the domain (beyond :data:`DOMAIN_TOL`, as a solver's point can be) is
        projected onto it first and marked ``projected``.
        """
        if x is None:
            return {"in_domain": None, "projected": False, "score": None, "valid": False}
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        projected = False
        if not bool(self.domain.contains(x, tol=DOMAIN_TOL)):
            x = np.asarray(self.domain.project(x), dtype=np.float64)
            projected = True
        inside = bool(self.domain.contains(x, tol=DOMAIN_TOL))
        score = self.score(x)
        valid = inside and (score < -MARGIN_TOL if self.verification else math.isfinite(score))
        return {"in_domain": inside, "projected": projected, "score": score, "valid": valid}

    def better(self, a: float, b: float | None) -> bool:
        """Whether dense score ``a`` beats ``b`` (lower margin, higher output)."""
        if b is None:
            return True
        return a < b if self.verification else a > b


def _float64(network: nn.Module) -> nn.Module:
    from gurobi_sparse_surrogate.network.extraction import float64_copy

    return float64_copy(network).eval()


_INSTANCE_CACHE: dict[tuple, InstanceData] = {}


def load_instance(instance: Instance, cache_dir: str | None = None) -> InstanceData:
    """Materialise ``instance`` (networks trained once and cached on disk under ``cache_dir``).

    Parameters
    ----------
    instance : Instance
    cache_dir : str or None
        Directory of trained classifiers (None trains in memory every time).

    Returns
    -------
    InstanceData
    """
    key = (instance.suite, instance.id, cache_dir)
    if key not in _INSTANCE_CACHE:
        if instance.suite == "verification":
            data = _load_verification(instance, cache_dir)
        else:
            data = _load_maximization(instance)
        _INSTANCE_CACHE.clear()  # one instance at a time per worker (networks can be large)
        _INSTANCE_CACHE[key] = data
    return _INSTANCE_CACHE[key]


def classifier(instance: Instance, cache_dir: str | None = None):
    """The trained classifier of a verification instance, with its data split.

    Returns
    -------
    (network, (X_train, y_train), (X_test, y_test), test_accuracy)
    """
    from gurobi_sparse_surrogate import datasets
    from gurobi_sparse_surrogate.data import checks, loaders, models, training

    from .suites import TRAIN_EPOCHS

    p = instance.params
    hidden, seed = tuple(p["hidden"]), int(p["net_seed"])
    if p.get("arch") == "cnn":
        return _cnn_classifier(p["size"], hidden, seed)
    if p.get("dataset", "mnist") == "digits":
        X, y = datasets.load_digits(size=p["size"])
        X_tr, X_te, y_tr, y_te = datasets.train_test_split(X, y, test_size=0.2, seed=seed)
        net = datasets.train_classifier(X_tr, y_tr, hidden, seed=seed, epochs=TRAIN_EPOCHS)
        return net, (X_tr, y_tr), (X_te, y_te), datasets.accuracy(net, X_te, y_te)
    cache = None
    if cache_dir is not None:
        arch = "x".join(map(str, hidden))
        # keyed by the training code too, so that a change to it retrains
        # the code that makes the data and trains the network: a change retrains
        sources = b"".join(
            Path(m.__file__).read_bytes() for m in (checks, loaders, models, training)
        )
        code = hashlib.sha256(sources).hexdigest()[:10]
        name = f"bench-mnist{p['size']}-{arch}-s{seed}-e{TRAIN_EPOCHS}-{code}"
        cache = Path(cache_dir) / name
        files = (cache.with_suffix(".pt"), cache.with_suffix(".npz"))
        if all(f.is_file() for f in files):
            # the network and its split, without loading and resizing MNIST again
            with np.load(files[1]) as z:
                train, test = (z["X_train"], z["y_train"]), (z["X_test"], z["y_test"])
                acc = float(z["accuracy"])
            return datasets.load_network(files[0]), train, test, acc
    clf = datasets.mnist_classifier(
        p["size"], hidden, seed=seed, cache_dir=cache_dir, epochs=TRAIN_EPOCHS
    )
    if cache is not None:
        _save_atomic(cache.with_suffix(".pt"), lambda f: datasets.save_network(clf.network, f))
        _save_atomic(
            cache.with_suffix(".npz"),
            lambda f: np.savez_compressed(
                f,
                X_train=clf.X_train,
                y_train=clf.y_train,
                X_test=clf.X_test,
                y_test=clf.y_test,
                accuracy=clf.test_accuracy,
            ),
        )
    return (
        clf.network,
        (clf.X_train, clf.y_train),
        (clf.X_test, clf.y_test),
        clf.test_accuracy,
    )


#: Training of the benchmark CNN (on the bundled MNIST digits): about 86% held-out accuracy.
CNN_TRAINING = {"epochs": 15, "lr": 1e-2, "augment": True}


def _cnn_classifier(size: int, hidden: Sequence[int], seed: int):
    """The benchmark CNN (:func:`~gurobi_sparse_surrogate.datasets.make_cnn`), trained in
    memory (a few seconds) on the bundled digits with a seeded 80/20 split."""
    from gurobi_sparse_surrogate import datasets

    X, y = datasets.load_mnist(size=size)
    X_tr, X_te, y_tr, y_te = datasets.train_test_split(X, y, test_size=0.2, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        untrained = datasets.make_cnn(size, hidden=int(hidden[0]) if hidden else 32)
    net = datasets.train_classifier(X_tr, y_tr, network=untrained, seed=seed, **CNN_TRAINING)
    return net, (X_tr, y_tr), (X_te, y_te), datasets.accuracy(net, X_te, y_te)


def _save_atomic(path: Path, write: Callable[[str], None]) -> None:
    """Write through a temporary file and rename, so concurrent readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _load_verification(instance: Instance, cache_dir: str | None) -> InstanceData:
    from gurobi_sparse_surrogate.domains import L1Ball, LinfBall

    p = instance.params
    net, train, test, acc = classifier(instance, cache_dir)
    X_test = test[0]
    if not 0 <= p["image"] < len(X_test):
        raise ValueError(f"image index {p['image']} outside the {len(X_test)} held-out images")
    x0 = np.asarray(X_test[p["image"]], dtype=np.float64)
    with torch.no_grad():
        out = _float64(net)(torch.as_tensor(x0.reshape(1, -1)))[0].numpy()
    order = np.argsort(-out, kind="stable")
    ball = LinfBall if p.get("norm", "l1") == "linf" else L1Ball
    return InstanceData(
        instance,
        net,
        ball(x0, float(p["radius"]), 0.0, 1.0),
        x0=x0,
        label=int(order[0]),
        target=int(order[1]),
        train=train,
        test=test,
        network_accuracy=acc,
        untargeted=p.get("target") == "any",
    )


def _load_maximization(instance: Instance) -> InstanceData:
    from gurobi_sparse_surrogate.datasets import random_relu_network
    from gurobi_sparse_surrogate.domains import Box

    p = instance.params
    n = int(p["n_inputs"])
    net = random_relu_network(n, p["depth"], p["width"], seed=p["seed"])
    rng = np.random.default_rng([p["seed"], n, p["depth"], p["width"]])
    X = rng.random((2 * REGRESSION_SAMPLES, n)).astype(np.float32)
    with torch.no_grad():
        y = net(torch.as_tensor(X)).numpy().astype(np.float32)
    data = InstanceData(instance, net, Box(np.zeros(n), np.ones(n)))
    data.train = (X[:REGRESSION_SAMPLES], y[:REGRESSION_SAMPLES])
    data.test = (X[REGRESSION_SAMPLES:], y[REGRESSION_SAMPLES:])
    return data


# ------------------------------------------------------------------------------ helpers


def _gurobi_env():
    """A quiet Gurobi environment of its own (disposed by the caller's ``with``)."""
    import gurobipy as gp

    env = gp.Env(empty=True)
    env.setParam("OutputFlag", 0)
    env.start()
    return env


def _plain_sequential(network: nn.Module) -> nn.Sequential:
    """A plain ``nn.Sequential`` with the network's effective weights (permanent zeros)."""
    from gurobi_sparse_surrogate.network.extraction import effective_parameter

    modules = []
    for module in network:
        if isinstance(module, nn.Linear):
            linear = nn.Linear(module.in_features, module.out_features, bias=True)
            with torch.no_grad():
                linear.weight.copy_(effective_parameter(module, "weight"))
                bias = effective_parameter(module, "bias")
                linear.bias.copy_(bias if bias is not None else torch.zeros(module.out_features))
            modules.append(linear)
        elif isinstance(module, nn.ReLU):
            modules.append(nn.ReLU())
        elif not isinstance(module, nn.Identity | nn.Dropout | nn.Flatten):
            raise TypeError(f"cannot convert a {type(module).__name__} module")
    return nn.Sequential(*modules).eval()


def _prune_options(data: InstanceData, spec: MethodSpec, seed: int) -> dict[str, Any]:
    options: dict[str, Any] = {
        "method": spec.options.get("criterion", "magnitude"),
        "structure": spec.options.get("structure", "global"),
    }
    if options["method"] in ("activation", "bound"):
        options["domain"] = data.domain
    elif options["method"] == "random":
        options["seed"] = seed
    if spec.options.get("finetune"):
        options["finetune"] = {"epochs": FINETUNE_EPOCHS, "seed": seed}
        options["data"] = data.train
    return options


_QUALITY_CACHE: dict[tuple, dict[str, Any]] = {}


def surrogate_quality(data: InstanceData, spec: MethodSpec, seed: int) -> dict[str, Any]:
    """Sparsity and accuracy (or MSE) of the method's pruned network, outside any timing.

    Magnitude pruning and the seeded finetuning are deterministic, so this is the surrogate
    the method used; it is computed once per network and configuration in a process.
    """
    if spec.rate is None:
        return {}
    from gurobi_sparse_surrogate.network.pruning import prune_network, pruning_report

    opts = _prune_options(data, spec, seed)
    key = (
        data.instance.network_key(),
        spec.rate,
        opts["structure"],
        "finetune" in opts,
        seed,
    )
    if key not in _QUALITY_CACHE:
        pruned = prune_network(data.network, spec.rate, seed=seed, **opts)
        report = pruning_report(pruned, data.test)
        _QUALITY_CACHE[key] = {
            "sparsity": report.sparsity,
            "surrogate_accuracy": report.accuracy,
            "surrogate_mse": report.mse,
        }
    return dict(_QUALITY_CACHE[key])


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return None if value.size > 16 else _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else (1e300 if value > 0 else -1e300)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _history(history: Any) -> list:
    """At most :data:`MAX_HISTORY` JSON-able history entries (first and last kept).

    Entries are :class:`~gurobi_sparse_surrogate.solving.Incumbent` records (the package's
    results and the baselines alike), written as dicts.
    """
    items = [h.as_dict() if isinstance(h, Incumbent) else h for h in history or []]
    if len(items) > MAX_HISTORY:
        half = MAX_HISTORY // 2
        items = items[:half] + items[-half:]
    return _jsonable(items)


def _call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; a keyword argument it does not accept fails, naming it (never dropped)."""
    params = inspect.signature(fn).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(k for k in kwargs if k not in params)
        if unknown:
            raise TypeError(
                f"{getattr(fn, '__name__', fn)} does not accept {unknown}; it accepts "
                f"{sorted(params)}"
            )
    return fn(*args, **kwargs)


def _formulation_stats(stats: dict[str, Any] | None) -> dict[str, Any]:
    """Binaries, stable/unstable/removed neurons and sizes from a predictor's ``stats``."""
    if not stats:
        return {}
    layers = stats.get("layers") or []
    out = {
        k: stats.get(k)
        for k in ("variables", "constraints", "binaries", "disjunctions", "nonzeros")
        if k in stats
    }
    if layers:
        out["stable"] = int(sum(r.get("active", 0) + r.get("inactive", 0) for r in layers))
        out["unstable"] = int(sum(r.get("unstable", 0) for r in layers))
        out["removed"] = int(sum(r.get("removed", 0) for r in layers))
        out["neurons"] = int(sum(r.get("neurons", 0) for r in layers))
        out["stable_per_layer"] = [int(r.get("active", 0) + r.get("inactive", 0)) for r in layers]
        out["unstable_per_layer"] = [int(r.get("unstable", 0)) for r in layers]
    return out


# ------------------------------------------------------------------------------ attack stage


def attack_stage(
    data: InstanceData, budget: float, seed: int
) -> tuple[np.ndarray | None, float | None, float]:
    """Run the projected-gradient attack; return ``(x, dense score, seconds)``."""
    from gurobi_sparse_surrogate.applications import attacks

    start = time.perf_counter()
    if budget <= 0:
        return None, None, 0.0
    if data.verification:
        res = attacks.pgd_attack(
            data.network,
            data.x0,
            data.domain,
            true_label=data.label,
            target=data.target,
            seed=seed,
            time_budget=budget,
            **ATTACK_OPTIONS,
        )
    else:
        res = attacks.pgd_maximize(
            data.network, data.domain, seed=seed, time_budget=budget, **ATTACK_OPTIONS
        )
    x = np.asarray(res.x, dtype=np.float64)
    return x, data.score(x), time.perf_counter() - start


def _attack_budget(time_limit: float) -> float:
    """Time budget of an attack stage (as in the package: 10% of the limit, at most 1 s)."""
    return min(1.0, 0.1 * time_limit)


# ------------------------------------------------------------------------------ gurobi-ml


def _gurobi_ml_solve(
    data: InstanceData,
    embedded: nn.Sequential,
    *,
    start: float,
    time_limit: float,
    threads: int,
    seed: int,
    obbt: bool = False,
    prove: bool = True,
    mip_start: np.ndarray | None = None,
    stop_at_first: bool = True,
) -> dict[str, Any]:
    """Embed ``embedded`` with gurobi-ml and solve; every incumbent re-scored on the dense net.

    Times are measured from ``start`` (``time.perf_counter()`` at the method's start).
    """
    import gurobi_ml
    import gurobipy as gp

    from gurobi_sparse_surrogate import check_model_size

    GRB = gp.GRB
    out: dict[str, Any] = {"history": []}
    best: dict[str, Any] = {"x": None, "score": None, "first": None}
    remaining = time_limit - (time.perf_counter() - start)
    if remaining <= 0:
        out.update(status="unknown", x=None, time_to_first=None, solver_status="no time left")
        return out
    n = data.domain.n
    with _gurobi_env() as env, gp.Model(env=env) as m:
        m.Params.Threads = threads
        m.Params.Seed = seed
        if obbt:
            m.Params.OBBT = 3
        x = m.addMVar(n, lb=np.asarray(data.domain.lower), ub=np.asarray(data.domain.upper))
        data.domain.add_to_model(m, x)
        y = m.addMVar(_n_outputs(embedded), lb=-GRB.INFINITY)
        gurobi_ml.add_predictor_constr(m, embedded, x, y)
        if data.verification:
            m.setObjective(y[data.label] - y[data.target], GRB.MINIMIZE)
            if prove:
                m.Params.BestBdStop = 2 * ROBUST_TOL  # as find_adversarial
        else:
            m.setObjective(y[0], GRB.MAXIMIZE)
        size = check_model_size(m)
        if not size.fits:
            raise SkipRun(size.message("gurobi-ml embeds every neuron of the network"))
        out.update(
            variables=m.NumVars,
            constraints=m.NumConstrs,
            general_constraints=m.NumGenConstrs,
            binaries=m.NumBinVars,
            nonzeros=m.NumNZs,
            disjunctions=m.NumGenConstrs,
        )
        if mip_start is not None:
            x.Start = mip_start
        m.Params.TimeLimit = max(time_limit - (time.perf_counter() - start), 1e-3)

        def offer(xs: np.ndarray, objective: float) -> bool:
            verdict = data.verdict(xs)
            now = time.perf_counter() - start
            score = verdict["score"]
            out["history"].append(
                Incumbent(round(now, 4), "gurobi-ml", objective, score, True, verdict["valid"])
            )
            if data.better(score, best["score"]):
                best.update(x=xs, score=score, time=now)
            if verdict["valid"] and best["first"] is None:
                best["first"] = now
                return True
            return False

        try:  # every solution is judged, those found in presolve included (as the package)
            interrupted = optimize_judging(
                m, x.tolist(), offer, stop_at_first and data.verification
            )
        except gp.GurobiError as error:
            if error.errno == _SIZE_LIMIT_ERRNO:
                raise SkipRun(f"size-limited Gurobi licence: {error}") from error
            raise
        if interrupted:
            raise KeyboardInterrupt("the run was interrupted: it is not recorded")
        out["solver_status"] = int(m.Status)
        out["x"] = best["x"]
        out["time_to_first"] = best["first"]
        out["time_to_best"] = best.get("time")
        if data.verification:
            if best["first"] is not None:
                out["status"] = "adversarial"
            elif (
                prove and m.Status in (GRB.OPTIMAL, GRB.USER_OBJ_LIMIT) and m.ObjBound > ROBUST_TOL
            ):
                out["status"] = "robust"
            else:
                out["status"] = "unknown"
        else:
            out["optimal"] = bool(prove and m.Status == GRB.OPTIMAL)
            out["status"] = (
                "optimal" if out["optimal"] else "feasible" if best["x"] is not None else "unknown"
            )
    return out


def _n_outputs(network: nn.Module) -> int:
    return [m for m in network if isinstance(m, nn.Linear)][-1].out_features


def _with_attack(
    data: InstanceData,
    spec: MethodSpec,
    start: float,
    time_limit: float,
    seed: int,
    solve: Callable[[np.ndarray | None], dict[str, Any]],
) -> dict[str, Any]:
    """Optional attack stage, then ``solve(mip_start)``; the better dense point wins."""
    x_atk = score_atk = None
    seconds = 0.0
    if spec.options.get("attack"):
        x_atk, score_atk, seconds = attack_stage(data, _attack_budget(time_limit), seed)
        verdict = data.verdict(x_atk)
        if data.verification and verdict["valid"]:
            now = time.perf_counter() - start
            return {
                "status": "adversarial",
                "x": x_atk,
                "time_to_first": now,
                "time_to_best": now,
                "attack_seconds": seconds,
                "history": [Incumbent(round(now, 4), "attack", None, score_atk, True, True)],
            }
    out = solve(x_atk)
    out["attack_seconds"] = seconds
    if x_atk is not None and data.better(score_atk, data.verdict(out.get("x"))["score"]):
        out["x"] = x_atk
        if not data.verification:
            out["time_to_best"] = seconds
            out["status"] = out["status"] if out["status"] != "unknown" else "feasible"
    if not data.verification and x_atk is not None and out.get("time_to_first") is None:
        out["time_to_first"] = seconds
    return out


def run_gurobi_ml(data: InstanceData, spec: MethodSpec, time_limit: float, threads: int, seed: int):
    """gurobi-ml's own embedding of the dense network (``obbt``: ``Obbt=3``)."""
    start = time.perf_counter()
    embedded = _plain_sequential(data.network)
    return _with_attack(
        data,
        spec,
        start,
        time_limit,
        seed,
        lambda mip_start: _gurobi_ml_solve(
            data,
            embedded,
            start=start,
            time_limit=time_limit,
            threads=threads,
            seed=seed,
            obbt=bool(spec.options.get("obbt")),
            mip_start=mip_start,
        ),
    )


def run_paper(data: InstanceData, spec: MethodSpec, time_limit: float, threads: int, seed: int):
    """The paper's pipeline: magnitude-pruned network in gurobi-ml, incumbents re-scored."""
    from gurobi_sparse_surrogate.network.pruning import prune_network

    start = time.perf_counter()
    pruned = prune_network(data.network, spec.rate, structure="global", permanent=True)
    embedded = _plain_sequential(pruned)
    pruning_seconds = time.perf_counter() - start
    out = _with_attack(
        data,
        spec,
        start,
        time_limit,
        seed,
        lambda mip_start: _gurobi_ml_solve(
            data,
            embedded,
            start=start,
            time_limit=time_limit,
            threads=threads,
            seed=seed,
            prove=False,
            mip_start=mip_start,
        ),
    )
    out["pruning_seconds"] = pruning_seconds
    return out


def run_attack(data: InstanceData, spec: MethodSpec, time_limit: float, threads: int, seed: int):
    """The projected-gradient attack alone (its budget: the time limit)."""
    x, score, seconds = attack_stage(data, time_limit, seed)
    verdict = data.verdict(x)
    found = verdict["valid"]
    if data.verification:
        status = "adversarial" if found else "unknown"
    else:
        status = "feasible" if found else "unknown"
    return {
        "status": status,
        "x": x,
        "time_to_first": seconds if found else None,
        "time_to_best": seconds if found else None,
        "attack_seconds": seconds,
        "optimal": False if not data.verification else None,
    }


# ------------------------------------------------------------------------------ this package


def run_package(data: InstanceData, spec: MethodSpec, time_limit: float, threads: int, seed: int):
    """``dense`` and ``surrogate-*``: the package's ``find_adversarial`` / ``maximize_output``."""
    import gurobi_sparse_surrogate as gss

    name = "find_adversarial" if data.verification else "maximize_output"
    fn = getattr(gss, name)
    kwargs: dict[str, Any] = {
        "time_limit": float(time_limit),
        "threads": int(threads),
        "attack": bool(spec.options.get("attack")),
        "attack_options": {**ATTACK_OPTIONS, "time_budget": _attack_budget(time_limit)},
        "seed": int(seed),
    }
    if spec.kind == "surrogate":
        kwargs.update(
            surrogate=float(spec.rate),
            prune_options=_prune_options(data, spec, seed),
            fallback=bool(spec.options.get("fallback", True)),
        )
    else:
        kwargs["surrogate"] = None
    for key in ("bounds", "relu_formulation"):
        if key in spec.options:
            kwargs[key] = spec.options[key]
    start = time.perf_counter()
    if data.verification:
        target = "any" if data.untargeted else "runner-up"
        kwargs.update(target=target, true_label=None, stop_at_first=True)
        res = _call(fn, data.network, data.x0, data.domain, **kwargs)
    else:
        res = _call(fn, data.network, data.domain, **kwargs)
    if getattr(res, "interrupted", False):
        raise KeyboardInterrupt("the run was interrupted: it is not recorded")
    elapsed = time.perf_counter() - start
    out: dict[str, Any] = {
        "x": getattr(res, "x", None),
        "package_status": getattr(res, "status", None),
        "package_runtime": getattr(res, "runtime", None),
        "history": getattr(res, "history", None),
        "ignored_options": [],  # none: an option the package does not accept raises
        "runtime": elapsed,
    }
    for key in ("attack_seconds", "pruning_seconds", "bounding_seconds"):
        value = getattr(res, key, None)
        if value is not None:
            out[key] = float(value)
    model_stats = getattr(res, "model_stats", None) or {}
    if isinstance(model_stats, dict) and "layers" not in model_stats:
        # {"dense": stats, "surrogate": stats}: the surrogate's model first, then the dense one
        for which in ("dense", "surrogate"):
            stats = _formulation_stats(model_stats.get(which))
            out.update({f"{which}_{k}": v for k, v in stats.items()})
            if stats and (which == "surrogate" or spec.kind == "dense"):
                out.update(stats)
    else:
        out.update(_formulation_stats(model_stats))
    out["found_by"] = getattr(res, "found_by", None)
    for key in ("reason", "proven_classes", "proof_seconds"):
        if getattr(res, key, None) is not None:
            out[f"package_{key}"] = getattr(res, key)
    if data.verification:
        out["status"] = getattr(res, "status", "unknown")
        out["time_to_first"] = getattr(res, "time_to_first", None)
        out["package_margin"] = getattr(res, "dense_margin", None)
    else:
        optimal = bool(getattr(res, "optimal", False))
        out["optimal"] = optimal
        out["package_value"] = getattr(res, "value", None)
        out["status"] = "optimal" if optimal else "feasible" if out["x"] is not None else "unknown"
        out["time_to_best"] = getattr(res, "time_to_best", None)
    return out


def run_class_loop(
    data: InstanceData, spec: MethodSpec, time_limit: float, threads: int, seed: int
) -> dict[str, Any]:
    """Untargeted verification as a gurobi-ml user writes it: one MILP per wrong class.

    For each wrong class ``j`` (by decreasing logit at the image), a new model with the
    L-infinity box as variable bounds, the network embedded (``gurobi-ml-loop``:
    ``gurobi_ml.add_predictor_constr`` on the plain dense network; ``dense-loop``: this
    package's ``add_sparse_predictor_constr`` with default options) and ``max y_j - y_label``;
    it stops at the first incumbent adversarial for the dense network, or when its bound
    proves ``y_j - y_label < 0``. The loop stops at the first adversarial class; robust when
    every class is proven. Default Gurobi parameters otherwise.
    """
    import gurobi_ml
    import gurobipy as gp

    from gurobi_sparse_surrogate import add_sparse_predictor_constr, check_model_size

    GRB = gp.GRB
    if not data.verification:
        raise ValueError(f"{spec.kind} is a verification method")
    start = time.perf_counter()
    package = spec.kind == "dense-loop"
    embedded = data.network if package else _plain_sequential(data.network)
    logits = data.outputs(data.x0)
    classes = [int(j) for j in np.argsort(-logits, kind="stable") if j != data.label]
    out: dict[str, Any] = {"history": [], "classes": [], "x": None}
    bounding = 0.0
    sizes = {"variables": 0, "binaries": 0, "constraints": 0}
    proven = 0
    status = "unknown"
    for j in classes:
        left = time_limit - (time.perf_counter() - start)
        if left <= 0:
            break
        found: dict[str, Any] = {}
        with _gurobi_env() as env, gp.Model(env=env) as m:
            m.Params.Threads = threads
            m.Params.Seed = seed
            x = m.addMVar(
                data.domain.n, lb=np.asarray(data.domain.lower), ub=np.asarray(data.domain.upper)
            )
            y = m.addMVar(logits.size, lb=-GRB.INFINITY)
            if package:
                pc = add_sparse_predictor_constr(m, embedded, x, y)
                bounding += pc.bounds.seconds if pc.bounds is not None else 0.0
            else:
                gurobi_ml.add_predictor_constr(m, embedded, x, y)
                m.update()
                size = check_model_size(m)
                if not size.fits:
                    raise SkipRun(size.message("gurobi-ml embeds every neuron of the network"))
            for key, attr in (("variables", "NumVars"), ("binaries", "NumBinVars")):
                sizes[key] = max(sizes[key], int(getattr(m, attr)))
            sizes["constraints"] = max(sizes["constraints"], int(m.NumConstrs))
            m.setObjective(y[j] - y[data.label], GRB.MAXIMIZE)
            m.Params.BestBdStop = -2 * ROBUST_TOL  # class j proven unable to overtake
            m.Params.TimeLimit = max(time_limit - (time.perf_counter() - start), 1e-3)

            def offer(xs: np.ndarray, objective: float, found: dict = found, j: int = j) -> bool:
                verdict = data.verdict(xs)
                now = time.perf_counter() - start
                out["history"].append(
                    Incumbent(round(now, 4), f"class {j}", objective, verdict["score"], True,
                              verdict["valid"])
                )  # fmt: skip
                if verdict["valid"] and not found:
                    found.update(x=xs, time=now)
                    return True
                return False

            try:
                optimize_judging(m, x.tolist(), offer, True)
            except gp.GurobiError as error:
                if error.errno == _SIZE_LIMIT_ERRNO:
                    raise SkipRun(f"size-limited Gurobi licence: {error}") from error
                raise
            bound = proven_bound(m)
            bound = np.inf if bound is None else bound
            proved = not found and (
                m.Status in (GRB.OPTIMAL, GRB.USER_OBJ_LIMIT) and bound < -ROBUST_TOL
            )
            out["classes"].append(
                {
                    "class": j,
                    "status": int(m.Status),
                    "bound": float(bound),
                    "adversarial": bool(found),
                    "proved": bool(proved),
                    "seconds": round(time.perf_counter() - start, 4),
                }
            )
        if found:
            out.update(x=found["x"], time_to_first=found["time"])
            status = "adversarial"
            break
        if not proved:
            break  # this class is undecided within the time limit: no verdict
        proven += 1
    if status != "adversarial" and proven == len(classes):
        status = "robust"
    runtime = time.perf_counter() - start
    out.update(status=status, bounding_seconds=bounding, classes_proven=proven, **sizes)
    out["solving_seconds"] = runtime - bounding
    return out


#: kind -> method function ``f(data, spec, time_limit, threads, seed) -> dict``.
#: The function that runs each method kind (a benchmark method; "method" alone in the
#: package means a bounding method).
RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "gurobi-ml": run_gurobi_ml,
    "paper": run_paper,
    "attack": run_attack,
    "dense": run_package,
    "surrogate": run_package,
    "gurobi-ml-loop": run_class_loop,
    "dense-loop": run_class_loop,
}


def _is_size_error(error: BaseException) -> bool:
    from gurobi_sparse_surrogate import ModelTooLargeError

    if isinstance(error, ModelTooLargeError):
        return True
    return getattr(error, "errno", None) == _SIZE_LIMIT_ERRNO


def run_method(
    instance: Instance,
    spec: MethodSpec,
    *,
    time_limit: float,
    threads: int = 1,
    seed: int = 0,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Run one method on one instance and judge it on the dense network. Never raises.

    Parameters
    ----------
    instance : Instance
    spec : MethodSpec
    time_limit : float
        Seconds for the whole method (pruning, finetuning, bounding and attack included).
    threads : int
        Solver threads.
    seed : int
        Seed of the attack, the finetuning and the solver.
    cache_dir : str or None
        Directory of the trained classifiers.

    Returns
    -------
    dict
        The result fields of a JSON line (without the key and environment fields): ``status``
        (``adversarial``/``robust``/``unknown`` for verification, ``optimal``/``feasible``/
        ``unknown`` for maximization, or ``skipped``/``error``), ``found`` (a dense-valid
        solution), ``time_to_first``, ``runtime``, ``dense_margin`` or ``value``, formulation
        statistics, timings of the stages, the surrogate's sparsity and accuracy, ``history``.
    """
    record: dict[str, Any] = {"status": "error", "found": False}
    try:
        data = load_instance(instance, cache_dir)
        fn = RUNNERS.get(spec.kind)
        if fn is None:
            raise ValueError(f"no method of kind {spec.kind!r}; known: {sorted(RUNNERS)}")
        start = time.perf_counter()
        out = fn(data, spec, time_limit, threads, seed)
        runtime = time.perf_counter() - start
        x = out.pop("x", None)
        verdict = data.verdict(x)
        record.update(out)
        record["runtime"] = runtime
        record["history"] = _history(out.get("history"))
        record["in_domain"] = verdict["in_domain"]
        record["projected"] = verdict["projected"]
        record["found"] = bool(verdict["valid"])
        if data.verification:
            record["dense_margin"] = verdict["score"]
            record["label"], record["target"] = data.label, data.target
            if record.get("status") == "adversarial" and not verdict["valid"]:
                record["status"] = "unknown"
                record["note"] = "the returned point is not adversarial for the dense network"
            if not record["found"]:
                record["time_to_first"] = None
            elif record.get("time_to_first") is None:
                record["time_to_first"] = runtime
        else:
            record["value"] = verdict["score"]
            if not record["found"]:
                record["time_to_first"] = record["time_to_best"] = None
        record["network_accuracy"] = data.network_accuracy
        if spec.rate is not None:
            record.update(surrogate_quality(data, spec, seed))
    except SkipRun as error:
        record.update(status="skipped", reason=str(error))
    except Exception as error:  # noqa: BLE001 - one failed run must not stop the benchmark
        if _is_size_error(error):
            record.update(status="skipped", reason=str(error))
        else:
            record.update(
                status="error",
                error=f"{type(error).__name__}: {error}",
                traceback=traceback.format_exc(limit=8),
            )
    return _jsonable(record)
