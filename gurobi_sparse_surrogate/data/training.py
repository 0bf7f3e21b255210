"""Training the paper's classifiers (:func:`train_classifier`, with optional augmentation) and
measuring them (:func:`accuracy`)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..exceptions import ShapeMismatchError
from ..torch_threads import single_torch_thread
from .checks import _check_data, _check_hidden, _check_int


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
    >>> from gurobi_sparse_surrogate.datasets import load_digits, make_mlp
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
    >>> from gurobi_sparse_surrogate.datasets import load_digits
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
        from .models import make_mlp  # models imports this module (the classifier cache)

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

    network.train()
    with single_torch_thread():
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
    return network.eval()


def _training_defaults() -> dict[str, Any]:
    names = ("epochs", "lr", "weight_decay", "batch_size", "augment")
    parameters = inspect.signature(train_classifier).parameters
    return {name: parameters[name].default for name in names}


#: The defaults of the training options of :func:`train_classifier` (from its signature).
TRAINING_DEFAULTS = _training_defaults()


__all__ = ["AUGMENTATION", "MIN_AUGMENT_SIDE", "TRAINING_DEFAULTS", "accuracy", "train_classifier"]
