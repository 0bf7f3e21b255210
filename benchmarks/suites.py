"""Instances, methods and profiles of the benchmark suite.

Everything here is plain data, deterministic and seeded: a profile always expands to the same
instances and methods, so the key ``(suite, instance, method)`` of a run identifies it across
reruns (which is what resuming relies on).

Method names
------------
``gurobi-ml``, ``gurobi-ml-obbt``
    gurobi-ml's own embedding of the dense network (default parameters, or ``Obbt=3``).
``paper-R``
    The paper's pipeline: global magnitude pruning to rate ``R`` (no finetuning), embedded with
    gurobi-ml, every incumbent re-scored on the dense network.
``dense``
    This package's embedding of the dense network (its bounds, stable neurons removed).
``surrogate-R[-finetuned][-neuron][-nofallback][-CRITERION-aware]``
    This package's surrogate at rate ``R``: unstructured (global) magnitude pruning unless
    ``-neuron`` (structured), no finetuning unless ``-finetuned``, falling back to the dense
    model unless ``-nofallback``; ``-bound-aware`` and ``-activation-aware`` prune with the
    instance-aware criteria of :func:`~gurobi_sparse_surrogate.prune_network` instead of
    magnitude, ``-random-pruned`` at random (a control).
``attack``
    The projected-gradient attack alone.
``gurobi-ml-loop``, ``dense-loop``
    Untargeted verification the way a gurobi-ml user writes it: one MILP per wrong class
    ``j`` (``max y_j - y_label``, classes by decreasing logit at the image), stopping at the
    first class with an adversarial input; the network embedded by gurobi-ml or by this
    package's ``add_sparse_predictor_constr`` with its default options (the ``mnistfc``
    profile).
``...+attack``
    The MILP method preceded by the attack stage (its point then serves as a MIP start).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SUITES = ("verification", "maximization")
KINDS = ("gurobi-ml", "paper", "dense", "surrogate", "attack", "gurobi-ml-loop", "dense-loop")
RATES = (0.3, 0.5, 0.8, 0.9, 0.95)
#: Pruning criteria of surrogate methods (``method`` of ``prune_network``).
CRITERIA = ("magnitude", "random", "activation", "bound")
_CRITERION_SUFFIX = {
    "magnitude": "",
    "random": "-random-pruned",
    "activation": "-activation-aware",
    "bound": "-bound-aware",
}
#: Size of the held-out part of the 5,000 bundled MNIST digits (test_size=0.2).
MNIST_TEST_IMAGES = 1000
#: Training epochs of the paper's classifiers (Adam, 5 epochs).
TRAIN_EPOCHS = 5


@dataclass(frozen=True)
class Instance:
    """One benchmark instance.

    Attributes
    ----------
    suite : {"verification", "maximization"}
    id : str
        Unique within the suite, stable across runs.
    params : dict
        Verification: ``dataset`` ("mnist" or "digits"), ``size``, ``hidden``, ``net_seed``,
        ``image`` (index into the held-out images), ``radius`` (of the L1 ball, or of the
        L-infinity box clipped to [0, 1] when ``norm`` is ``"linf"``), ``target``
        (``"any"``: untargeted; default: the runner-up class) and ``arch`` ("cnn" for the
        small CNN of :func:`gurobi_sparse_surrogate.datasets.make_cnn`; an MLP of ``hidden``
        otherwise).
        Maximization: ``n_inputs``, ``depth``, ``width``, ``seed``.
    """

    suite: str
    id: str
    params: dict[str, Any] = field(hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.suite not in SUITES:
            raise ValueError(f"unknown suite {self.suite!r}; expected one of {SUITES}")

    def network_key(self) -> tuple:
        """What identifies the instance's network (shared by instances on the same network)."""
        p = self.params
        if self.suite == "verification":
            key = ("v", p.get("dataset", "mnist"), p["size"], tuple(p["hidden"]), p["net_seed"])
            return key + ("cnn",) if p.get("arch") == "cnn" else key
        return ("m", p["n_inputs"], p["depth"], p["width"], p["seed"])

    def estimated_size(self) -> tuple[int, int]:
        """Upper estimate of (variables, linear constraints) of gurobi-ml's dense embedding.

        gurobi-ml creates two variables per hidden neuron (affine output and ReLU output), one
        per output, and one linear row per neuron; the L1 ball adds at most one variable and
        two rows per input. This is the largest model of any method on the instance.
        """
        p = self.params
        if self.suite == "verification":
            n_in = 64 if p.get("dataset", "mnist") == "digits" else p["size"] ** 2
            hidden, n_out = list(p["hidden"]), 10
            if p.get("arch") == "cnn":  # make_cnn: 4 channels at half the side, pooled
                conv = (p["size"] + 1) // 2
                hidden = [4 * conv * conv, 4 * (conv - 1) ** 2, *hidden]
            extra_vars, extra_rows = n_in, 2 * n_in + 1
            if p.get("norm", "l1") == "linf":  # an L-infinity box is variable bounds only
                extra_vars = extra_rows = 0
        else:
            n_in, hidden, n_out = p["n_inputs"], [p["width"]] * p["depth"], 1
            extra_vars = extra_rows = 0
        neurons = sum(hidden)
        return n_in + extra_vars + 2 * neurons + n_out, neurons + n_out + extra_rows


