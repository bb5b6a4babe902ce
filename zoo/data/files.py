"""The user's own data: CSV/TSV (with header), NPZ/NPY and Parquet files, one reader module per format.

Every reader returns (X, labels, feature names, targets); here the labels become classes, and the label mistakes
worth knowing about (labels differing only by case or whitespace, classes with very few rows) become warnings on
the dataset, or errors when asked to be strict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.data.csv_reader import read_csv
from zoo.data.dataset import DataError, Dataset, from_arrays
from zoo.data.labels import encode_targets, label_rows
from zoo.data.npz import read_npy, read_npz
from zoo.data.parquet import read_parquet

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


def load_file(
    path: str | Path,
    target: str | None,
    *,
    name: str | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    strict_labels: bool = False,
) -> Dataset:
    """Load a CSV/NPZ/Parquet file; `target` names the label column (comma-separated columns: multilabel).

    Label warnings land in `Dataset.warnings`; with `strict_labels` they are a DataError instead.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    # Training features are float32: reading straight into float32 (each value still parsed as float64 first, so
    # the numbers are those of a float64 read cast by from_arrays) saves holding a float64 copy of the whole file.
    if suffix == ".npz":
        X, labels, features, targets = read_npz(path, np.float32)
    elif suffix in PARQUET_SUFFIXES:
        X, labels, features, targets = read_parquet(path, _targets(path, target), np.float32)
    elif suffix in CSV_SUFFIXES:
        X, labels, features, targets = read_csv(path, _targets(path, target), np.float32)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .npz or .parquet")
    y, class_names, task, warnings = encode_targets(path, labels, targets)
    del labels  # a code per row: not needed while from_arrays splits
    if warnings and strict_labels:
        raise DataError(f"{path}: " + "; ".join(warnings) + " (--strict-labels)")
    data = from_arrays(
        name or path.stem, X, y, features, class_names, task, seed=seed, test_fraction=test_fraction, source=str(path.resolve())
    )
    data.warnings = [f"{path}: {w}" for w in warnings]
    return data


def read_rows(path: str | Path, target: str | None) -> tuple[np.ndarray, list[str], list[list[str]] | None]:
    """(features float64 [N, F], feature names, raw label strings or None) of a whole file, for scoring.

    Without a target, every column is a feature (prediction input).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    targets = _targets(path, target) if target else []
    if suffix == ".npz":
        X, labels, features, _ = read_npz(path)
        return X, features, label_rows(labels, len(X)) if target else None
    if suffix == ".npy":
        return read_npy(path)
    if suffix in PARQUET_SUFFIXES:
        X, labels, features, _ = read_parquet(path, targets)
    elif suffix in CSV_SUFFIXES:
        X, labels, features, _ = read_csv(path, targets)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .npy, .npz or .parquet")
    return X, features, label_rows(labels, len(X)) if target else None


def _targets(path: Path, target: str | None) -> list[str]:
    """The label column names of a --target value."""
    names = [t.strip() for t in (target or "").split(",") if t.strip()]
    if not names:
        raise DataError(f"{path}: name the label column with --target COLUMN")
    return names
