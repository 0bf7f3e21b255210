"""Extraction done once per network state (network/memo.py): the cache never returns the
layers of another state. Each case changes the network the way a user does and checks the
embedding's layers against a fresh extraction (the independent truth)."""

from __future__ import annotations

import gurobipy as gp
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from gurobi_sparse_surrogate import add_sparse_predictor_constr
from gurobi_sparse_surrogate.exceptions import BatchNormTrainingError
from gurobi_sparse_surrogate.network.extraction import extract_layers
from gurobi_sparse_surrogate.network.memo import (
    clear_layers_cache,
    extract_layers_cached,
    network_fingerprint,
)


def net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def same_layers(a, b) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x.weight.toarray(), y.weight.toarray())
        and np.array_equal(x.bias, y.bias)
        and x.relu == y.relu
        for x, y in zip(a, b, strict=True)
    )


def test_the_same_state_is_extracted_once():
    clear_layers_cache()
    network = net()
    first = extract_layers_cached(network)
    again = extract_layers_cached(network)
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert same_layers(first, extract_layers(network))


@pytest.mark.parametrize(
    "change",
    [
        "in place",
        "through .data",
        "replaced parameter",
        "bias",
        "pruned",
        "mask changed",
        "forward hook",
    ],
)
def test_every_change_of_state_misses(change):
    network = net()
    before = extract_layers_cached(network)
    key = network_fingerprint(network)
    with torch.no_grad():
        if change == "in place":
            network[0].weight[0, 0] += 1.0
        elif change == "through .data":
            network[2].weight.data.mul_(2.0)
        elif change == "replaced parameter":
            network[0].weight = nn.Parameter(torch.ones(4, 3))
        elif change == "bias":
            network[2].bias.fill_(3.0)
        elif change == "pruned":
            prune.l1_unstructured(network[0], "weight", amount=6)
        elif change == "mask changed":
            prune.l1_unstructured(network[0], "weight", amount=6)
            pruned = extract_layers_cached(network)
            network[0].weight_mask.fill_(1.0)
            network(torch.zeros(1, 3))  # the hook recomputes the masked weight
            unmasked = extract_layers_cached(network)
            assert not same_layers(pruned, unmasked)
            assert same_layers(unmasked, extract_layers(network))
            return
        elif change == "forward hook":
            network[2].register_forward_hook(lambda module, args, out: out * 2.0)
    assert network_fingerprint(network) != key
    if change == "forward hook":
        # the hook may change what torch computes: refused, as without the cache
        with pytest.raises(Exception, match="forward hook"):
            extract_layers_cached(network)
        return
    after = extract_layers_cached(network)
    assert same_layers(after, extract_layers(network))
    assert not same_layers(after, before)


def test_two_networks_with_equal_shapes_and_training_mode_differ():
    a, b = net(0), net(1)
    assert not same_layers(extract_layers_cached(a), extract_layers_cached(b))
    norm = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1)).eval()
    extract_layers_cached(norm)
    norm.train()
    with pytest.raises(BatchNormTrainingError):
        extract_layers_cached(norm)


def test_the_embedding_follows_changed_weights():
    network = net()
    outputs = []
    for shift in (0.0, 1.0):
        with torch.no_grad():
            network[2].bias.add_(shift)
        with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as m:
            x = m.addMVar(3, lb=0.5, ub=0.5)
            pc = add_sparse_predictor_constr(m, network, x)
            m.optimize()
            outputs.append(pc.output.X.copy())
            expected = network(torch.full((1, 3), 0.5)).detach().numpy().ravel()
            np.testing.assert_allclose(outputs[-1].ravel(), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(outputs[0], outputs[1])


def test_cached_layers_are_read_only():
    """Every embedding of one network state shares the cached layers: a write to one of
    them would change the next embedding's model. They are read-only, so it fails there."""
    clear_layers_cache()
    network = net()
    layers = extract_layers_cached(network)
    with pytest.raises(ValueError, match="read-only"):
        layers[0].bias[0] = 5.0
    with pytest.raises(ValueError, match="read-only"):
        layers[1].weight.data *= 2.0
    assert same_layers(extract_layers_cached(network), extract_layers(network))
    # operations that sort a matrix's indices in place still work (they are sorted already)
    assert layers[0].weight.has_sorted_indices
    assert (layers[1].weight @ layers[0].weight).shape == (2, 3)
