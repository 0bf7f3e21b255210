"""Benchmark method specs and instance sizes (benchmarks/suites.py): bad input named, sizes
counted from the torch network itself."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks.suites import Instance, method, verification_instances
from gurobi_sparse_surrogate.datasets import make_cnn


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "surrogate", "rate": 0.5, "criterion": "gut"}, "criterion must be one of"),
        (
            {"kind": "dense", "criterion": "bound"},
            "criterion= applies to surrogate methods, not dense",
        ),
        ({"kind": "surrogate", "rate": 0.5, "structure": "layer"}, "structure must be 'global' or"),
        ({"kind": "gurobi-ml-loop", "attack": True}, "gurobi-ml-loop has no attack stage"),
        ({"kind": "attack", "attack": True}, "attack=True is redundant"),
        ({"kind": "paper", "rate": 0.5, "bounds": "linear"}, "bounds= applies to dense and surr"),
        ({"kind": "dense", "relu_formulation": "indicator"}, "got 'indicator' for dense"),
        ({"kind": "gurobi-ml", "relu_formulation": "max"}, "got 'max' for gurobi-ml"),
        ({"kind": "dense", "suites": ["sorting"]}, r"unknown suites \['sorting'\]"),
    ],
)
def test_bad_method_options_are_named(kwargs, message):
    kind = kwargs.pop("kind")
    with pytest.raises(ValueError, match=message):
        method(kind, **kwargs)


def test_method_options_reach_the_spec():
    spec = method("dense", relu_formulation="max", suites=["verification"])
    assert spec.name == "dense-max"
    assert spec.options == {"attack": False, "relu_formulation": "max", "suites": ["verification"]}
    bigm = method("surrogate", rate=0.5, relu_formulation="bigm")  # the default: no suffix
    assert bigm.name == "surrogate-0.5" and "relu_formulation" not in bigm.options
    assert method("dense-loop").name == "dense-loop"


def _neurons(network: nn.Sequential, n_in: int) -> int:
    """Hidden values of ``network`` (outputs of every module before the last Linear) that
    gurobi-ml gives a variable pair: the outputs of convolutions, poolings and hidden Linears."""
    count, x = 0, torch.zeros(1, n_in)
    modules = list(network)
    for module in modules[:-1]:
        x = module(x)
        if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.Linear):
            count += x.numel()
    return count


@pytest.mark.parametrize("size", [8, 14])
def test_cnn_instance_size_counts_the_network_it_trains(size):
    (inst,) = verification_instances([size], [(16,)], 1, arch="cnn", n_test=500)
    network = make_cnn(size, hidden=16)
    n_in, neurons = size * size, _neurons(network, size * size)
    # an L1 ball: one absolute value per input and two rows each, plus the radius row
    assert inst.estimated_size() == (2 * n_in + 2 * neurons + 10, neurons + 10 + 2 * n_in + 1)


def test_linf_instance_size_has_no_rows_for_the_box():
    (inst,) = verification_instances([8], [(8, 8)], 1, dataset="digits", n_test=360)
    linf = Instance(inst.suite, inst.id, {**inst.params, "norm": "linf"})
    assert linf.estimated_size() == (64 + 2 * 16 + 10, 16 + 10)
    assert inst.estimated_size() == (2 * 64 + 2 * 16 + 10, 16 + 10 + 2 * 64 + 1)
