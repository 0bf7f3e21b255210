"""The bounds cache: hits return the same bounds, every change of what bounds depend on misses."""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
import torch
from torch import nn

from gurobi_sparse_surrogate import (
    Box,
    InvalidOptionError,
    LinfBall,
    add_sparse_predictor_constr,
    prune_network,
)
from gurobi_sparse_surrogate.bounds.cache import BOUNDS_CACHE, BoundsCache, cached_compute_bounds
from gurobi_sparse_surrogate.network import extract_layers


def _net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))


def _compute(cache, net, lo=0.0, hi=1.0, method="linear", domain=None, **options):
    lower = np.full(6, lo)
    upper = np.full(6, hi)
    return cache.compute(extract_layers(net), lower, upper, method, domain, **options)


def _same(a, b) -> bool:
    return all(
        np.array_equal(x, y) for x, y in zip(a.lower + a.upper, b.lower + b.upper, strict=True)
    )


def test_hit_returns_identical_bounds():
    cache = BoundsCache()
    net = _net()
    first = _compute(cache, net)
    second = _compute(cache, net)
    assert (cache.hits, cache.misses) == (1, 1)
    assert _same(first, second)
    assert second.seconds == 0.0
    assert any(note.get("kind") == "cache" for note in second.notes)
    # independent truth: recomputing without a cache gives the same arrays
    fresh = cached_compute_bounds(
        extract_layers(net), np.zeros(6), np.ones(6), "linear", cache=False
    )
    assert _same(first, fresh)


@pytest.mark.parametrize(
    "change",
    ["weights", "bias", "input_lower", "input_upper", "method", "domain", "option", "other_net"],
)
def test_every_change_misses(change):
    cache = BoundsCache()
    net = _net()
    base = _compute(cache, net, domain=LinfBall(np.full(6, 0.5), 0.2))
    kwargs = {"domain": LinfBall(np.full(6, 0.5), 0.2)}
    other = net
    if change in ("weights", "bias"):
        other = _net()
        with torch.no_grad():
            param = other[2].weight if change == "weights" else other[2].bias
            param[0] += 0.5
    elif change == "input_lower":
        kwargs["lo"] = 0.1
    elif change == "input_upper":
        kwargs["hi"] = 0.9
    elif change == "method":
        kwargs["method"] = "interval"
    elif change == "domain":
        kwargs["domain"] = LinfBall(np.full(6, 0.5), 0.1)
    elif change == "option":
        kwargs["time_budget"] = 3.0
    elif change == "other_net":
        other = _net(seed=1)
    again = _compute(cache, other, **kwargs)
    assert cache.misses == 2 and cache.hits == 0
    # truth: what a cache-free pass gives for the changed problem
    lo = np.full(6, kwargs.pop("lo", 0.0))
    hi = np.full(6, kwargs.pop("hi", 1.0))
    method = kwargs.pop("method", "linear")
    domain = kwargs.pop("domain")
    fresh = cached_compute_bounds(
        extract_layers(other), lo, hi, method, domain, cache=False, **kwargs
    )
    assert _same(again, fresh)
    if change in ("weights", "bias", "other_net", "domain"):
        assert not _same(again, base)


def test_pruned_copy_and_prune_masks_miss():
    cache = BoundsCache()
    net = _net()
    _compute(cache, net)
    pruned = prune_network(net, 0.5)
    got = _compute(cache, pruned)
    assert cache.misses == 2
    fresh = cached_compute_bounds(
        extract_layers(pruned), np.zeros(6), np.ones(6), "linear", cache=False
    )
    assert _same(got, fresh)
    # pruning a module in place (torch.nn.utils.prune masks) changes the effective weights
    from torch.nn.utils import prune

    prune.l1_unstructured(net[0], "weight", amount=30)
    _compute(cache, net)
    assert cache.misses == 3


def test_cached_bounds_are_not_mutated_by_later_use():
    cache = BoundsCache()
    net = _net()
    first = _compute(cache, net)
    reference = [a.copy() for a in first.lower]
    first.lower[0][:] = -123.0  # a caller scribbles on its copy
    second = _compute(cache, net)
    assert all(np.array_equal(a, b) for a, b in zip(second.lower, reference, strict=True))
    second.upper[1][:] = 7.0
    third = _compute(cache, net)
    assert not np.array_equal(third.upper[1], second.upper[1])


def test_lru_bound_disable_and_clear():
    cache = BoundsCache(max_entries=2)
    nets = [_net(seed) for seed in range(3)]
    for net in nets:
        _compute(cache, net)
    assert len(cache) == 2
    _compute(cache, nets[0])  # evicted: recomputed
    assert cache.misses == 4
    cache.clear()
    assert len(cache) == 0 and cache.hits == 0
    cache.enabled = False
    _compute(cache, nets[1])
    _compute(cache, nets[1])
    assert len(cache) == 0 and cache.hits == 0


def test_unknown_option_fails_before_the_cache_and_is_not_cached():
    # Options are validated: an unknown (or unhashable) one is an error, never a silent miss.
    cache = BoundsCache()
    net = _net()
    for _ in range(2):
        with pytest.raises(InvalidOptionError, match="'hook'"):
            _compute(cache, net, method="interval", hook=lambda: None)
    assert len(cache) == 0 and cache.hits == 0 and cache.misses == 0


