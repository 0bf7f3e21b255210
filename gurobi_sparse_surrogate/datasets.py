"""Data sets and networks for the paper's experiments (the public face of :mod:`.data`, where
they live in ``loaders``, ``models`` and ``training``).

Bundled MNIST digits and scikit-learn's digits (no downloads), a reader for the standard MNIST
IDX files, the paper's classifiers and random ReLU networks, training and saving.
"""

from .data.idx import read_idx, write_idx
from .data.loaders import load_digits, load_mnist, resize_images, train_test_split
from .data.models import (
    TrainedClassifier,
    make_cnn,
    make_mlp,
    mnist_classifier,
    random_relu_network,
)
from .data.training import AUGMENTATION, MIN_AUGMENT_SIDE, accuracy, train_classifier
from .exceptions import DatasetFormatError
from .network.serialization import load_network, save_network

__all__ = [
    "AUGMENTATION",
    "DatasetFormatError",
    "MIN_AUGMENT_SIDE",
    "TrainedClassifier",
    "accuracy",
    "load_digits",
    "load_mnist",
    "load_network",
    "make_cnn",
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
