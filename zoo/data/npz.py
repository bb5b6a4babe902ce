"""NumPy files: an .npz of X and y (training or scoring), a bare .npy array (prediction input)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from zoo.data.cells import BadCells
from zoo.data.dataset import DataError
from zoo.data.labels import Labels
from zoo.data.sniff import what_came


def read_npz(path: Path, dtype=np.float64):
    """(X, labels, feature names, targets) of an .npz with arrays X, y and optional feature_names/target_names."""
    with _open_npz(path) as z:
        if "X" not in z or "y" not in z:
            raise DataError(f"{path}: expected arrays 'X' (features) and 'y' (labels); found {', '.join(z.files) or 'none'}")
        X, y = _npz_array(path, z, "X"), _npz_array(path, z, "y")
        features = (
            [str(s) for s in _npz_array(path, z, "feature_names")]
            if "feature_names" in z
            else [f"f{i}" for i in range(X.shape[1] if X.ndim == 2 else 0)]
        )
        targets = [str(s) for s in _npz_array(path, z, "target_names")] if "target_names" in z else ["y"]
    if X.ndim != 2 or X.shape[0] == 0:
        raise DataError(f"{path}: 'X' must be a non-empty 2-D array [rows, features]; got shape {list(X.shape)}")
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"{path}: 'X' must be numeric; got dtype {X.dtype}")
    if len(y) != len(X):
        raise DataError(f"{path}: 'X' has {len(X)} rows but 'y' has {len(y)}")
    X = X.astype(np.float64)
    bad = BadCells(path)
    for r, c in np.argwhere(~np.isfinite(X)):  # row-major: file order
        bad.add(f"column {features[c]!r}, row {r}: not a finite number (NaN/Inf)")
    bad.raise_if_any()
    y_raw = [list(map(str, row)) if np.ndim(row) else [str(row)] for row in y]
    if y.ndim == 2 and targets == ["y"]:
        targets = [f"label_{i}" for i in range(y.shape[1])]
    labels = [Labels.from_texts(row[c] for row in y_raw) for c in range(len(y_raw[0]))]
    return X.astype(dtype, copy=False), labels, features, targets


def _open_npz(path: Path):
    """np.load of an .npz, or a DataError saying what the file is instead."""
    expected = "expected a NumPy .npz archive with arrays 'X' and 'y' (numpy.savez)"
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise DataError(f"{path}: not an NPZ archive ({what_came(path)}); {expected}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not an NPZ archive (it holds a single NumPy array, a .npy file); {expected}")
    return z


def _npz_array(path: Path, z, key: str) -> np.ndarray:
    """One array of an open .npz; object arrays (pickled) are refused by name."""
    try:
        return z[key]
    except ValueError:  # allow_pickle=False
        raise DataError(f"{path}: {key!r} holds Python objects; expected a numeric or string array") from None


def read_npy(path: Path) -> tuple[np.ndarray, list[str], None]:
    """(X float64, f0.., None) of a .npy prediction input."""
    try:
        X = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        X = None
    if isinstance(X, np.lib.npyio.NpzFile):  # a zip archive: release its file handle before refusing it
        X.close()
    if not isinstance(X, np.ndarray):
        raise DataError(f"{path}: not a NumPy .npy array ({what_came(path)}); expected an array saved with numpy.save")
    if X.ndim == 1:
        X = X[None, :]
    try:
        X = X.astype(np.float64)
    except (ValueError, TypeError):
        raise DataError(f"{path}: expected a numeric array; got dtype {X.dtype}") from None
    return X, [f"f{i}" for i in range(X.shape[1])], None
