"""The in-memory dataset every recipe and data file turns into, with a seeded stratified split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


class DataError(ValueError):
    """Data that cannot be trained on; the message names the file, column and row where it can."""


@dataclass
class Dataset:
    """Features (float32 [N, F]), targets (int64 [N], or float32 [N, C] for multilabel) and names."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]
    class_names: list[str]
    task: str  # multiclass | binary | multilabel
    source: str = ""
    # How to load these exact rows again: {"recipe": NAME} or {"file": PATH, "target": COLUMNS, "seed": S,
    # "test_fraction": F}; recorded with the run and the export so `zoo evaluate` can rebuild the test split.
    origin: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # label mistakes worth a word (see zoo.data.labels)

    @property
    def num_features(self) -> int:
        """Input width."""
        return self.X_train.shape[1]

    @property
    def num_classes(self) -> int:
        """Number of classes (2 for binary)."""
        return len(self.class_names)

    def fingerprint(self) -> str:
        """SHA-256 over the arrays and names: the same data gives the same fingerprint everywhere."""
        h = hashlib.sha256()
        for a in (self.X_train, self.y_train, self.X_test, self.y_test):
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        h.update("\x1f".join(self.feature_names + ["|"] + self.class_names).encode())
        return h.hexdigest()


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) holding out `test_fraction` of every class, shuffled by `seed`."""
    rng = np.random.default_rng(seed)
    keys = y if y.ndim == 1 else np.zeros(len(y), dtype=np.int64)
    train, test = [], []
    for c in np.unique(keys):
        idx = np.flatnonzero(keys == c)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_fraction))
        if len(idx) > 1:
            n_test = min(max(n_test, 1), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    rng.shuffle(train_idx)
    rng.shuffle(test_idx)
    return train_idx, test_idx


def from_arrays(name, X, y, feature_names, class_names, task, *, test_fraction=0.2, seed=0, source="") -> Dataset:
    """Split full arrays into a Dataset (float32 features, int64 or float32 multilabel targets)."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32 if task == "multilabel" else np.int64)
    tr, te = stratified_split(y, test_fraction, seed)
    return Dataset(name, X[tr], y[tr], X[te], y[te], list(feature_names), list(class_names), task, source)