@dataclass(frozen=True)
class MethodSpec:
    """A method and its options (see the module docstring for the names).

    Attributes
    ----------
    name : str
    kind : {"gurobi-ml", "paper", "dense", "surrogate", "attack"} (tests may add others)
    options : dict
        ``obbt`` (gurobi-ml), ``rate`` (paper, surrogate), ``structure`` ("global" or
        "neuron"), ``finetune`` (bool), ``fallback`` (bool), ``attack`` (bool: attack stage).
    """

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def rate(self) -> float | None:
        """The pruning rate, for pruned methods."""
        return self.options.get("rate")

    @property
    def family(self) -> str:
        """The name without the pruning rate, e.g. ``surrogate-nofallback`` or ``paper+attack``.

        Examples
        --------
        >>> method("surrogate", rate=0.8, fallback=False, attack=True).family
        'surrogate-nofallback+attack'
        """
        base, plus, stage = self.name.partition("+")
        if self.rate is not None:
            base = base.replace(f"-{self.rate:g}", "", 1)
        return base + plus + stage


def method(
    kind: str,
    *,
    rate: float | None = None,
    obbt: bool = False,
    structure: str = "global",
    finetune: bool = False,
    fallback: bool = True,
    attack: bool = False,
    bounds: str | None = None,
    criterion: str = "magnitude",
    relu_formulation: str | None = None,
    suites: Sequence[str] | None = None,
) -> MethodSpec:
    """Build a :class:`MethodSpec` with its canonical name.

    ``bounds`` (``dense`` and ``surrogate`` only) names a bounding method other than the
    package's default (``"auto"``); it becomes a suffix of the name, as in ``dense-interval``.
    ``relu_formulation="max"`` (``dense`` and ``surrogate``) uses Gurobi's max constraints
    instead of big-M rows (suffix ``-max``); ``suites`` restricts the method to those suites.

    Examples
    --------
    >>> method("surrogate", rate=0.8, fallback=False).name
    'surrogate-0.8-nofallback'
    >>> method("gurobi-ml", obbt=True, attack=True).name
    'gurobi-ml-obbt+attack'
    >>> method("dense", bounds="linear").name
    'dense-linear'
    >>> method("surrogate", rate=0.8, criterion="bound").name
    'surrogate-0.8-bound-aware'
    """
    if kind not in KINDS:
        raise ValueError(f"unknown method kind {kind!r}; expected one of {KINDS}")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if criterion != "magnitude" and kind != "surrogate":
        raise ValueError(f"criterion= applies to surrogate methods, not {kind}")
    if structure not in ("global", "neuron"):
        raise ValueError(f"structure must be 'global' or 'neuron', got {structure!r}")
    if kind in ("paper", "surrogate"):
        if rate is None or not 0.0 <= rate < 1.0:
            raise ValueError(f"{kind} needs a pruning rate in [0, 1), got {rate!r}")
    options: dict[str, Any] = {"attack": attack}
    if kind == "gurobi-ml":
        name = "gurobi-ml-obbt" if obbt else "gurobi-ml"
        options["obbt"] = obbt
    elif kind == "paper":
        name = f"paper-{rate:g}"
        options["rate"] = rate
    elif kind == "surrogate":
        name = f"surrogate-{rate:g}"
        name += "-finetuned" if finetune else ""
        name += "-neuron" if structure == "neuron" else ""
        name += "" if fallback else "-nofallback"
        name += _CRITERION_SUFFIX[criterion]
        options.update(rate=rate, structure=structure, finetune=finetune, fallback=fallback)
        if criterion != "magnitude":
            options["criterion"] = criterion
    elif kind == "dense":
        name = "dense"
    elif kind in ("gurobi-ml-loop", "dense-loop"):
        if attack:
            raise ValueError(f"{kind} has no attack stage (it is called as a user would)")
        name = kind
    else:
        if attack:
            raise ValueError("the attack method is the attack stage; attack=True is redundant")
        return MethodSpec("attack", "attack", {})
    if bounds is not None:
        if kind not in ("dense", "surrogate"):
            raise ValueError(f"bounds= applies to dense and surrogate methods, not {kind}")
        name += f"-{bounds}"
        options["bounds"] = bounds
    if relu_formulation is not None:
        if kind not in ("dense", "surrogate") or relu_formulation not in ("bigm", "max"):
            raise ValueError(
                f"relu_formulation= takes 'bigm' or 'max' for dense and surrogate methods; got "
                f"{relu_formulation!r} for {kind}"
            )
        if relu_formulation == "max":
            name += "-max"
            options["relu_formulation"] = "max"
    if suites is not None:
        unknown = set(suites) - set(SUITES)
        if unknown:
            raise ValueError(f"unknown suites {sorted(unknown)}; expected some of {SUITES}")
        options["suites"] = list(suites)
    return MethodSpec(name + ("+attack" if attack else ""), kind, options)


