"""The paper's networks: ReLU MLPs (:func:`make_mlp`), randomly initialised networks for
function maximization (:func:`random_relu_network`), and the paper's MNIST classifiers,
trained once and kept in a cache keyed by every argument (:func:`mnist_classifier`)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..network.serialization import FORMAT_VERSION, load_network, save_network
from . import training
from .checks import _check_hidden, _check_int
from .loaders import load_mnist, train_test_split
from .training import TRAINING_DEFAULTS, accuracy, train_classifier


def make_mlp(n_inputs: int, hidden: Sequence[int], n_outputs: int) -> nn.Sequential:
    """Build a ReLU MLP: ``Linear, ReLU, ..., Linear, ReLU, Linear`` (float32, PyTorch init).

    Parameters
    ----------
    n_inputs : int
        Number of inputs.
    hidden : sequence of int
        Widths of the hidden layers (each followed by a ReLU); empty for an affine map.
    n_outputs : int
        Number of outputs (no activation on the output layer).

    Returns
    -------
    torch.nn.Sequential

    Examples
    --------
    >>> make_mlp(4, (8, 8), 2)
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=8, bias=True)
      (3): ReLU()
      (4): Linear(in_features=8, out_features=2, bias=True)
    )
    """
    n_inputs = _check_int(n_inputs, "n_inputs", 1)
    n_outputs = _check_int(n_outputs, "n_outputs", 1)
    hidden = _check_hidden(hidden)
    sizes = (n_inputs, *hidden)
    modules: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        modules += [nn.Linear(n_in, n_out), nn.ReLU()]
    modules.append(nn.Linear(sizes[-1], n_outputs))
    return nn.Sequential(*modules)


def make_cnn(
    side: int = 14,
    channels: int = 4,
    hidden: int = 32,
    n_outputs: int = 10,
    *,
    max_pool: bool = True,
) -> nn.Sequential:
    """Build a small CNN for ``side x side`` grey images that reads flat inputs.

    ``Unflatten(1, (1, side, side))``, a 3x3 convolution with stride 2 and ``channels`` output
    channels, a ReLU, a 2x2 max pool with stride 1 (``max_pool=True``), then a ReLU MLP with one
    hidden layer of ``hidden`` neurons. At 14x14 pixels with the defaults: 196 convolution
    neurons, 144 pooled values, 32 hidden neurons; small enough to embed with an L1 ball
    under the size-limited Gurobi licence.

    Examples
    --------
    >>> net = make_cnn(14)
    >>> net(torch.zeros(2, 196)).shape
    torch.Size([2, 10])
    """
    side = _check_int(side, "side", 3)
    channels = _check_int(channels, "channels", 1)
    hidden = _check_int(hidden, "hidden", 1)
    n_outputs = _check_int(n_outputs, "n_outputs", 1)
    conv_side = (side + 2 - 3) // 2 + 1
    pooled = conv_side - 1 if max_pool else conv_side
    modules: list[nn.Module] = [
        nn.Unflatten(1, (1, side, side)),
        nn.Conv2d(1, channels, 3, stride=2, padding=1),
        nn.ReLU(),
    ]
    if max_pool:
        modules.append(nn.MaxPool2d(2, stride=1))
    modules += [
        nn.Flatten(),
        nn.Linear(channels * pooled * pooled, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_outputs),
    ]
    return nn.Sequential(*modules)


def random_relu_network(
    n_inputs: int,
    depth: int,
    width: int | Sequence[int],
    *,
    seed: int = 0,
    n_outputs: int = 1,
) -> nn.Sequential:
    """A seeded, randomly initialised ReLU MLP, for the function-maximization application.

    The weights follow PyTorch's default initialisation, drawn from a generator seeded with
    ``seed`` (the global torch random state is left untouched).

    Parameters
    ----------
    n_inputs : int
        Number of inputs (the paper uses 100 to 10,000).
    depth : int
        Number of hidden ReLU layers (the paper uses 2 to 5).
    width : int or sequence of int
        Width of every hidden layer (the paper uses 50 to 200), or one width per layer.
    seed : int, default 0
        Seed of the weights.
    n_outputs : int, default 1
        Number of outputs.

    Returns
    -------
    torch.nn.Sequential
        float32, in evaluation mode.

    Examples
    --------
    >>> net = random_relu_network(100, depth=2, width=50, seed=1)
    >>> [m.out_features for m in net if isinstance(m, torch.nn.Linear)]
    [50, 50, 1]
    """
    depth = _check_int(depth, "depth", 1)
    if isinstance(width, int | np.integer):
        hidden = (_check_int(width, "width", 1),) * depth
    else:
        hidden = _check_hidden(width, "width")
        if len(hidden) != depth:
            raise ValueError(f"width lists {len(hidden)} layer widths but depth is {depth}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = make_mlp(n_inputs, hidden, n_outputs)
    return network.eval()


@dataclass(frozen=True, eq=False)
class TrainedClassifier:
    """A trained classifier with the data it was trained and evaluated on.

    Attributes
    ----------
    network : torch.nn.Sequential
        float32, evaluation mode.
    X_train, y_train, X_test, y_test : numpy.ndarray
        The seeded split the network was trained on and held out from.
    test_accuracy : float
        Accuracy on the held-out part.
    """

    network: nn.Sequential
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    test_accuracy: float


def mnist_classifier(
    size: int = 18,
    hidden: Sequence[int] = (64, 64),
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    *,
    path: str | os.PathLike | None = None,
    test_size: float = 0.2,
    **train_options: Any,
) -> TrainedClassifier:
    """Load MNIST, split it, and train (or load from the cache) one of the paper's classifiers.

    Parameters
    ----------
    size : int, default 18
        Image side (the paper: 28 and 18).
    hidden : sequence of int, default (64, 64)
        Hidden widths (the paper: (32, 32), (64, 64), (32,) * 4, (64,) * 4).
    seed : int, default 0
        Seed of the split and of the training.
    cache_dir : str, os.PathLike or None, default None
        Directory in which trained networks are kept, keyed by every argument; None trains
        every time.
    path : str, os.PathLike or None, default None
        MNIST IDX directory, passed to :func:`load_mnist` (None: the bundled 5,000 digits).
    test_size : float, default 0.2
        Held-out share.
    **train_options
        Passed to :func:`train_classifier` (``epochs``, ``lr``, ``weight_decay``,
        ``batch_size``, ``augment``).

    Returns
    -------
    TrainedClassifier

    Examples
    --------
    >>> clf = mnist_classifier(size=18, hidden=(32, 32), epochs=1)
    >>> clf.network[0].in_features, clf.X_test.shape
    (324, (1000, 324))
    """
    allowed = set(TRAINING_DEFAULTS)
    if unknown := set(train_options) - allowed:
        raise TypeError(f"unknown training options {sorted(unknown)}; allowed: {sorted(allowed)}")
    hidden = _check_hidden(hidden)
    X, y = load_mnist(path, size)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, seed=seed)

    cache_file = None
    if cache_dir is not None:
        key = {
            "size": size,
            "hidden": hidden,
            "seed": seed,
            "path": None if path is None else str(Path(path).resolve()),
            "test_size": test_size,
            # the resolved training options, so that a change of defaults invalidates the cache
            "train_options": {**TRAINING_DEFAULTS, **train_options},
            "augmentation": training.AUGMENTATION,
            "version": FORMAT_VERSION,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        arch = "x".join(map(str, hidden)) or "linear"
        cache_file = Path(cache_dir) / f"mnist{size}-mlp{arch}-seed{seed}-{digest}.pt"

    if cache_file is not None and cache_file.is_file():
        network = load_network(cache_file)
    else:
        network = train_classifier(X_train, y_train, hidden, seed=seed, **train_options)
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            # write then rename, so that concurrent workers never read a partial file
            fd, tmp = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp")
            os.close(fd)
            try:
                save_network(network, tmp)
                os.replace(tmp, cache_file)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
    return TrainedClassifier(
        network=network,
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        test_accuracy=accuracy(network, X_test, y_test),
    )


__all__ = ["TrainedClassifier", "make_cnn", "make_mlp", "mnist_classifier", "random_relu_network"]
