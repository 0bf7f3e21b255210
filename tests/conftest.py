"""Shared helpers for the tests: random (sparse, pruned) networks and quiet Gurobi models."""

from __future__ import annotations

import functools
import os

import gurobipy as gp
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from torch import nn
from torch.nn.utils import prune

# Small networks train and run faster on one thread, and CI has two cores for everything.
torch.set_num_threads(1)

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (``.ci/run`` sets ``ci``). "dev" (the
# default) draws new examples on every run, so property tests keep exploring; run new property
# tests under several ``--hypothesis-seed`` values. "ci" is deterministic (derandomized: the same
# examples on every run, no example database), so a CI failure reproduces and CI time is stable.
# A test's own ``@settings(max_examples=...)`` still wins over the profile's default.
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def random_network(
    seed: int,
    n_in: int,
    hidden: tuple[int, ...],
    n_out: int,
    density: float = 1.0,
    masks: bool = False,
    zero_rows: bool = False,
    zero_cols: bool = False,
    final_relu: bool = False,
) -> nn.Sequential:
    """A seeded ReLU MLP with a random sparsity pattern.

    ``masks=True`` leaves the zeros as ``torch.nn.utils.prune`` masks (weight_orig and
    weight_mask in place); otherwise they are written into the weights. ``zero_rows`` and
    ``zero_cols`` force an all-zero row (a constant neuron) and an all-zero column (an unread
    neuron) in every layer.
    """
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    sizes = (n_in, *hidden, n_out)
    modules: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(a, b)
        with torch.no_grad():
            linear.weight.copy_(torch.randn(b, a, generator=gen) / np.sqrt(a))
            linear.bias.copy_(torch.randn(b, generator=gen) * 0.3)
        keep = rng.random((b, a)) < density
        if zero_rows and b > 1:
            keep[rng.integers(b)] = False
        if zero_cols and a > 1:
            keep[:, rng.integers(a)] = False
        if masks:
            prune.custom_from_mask(linear, "weight", torch.from_numpy(keep))
        else:
            with torch.no_grad():
                linear.weight.mul_(torch.from_numpy(keep).float())
        modules.append(linear)
        if i < len(sizes) - 2 or final_relu:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules).eval()


@functools.cache
def licence_refuses_2001_variables() -> bool:
    """Independent probe of the licence: does Gurobi refuse a model of 2001 variables?

    Tests that need the size-limited licence skip on this probe, never on the package's own
    detection (``license_is_size_limited``), which ``test_license.py`` compares with it.
    """
    with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as m:
        m.addMVar(2001)
        try:
            m.optimize()
        except gp.GurobiError as error:
            assert error.errno == 10010, error  # GRB_ERROR_SIZE_LIMIT_EXCEEDED, nothing else
            return True
    return False


needs_size_limited_licence = pytest.mark.skipif(
    not licence_refuses_2001_variables(), reason="needs the size-limited licence (the probe)"
)


def forward64(network: nn.Module, x: np.ndarray) -> np.ndarray:
    """Independent float64 reference: torch forward pass on a float64 copy."""
    from gurobi_sparse_surrogate.network.extraction import clone_network

    net = clone_network(network).double().eval()
    with torch.no_grad():
        return net(torch.as_tensor(np.atleast_2d(x), dtype=torch.float64)).numpy()


@pytest.fixture
def model():
    """A quiet, single-threaded Gurobi model, disposed after the test."""
    env = gp.Env(params={"OutputFlag": 0, "Threads": 1})
    m = gp.Model(env=env)
    yield m
    m.dispose()
    env.dispose()


@pytest.fixture
def forward_passes():
    """``forward_passes(rows=None, sleep_at=None, seconds=0.0, raise_at=None)`` counts the
    forward passes (of ``rows`` inputs, if given) of every ``nn.Sequential``: the network and
    the package's copies of it, seen by a global torch hook, which the embedding does not see
    (it refuses hooks on the network). Pass number ``sleep_at`` sleeps ``seconds`` (sleeping
    past a time limit makes the limit reached whatever the machine's load); pass number
    ``raise_at`` raises KeyboardInterrupt (a Ctrl-C while torch runs). Returns a one-item
    list, the count."""
    import time

    from torch.nn.modules.module import register_module_forward_hook

    handles = []

    def install(rows=None, sleep_at=None, seconds=0.0, raise_at=None):
        calls = [0]

        def hook(module, inputs, output):
            if type(module) is not nn.Sequential or rows not in (None, inputs[0].shape[0]):
                return
            calls[0] += 1
            if calls[0] == sleep_at:
                time.sleep(seconds)
            if calls[0] == raise_at:
                raise KeyboardInterrupt

        handles.append(register_module_forward_hook(hook))
        return calls

    yield install
    for handle in handles:
        handle.remove()


def constant_margin_net():
    """y0 = relu(x0) + relu(-x0) + relu(x1) + 1 and y1 = y0 - 1: Y_1 >= Y_0 never holds
    (the VNN-LIB tests' property with a known answer)."""
    first, second = nn.Linear(2, 3), nn.Linear(3, 2)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]))
        first.bias.zero_()
        second.weight.copy_(torch.ones(2, 3))
        second.bias.copy_(torch.tensor([1.0, 0.0]))
    return nn.Sequential(first, nn.ReLU(), second).eval()