@dataclass(frozen=True)
class Profile:
    """A named set of instances and methods with the run's settings.

    Attributes
    ----------
    name : str
    instances : tuple of Instance
    methods : tuple of MethodSpec
    time_limit : float
        Seconds per (instance, method) run, everything included.
    threads : int
        Solver threads per run.
    seed : int
        Seed of the methods (attacks, pruning tie-breaks, solver).
    description : str
    """

    name: str
    instances: tuple[Instance, ...]
    methods: tuple[MethodSpec, ...]
    time_limit: float
    threads: int = 1
    seed: int = 0
    description: str = ""

    def tasks(self) -> list[tuple[Instance, MethodSpec]]:
        """Every (instance, method) pair, instance-major (all methods of an instance together);
        a method restricted to some suites (``options["suites"]``) runs only on those."""
        return [
            (i, m)
            for i in self.instances
            for m in self.methods
            if i.suite in m.options.get("suites", SUITES)
        ]


# ------------------------------------------------------------------------------ instances


def verification_instances(
    sizes: Iterable[int],
    hiddens: Iterable[Sequence[int]],
    n_images: int,
    *,
    net_seed: int = 0,
    seed: int = 0,
    dataset: str = "mnist",
    radius: tuple[float, float] = (4.5, 5.5),
    n_test: int = MNIST_TEST_IMAGES,
    arch: str = "mlp",
) -> list[Instance]:
    """The paper's verification instances: seeded held-out images with an L1 radius in U[a, b].

    The images and radii depend only on ``seed`` and the configuration, so two profiles that
    share a configuration share its instances (and their results).

    Examples
    --------
    >>> [i.id for i in verification_instances([18], [(32, 32)], 2)]
    ['mnist18-2x32-s0-img0094', 'mnist18-2x32-s0-img0693']
    """
    out = []
    for size, hidden in itertools.product(sizes, hiddens):
        hidden = tuple(int(h) for h in hidden)
        rng = np.random.default_rng([seed, size, len(hidden), *hidden])
        images = rng.choice(n_test, size=n_images, replace=False)
        radii = rng.uniform(*radius, size=n_images)
        name = _arch(hidden) if arch == "mlp" else f"{arch}{_arch(hidden)}"
        for image, r in zip(images, radii, strict=True):
            params = {
                "dataset": dataset,
                "size": int(size),
                "hidden": list(hidden),
                "net_seed": int(net_seed),
                "image": int(image),
                "radius": round(float(r), 4),
            }
            if arch != "mlp":
                params["arch"] = arch
            out.append(
                Instance(
                    "verification",
                    f"{dataset}{size}-{name}-s{net_seed}-img{int(image):04d}",
                    params,
                )
            )
    return out