def test_predictor_reuses_bounds_across_models_and_still_exact():
    BOUNDS_CACHE.clear()
    net = _net()
    env = gp.Env(params={"OutputFlag": 0})
    objectives = []
    for j in (1, 2):
        m = gp.Model(env=env)
        x = m.addMVar(6, lb=0.0, ub=1.0)
        pc = add_sparse_predictor_constr(m, net, x, bounds="linear")
        m.setObjective(pc.output[0, j] - pc.output[0, 0], gp.GRB.MAXIMIZE)
        m.optimize()
        assert pc.get_error().max() < 1e-5
        objectives.append(m.ObjVal)
        m.dispose()
    assert BOUNDS_CACHE.hits >= 1
    # the same models without the cache reach the same optima
    for j, expected in zip((1, 2), objectives, strict=True):
        m = gp.Model(env=env)
        x = m.addMVar(6, lb=0.0, ub=1.0)
        pc = add_sparse_predictor_constr(m, net, x, bounds="linear", bound_cache=False)
        m.setObjective(pc.output[0, j] - pc.output[0, 0], gp.GRB.MAXIMIZE)
        m.optimize()
        assert m.ObjVal == pytest.approx(expected, rel=1e-4, abs=1e-6)
        m.dispose()


def test_predictor_input_bounds_change_misses():
    BOUNDS_CACHE.clear()
    net = _net()
    env = gp.Env(params={"OutputFlag": 0})
    m = gp.Model(env=env)
    x = m.addMVar(6, lb=0.0, ub=1.0)
    a = add_sparse_predictor_constr(m, net, x, bounds="linear")
    m2 = gp.Model(env=env)
    x2 = m2.addMVar(6, lb=0.0, ub=0.5)
    b = add_sparse_predictor_constr(m2, net, x2, bounds="linear")
    assert BOUNDS_CACHE.hits == 0
    assert not np.array_equal(a.bounds.upper[0], b.bounds.upper[0])
    m3 = gp.Model(env=env)
    x3 = m3.addMVar(6, lb=0.0, ub=1.0)
    c = add_sparse_predictor_constr(m3, net, x3, bounds="linear", domain=Box(0.0, 0.5, n=6))
    assert BOUNDS_CACHE.hits == 0
    assert np.array_equal(c.bounds.upper[0], b.bounds.upper[0])


class SubBox(Box):
    """The box ``[lower, lower + share * (upper - lower)]`` inside the bounding box given, its
    share kept in a list (a custom domain whose parameter is not an array)."""

    is_box = False

    def __init__(self, lower, upper, share, **extra):
        super().__init__(lower, upper)
        self.share = [float(share)]
        for name, value in extra.items():
            setattr(self, name, value)

    def first_layer_bounds(self, weight, bias):
        inner = self.lower + self.share[0] * (self.upper - self.lower)
        return Box(self.lower, inner).first_layer_bounds(weight, bias)


def test_a_custom_domain_parameter_that_is_not_an_array_is_part_of_the_key():
    # it was left out of the key: the second domain got the first's (too tight) bounds
    cache = BoundsCache()
    net = _net()
    lower, upper = np.zeros(6), np.ones(6)
    half = _compute(cache, net, method="interval", domain=SubBox(lower, upper, 0.5))
    whole = _compute(cache, net, method="interval", domain=SubBox(lower, upper, 1.0))
    assert (cache.hits, cache.misses) == (0, 2)
    truth = cached_compute_bounds(
        extract_layers(net), lower, upper, "interval", SubBox(lower, upper, 1.0), cache=False
    )
    assert _same(whole, truth) and not _same(half, truth)
    again = _compute(cache, net, method="interval", domain=SubBox(lower, upper, 0.5))
    assert cache.hits == 1 and _same(again, half)


def test_a_custom_domain_the_key_cannot_hash_is_computed_every_time_unless_it_has_a_key():
    cache = BoundsCache()
    net = _net()
    lower, upper = np.zeros(6), np.ones(6)
    domain = SubBox(lower, upper, 0.5, rule=object())  # an attribute the key cannot read
    first = _compute(cache, net, method="interval", domain=domain)
    second = _compute(cache, net, method="interval", domain=domain)
    assert (cache.hits, cache.misses, len(cache)) == (0, 0, 0)
    assert _same(first, second)
    # a domain that says what defines it (cache_key) is cached by that
    keyed = SubBox(lower, upper, 0.5, rule=object(), cache_key=lambda: ("subbox", 0.5))
    _compute(cache, net, method="interval", domain=keyed)
    again = _compute(cache, net, method="interval", domain=keyed)
    assert (cache.hits, cache.misses) == (1, 1) and _same(again, first)


def test_cache_refusals_and_a_cache_of_size_zero():
    with pytest.raises(ValueError, match="max_entries must be >= 0, got -1"):
        BoundsCache(max_entries=-1)
    net = _net()
    with pytest.raises(TypeError, match="cache must be a bool or a BoundsCache, got str"):
        cached_compute_bounds(extract_layers(net), np.zeros(6), np.ones(6), cache="yes")
    none = BoundsCache(max_entries=0)
    first, second = _compute(none, net), _compute(none, net)
    assert (none.hits, none.misses, len(none)) == (0, 2, 0)
    assert _same(first, second) and not second.cache_hit
