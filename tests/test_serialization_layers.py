"""save_network / load_network on every module type the package embeds: the loaded network is
the same function (torch forward pass on random inputs) and embeds to the same model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from gurobi_sparse_surrogate import UnsupportedNetworkError, add_sparse_predictor_constr
from gurobi_sparse_surrogate.network.serialization import load_network, save_network


def _cnn() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Unflatten(1, (2, 6, 6)),
        nn.Conv2d(2, 3, kernel_size=(3, 2), stride=(1, 2), padding=1, bias=True),
        nn.BatchNorm2d(3, eps=1e-3, momentum=0.2),
        nn.ReLU(),
        nn.MaxPool2d(2, stride=1, padding=1, ceil_mode=True),
        nn.Conv2d(3, 2, 3, padding="same", bias=False),
        nn.AvgPool2d(2, stride=2, count_include_pad=False),
        nn.Dropout2d(0.1),
        nn.Flatten(),
        nn.Linear(2 * 3 * 2, 5),
        nn.BatchNorm1d(5, affine=False),
        nn.Dropout1d(0.2),
        nn.ReLU(),
        nn.Identity(),
        nn.Linear(5, 3),
    )
    net.train()  # batch statistics move the running statistics away from their defaults
    with torch.no_grad():
        net(torch.rand(16, 72))
    prune.l1_unstructured(net[1], "weight", amount=0.4)
    return net.eval()


def test_every_embedded_module_type_round_trips(tmp_path, model):
    net = _cnn()
    save_network(net, tmp_path / "cnn.pt")
    back = load_network(tmp_path / "cnn.pt")
    assert [type(m) for m in back] == [type(m) for m in net]
    assert not back.training
    assert back[6].count_include_pad is False and back[4].ceil_mode is True
    assert back[1].kernel_size == (3, 2) and back[5].padding == "same"
    assert torch.equal(back[1].weight_mask, net[1].weight_mask)
    assert torch.equal(back[2].running_var, net[2].running_var)
    x = torch.rand(64, 72)
    with torch.no_grad():
        assert torch.equal(back(x), net(x))
    # and it embeds to the same function: fix the inputs, compare with torch
    point = np.random.default_rng(0).random(72)
    xv = model.addMVar((1, 72), lb=point, ub=point)
    pc = add_sparse_predictor_constr(model, back, xv, bounds="interval")
    model.optimize()
    with torch.no_grad():
        expected = net(torch.as_tensor(point[None], dtype=torch.float32)).numpy()
    np.testing.assert_allclose(pc.output.X, expected, atol=1e-4)


@pytest.mark.parametrize(
    "module", [nn.Tanh(), nn.Conv1d(1, 1, 1), type("MyLinear", (nn.Linear,), {})(2, 2)]
)
def test_other_modules_and_subclasses_are_refused_by_name(tmp_path, module):
    net = nn.Sequential(nn.Linear(2, 2), module)
    with pytest.raises(UnsupportedNetworkError, match=type(module).__name__ + r" \(at 1\)"):
        save_network(net, tmp_path / "x.pt")


def test_a_shared_module_and_max_pooling_indices_survive_the_round_trip(tmp_path):
    """A Linear used at two places was described once while the state held its weights
    under both places: the file saved, then failed to load. A max pool's return_indices
    was dropped: the loaded network returned a tensor where the saved one returned a pair."""
    torch.manual_seed(0)
    shared = nn.Linear(3, 3)
    net = nn.Sequential(shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(3, 1))
    save_network(net, tmp_path / "shared.pt")
    back = load_network(tmp_path / "shared.pt")
    assert [type(m) for m in back] == [type(m) for m in net]
    x = torch.rand(20, 3)
    with torch.no_grad():
        assert torch.equal(back(x), net(x))
    pool = nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.MaxPool2d(2, return_indices=True))
    save_network(pool, tmp_path / "pool.pt")
    again = load_network(tmp_path / "pool.pt")
    assert again[1].return_indices is True
    image = torch.rand(2, 16)
    for got, want in zip(again(image), pool(image), strict=True):
        assert torch.equal(got, want)