def mnistfc_instances(
    hiddens: Iterable[Sequence[int]],
    n_images: int,
    radii: Sequence[float] = (0.03, 0.05),
    *,
    net_seed: int = 0,
    seed: int = 0,
    n_test: int = MNIST_TEST_IMAGES,
) -> list[Instance]:
    """VNN-COMP ``mnist_fc``-like instances: 784-input MLPs, L-infinity boxes around held-out
    digits clipped to [0, 1], untargeted (every wrong class).

    Examples
    --------
    >>> [i.id for i in mnistfc_instances([(256, 256)], 1)]
    ['mnistfc-2x256-s0-img0481-r0.03', 'mnistfc-2x256-s0-img0481-r0.05']
    """
    out = []
    for hidden in hiddens:
        hidden = tuple(int(h) for h in hidden)
        rng = np.random.default_rng([seed, 28, 2])  # the same images for every architecture
        images = rng.choice(n_test, size=n_images, replace=False)
        for image in images:
            for radius in radii:
                out.append(
                    Instance(
                        "verification",
                        f"mnistfc-{_arch(hidden)}-s{net_seed}-img{int(image):04d}-r{radius:g}",
                        {
                            "dataset": "mnist",
                            "size": 28,
                            "hidden": list(hidden),
                            "net_seed": int(net_seed),
                            "image": int(image),
                            "radius": float(radius),
                            "norm": "linf",
                            "target": "any",
                        },
                    )
                )
    return out


def maximization_instances(
    configs: Iterable[tuple[int, int, int]], seeds: Iterable[int] = (0,)
) -> list[Instance]:
    """Function-maximization instances: ``(n_inputs, depth, width)`` random networks per seed.

    Examples
    --------
    >>> maximization_instances([(100, 2, 50)])[0].id
    'rand100-2x50-s0'
    """
    return [
        Instance(
            "maximization",
            f"rand{n}-{depth}x{width}-s{s}",
            {"n_inputs": int(n), "depth": int(depth), "width": int(width), "seed": int(s)},
        )
        for (n, depth, width), s in itertools.product(configs, seeds)
    ]


def _arch(hidden: Sequence[int]) -> str:
    if len(set(hidden)) == 1:
        return f"{len(hidden)}x{hidden[0]}"
    return "-".join(map(str, hidden))


# ------------------------------------------------------------------------------ profiles


def _attack_variants(methods: Iterable[MethodSpec]) -> list[MethodSpec]:
    return [method(m.kind, attack=True, **_kw(m)) for m in methods]


def _kw(m: MethodSpec) -> dict[str, Any]:
    return {k: v for k, v in m.options.items() if k != "attack"}


