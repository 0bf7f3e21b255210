"""Bad input fails early with a specific error that names the problem (datasets, network files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_network

from gurobi_sparse_surrogate.datasets import accuracy, train_classifier
from gurobi_sparse_surrogate.exceptions import DatasetFormatError, ShapeMismatchError
from gurobi_sparse_surrogate.network.serialization import load_network, save_network

X = np.random.default_rng(0).random((12, 3))
Y = np.arange(12) % 3
NET = random_network(0, 3, (4,), 3)


@pytest.mark.parametrize(
    ("X_", "y_", "error", "message"),
    [
        (X[:, 0], Y, ShapeMismatchError, r"X must be 2-D \(n_samples, n_features\), got shape"),
        (X, Y[:, None], ShapeMismatchError, r"y must be 1-D \(n_samples,\), got shape"),
        (X, Y[:5], ShapeMismatchError, "X has 12 samples but y has 5 labels"),
        (np.where(X > 0.9, np.nan, X), Y, ValueError, "X must contain finite numbers"),
        (X.astype(str), Y, ValueError, "X must contain finite numbers"),
        (X, Y + 0.5, TypeError, "y must contain integer class labels, got dtype float64"),
        (X, Y - 1, ValueError, "non-negative class labels, got -1"),
    ],
)
def test_data_checked_at_the_boundary(X_, y_, error, message):
    with pytest.raises(error, match=message):
        accuracy(NET, X_, y_)
    with pytest.raises(error, match=message):
        train_classifier(X_, y_, hidden=(4,), epochs=1)


def test_float_labels_with_integer_values_are_accepted():
    assert accuracy(NET, X, Y.astype(np.float64)) == accuracy(NET, X, Y)


def test_training_options_are_checked():
    with pytest.raises(ValueError, match="accuracy of an empty data set"):
        accuracy(NET, X[:0], Y[:0])
    with pytest.raises(ValueError, match="cannot train on an empty data set"):
        train_classifier(X[:0], Y[:0], hidden=(4,))
    with pytest.raises(ValueError, match="lr must be positive, got 0"):
        train_classifier(X, Y, hidden=(4,), lr=0)
    with pytest.raises(ValueError, match="weight_decay must be non-negative, got -1"):
        train_classifier(X, Y, hidden=(4,), weight_decay=-1)
    with pytest.raises(ValueError, match="give both X_val and y_val, or neither"):
        train_classifier(X, Y, hidden=(4,), X_val=X)
    with pytest.raises(ShapeMismatchError, match="X_val has 2 features but X has 3"):
        train_classifier(X, Y, hidden=(4,), X_val=X[:, :2], y_val=Y)


def test_validation_accuracy_is_the_accuracy_on_the_validation_set():
    net = train_classifier(X, Y, hidden=(4,), epochs=2, seed=0, X_val=X[:6], y_val=Y[:6])
    assert 0.0 <= accuracy(net, X[:6], Y[:6]) <= 1.0


# ------------------------------------------------------------------------------ network files


def edited_file(tmp_path, edit) -> str:
    """A network file written by save_network, then changed by ``edit(payload)``."""
    path = tmp_path / "net.pt"
    save_network(NET, path)
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)
    return str(path)


def test_a_saved_network_loads_back_exactly(tmp_path):
    path = edited_file(tmp_path, lambda p: None)
    x = torch.rand(5, 3)
    assert torch.equal(load_network(path)(x), NET(x))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.update(version=999), "network file version 999, this version"),
        (lambda p: p.update(architecture=["Linear"]), "malformed architecture entry at top level"),
        (
            lambda p: p["architecture"]["children"][0][1].pop("in_features"),
            "malformed Linear entry at 0: missing 'in_features'",
        ),
        (
            lambda p: p.update(architecture=p["architecture"]["children"][1][1]),
            "does not hold a Sequential network",
        ),
        (lambda p: p.update(state_dict=[1, 2]), "holds no state_dict"),
        (
            lambda p: p["state_dict"].update({"0.weight": torch.zeros(2, 2)}),
            "weights do not match the architecture",
        ),
        (lambda p: p.update(format="something else"), "not a network file written by save_network"),
    ],
)
def test_malformed_network_files_are_named(tmp_path, edit, message):
    path = edited_file(tmp_path, edit)
    with pytest.raises(DatasetFormatError, match=message):
        load_network(path)


def test_files_that_are_not_network_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_network(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(DatasetFormatError, match="is not a network file of save_network"):
        load_network(junk)


# ------------------------------------------------------------------------------ IDX files


def test_idx_files_that_are_cut_short_or_cannot_be_written(tmp_path):
    from gurobi_sparse_surrogate.data.idx import read_idx, write_idx

    path = tmp_path / "x-idx3-ubyte"
    # a 3-D uint8 header (magic 0 0 8 3) that stops after one of its three dimensions
    path.write_bytes(bytes([0, 0, 8, 3]) + np.asarray([2], dtype=">u4").tobytes())
    with pytest.raises(DatasetFormatError, match="truncated IDX header"):
        read_idx(path)
    with pytest.raises(ValueError, match="IDX files hold 1 to 255 dimensions, got 0"):
        write_idx(path, np.uint8(3))
    with pytest.raises(TypeError, match="IDX files cannot hold complex128"):
        write_idx(path, np.zeros(3, dtype=complex))
