"""Data sets and networks for the paper's experiments (the public face of :mod:`.data`).

Bundled MNIST digits and scikit-learn's digits (no downloads), a reader for the standard MNIST
IDX files, the paper's classifiers and random ReLU networks, training and saving.
"""

from .data.datasets import (
    AUGMENTATION,
    MIN_AUGMENT_SIDE,
    DatasetFormatError,
    TrainedClassifier,
    accuracy,
    load_digits,
    load_mnist,
    load_network,
    make_cnn,
    make_mlp,
    mnist_classifier,
    random_relu_network,
    read_idx,
    resize_images,
    save_network,
    train_classifier,
    train_test_split,
    write_idx,
)

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