def _smoke() -> Profile:
    core = [
        method("gurobi-ml"),
        method("gurobi-ml", obbt=True),
        method("paper", rate=0.8),
        method("dense"),
        method("surrogate", rate=0.8),
        method("surrogate", rate=0.8, fallback=False),
        method("surrogate", rate=0.8, finetune=True),
        method("surrogate", rate=0.8, structure="neuron"),
    ]
    methods = [*core, method("attack"), *_attack_variants([core[0], core[2], core[3], core[4]])]
    instances = verification_instances([18], [(32, 32)], 1) + maximization_instances([(100, 2, 50)])
    return Profile(
        "smoke",
        tuple(instances),
        tuple(methods),
        time_limit=3.0,
        description="every method once on one MNIST-18 2x32 image and one small random "
        "network, 3 s per run (CI; under 2 minutes)",
    )


def _quick() -> Profile:
    headline = [
        method("surrogate", rate=r, fallback=fb) for r in (0.5, 0.8, 0.9) for fb in (True, False)
    ]
    core = [
        method("gurobi-ml"),
        method("gurobi-ml", obbt=True),
        *[method("paper", rate=r) for r in (0.5, 0.8, 0.9)],
        method("dense"),
        method("dense", bounds="interval"),
        *headline,
        method("surrogate", rate=0.8, finetune=True),
        method("surrogate", rate=0.8, structure="neuron"),
        method("surrogate", rate=0.8, criterion="bound"),
    ]
    methods = [
        *core,
        method("attack"),
        *_attack_variants([method("gurobi-ml"), method("dense"), method("surrogate", rate=0.8)]),
    ]
    instances = (
        verification_instances([18], [(32, 32), (64, 64)], 4)
        + verification_instances([28], [(32, 32), (64, 64)], 2)
        + maximization_instances([(100, 2, 50), (100, 3, 100), (200, 4, 50), (400, 2, 100)])
    )
    return Profile(
        "quick",
        tuple(instances),
        tuple(methods),
        time_limit=10.0,
        description="the paper's headline combinations (unstructured, no finetuning, rates "
        "0.5/0.8/0.9, with and without fallback) plus one finetuned, one structured and one "
        "bound-aware surrogate; MNIST 18x18 (4 images per net) and 28x28 (2 images per net) with 2x32 and 2x64 "
        "nets, and 4 random networks; 10 s per run (about 15 minutes on 2 cores)",
    )


def _paper() -> Profile:
    core: list[MethodSpec] = [method("gurobi-ml"), method("gurobi-ml", obbt=True), method("dense")]
    core += [method("dense", bounds=b) for b in ("interval", "linear", "lp")]
    core += [method("paper", rate=r) for r in RATES]
    core += [
        method("surrogate", rate=r, finetune=ft, structure=st, fallback=fb)
        for r, ft, st, fb in itertools.product(
            RATES, (False, True), ("global", "neuron"), (True, False)
        )
    ]
    methods = [*core, method("attack"), *_attack_variants(core)]
    hiddens = [(32, 32), (64, 64), (32,) * 4, (64,) * 4]
    instances = verification_instances([28, 18], hiddens, 10) + maximization_instances(
        itertools.product((100, 1000, 10000), (2, 3, 4, 5), (50, 100, 200)), seeds=(0, 1, 2)
    )
    return Profile(
        "paper",
        tuple(instances),
        tuple(methods),
        time_limit=300.0,
        description="the full grid with the paper's 300 s limit (many hours; meant for a "
        "cluster: --scheduler). Instances too large for the size-limited licence are skipped.",
    )


def _hard() -> Profile:
    from .hard import hard_instances

    core = [
        method("gurobi-ml"),
        method("paper", rate=0.8),
        method("dense"),
        *[method("surrogate", rate=r) for r in (0.5, 0.8, 0.9)],
        method("surrogate", rate=0.8, finetune=True),
        method("surrogate", rate=0.8, structure="neuron"),
        *[method("surrogate", rate=0.8, criterion=c) for c in ("bound", "activation", "random")],
        # on the largest random networks the big-M rows exceed the licence; max constraints fit
        *[
            method(k, rate=r, relu_formulation="max", suites=["maximization"])
            for k, r in (("dense", None), ("surrogate", 0.8))
        ],
    ]
    instances = hard_instances(("sat", "open")) + hard_instances(("unsat",), limit=4)
    # the largest random networks whose gurobi-ml embedding fits the size-limited licence
    instances += maximization_instances([(100, 3, 250), (400, 2, 300)])
    return Profile(
        "hard",
        tuple(instances),
        tuple(core),
        time_limit=30.0,
        description="the attack-resistant instances of benchmarks/data/hard_instances.json "
        "(every adversarial and every open one, and four proved robust; ground truth in the "
        "parameters), "
        "no attack stage, and two of the largest random networks that fit the size-limited "
        "licence; the paper's question with each pruning criterion, finetuning and neuron "
        "pruning; 30 s per run",
    )


def _cnn() -> Profile:
    core = [
        method("dense"),
        method("dense", bounds="interval"),
        method("surrogate", rate=0.5),
        method("surrogate", rate=0.8),
        method("surrogate", rate=0.8, fallback=False),
        method("surrogate", rate=0.5, structure="neuron"),
    ]
    methods = [*core, method("attack"), *_attack_variants([core[0], core[3]])]
    instances = verification_instances([14], [(32,)], 4, arch="cnn", radius=(2.5, 3.5))
    return Profile(
        "cnn",
        tuple(instances),
        tuple(methods),
        time_limit=10.0,
        description="a small MNIST CNN at 14x14 (3x3 convolution with stride 2, 4 channels, "
        "2x2 max pool, 32 hidden neurons; trained on the bundled digits) on 4 images with an "
        "L1 radius in U[2.5, 3.5]: this package's dense embedding and surrogates (gurobi-ml "
        "1.7 embeds no convolution); 10 s per run (a few minutes)",
    )


def _mnistfc(reduced: bool = False) -> Profile:
    methods = [method("gurobi-ml-loop"), method("dense-loop"), method("dense", attack=True)]
    n_small, n_deep = (5, 2) if reduced else (15, 8)
    instances = mnistfc_instances([(256, 256)], n_small) + mnistfc_instances(
        [(256,) * 4, (256,) * 6], n_deep
    )
    if reduced:
        return Profile(
            "mnistfc-reduced",
            tuple(instances),
            tuple(methods),
            time_limit=60.0,
            threads=2,
            description="the mnistfc protocol on fewer properties (256x2: 5 digits, 256x4 and "
            "256x6: 2 digits, both radii) with 60 s per run, for a shared machine",
        )
    return Profile(
        "mnistfc",
        tuple(instances),
        tuple(methods),
        time_limit=120.0,
        threads=2,
        description="VNN-COMP mnist_fc-like verification: 784-256x2/x4/x6 MLPs trained on the "
        "bundled MNIST digits, L-infinity radii 0.03 and 0.05 around held-out digits clipped "
        "to [0, 1], untargeted; gurobi-ml's per-class loop, the package's embedding in the "
        "same loop and find_adversarial(target='any') side by side; 120 s, 2 threads "
        "(256x4/x6 do not fit gurobi-ml under the size-limited licence and are skipped for it)",
    )


_BUILDERS = {
    "smoke": _smoke,
    "quick": _quick,
    "paper": _paper,
    "hard": _hard,
    "cnn": _cnn,
    "mnistfc": _mnistfc,
    "mnistfc-reduced": lambda: _mnistfc(reduced=True),
}
PROFILES = tuple(_BUILDERS)


def get_profile(name: str) -> Profile:
    """The profile called ``name`` (one of :data:`PROFILES`).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    try:
        return _BUILDERS[name]()
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; expected one of {PROFILES}") from None
