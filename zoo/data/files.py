"""The user's own data: CSV (with header), NPZ and Parquet files, validated with errors that point at the cell."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from zoo.data.dataset import DataError, Dataset, from_arrays


def load_file(path: str | Path, target: str | None, *, name: str | None = None, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Load a CSV/NPZ/Parquet file; `target` names the label column (comma-separated columns: multilabel)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        X, y_raw, features, targets = _read_npz(path)
    elif suffix in (".parquet", ".pq"):
        X, y_raw, features, targets = _read_parquet(path, _targets(path, target))
    elif suffix in (".csv", ".tsv", ".txt"):
        X, y_raw, features, targets = _read_csv(path, _targets(path, target))
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .npz or .parquet")
    y, class_names, task = _encode_targets(path, y_raw, targets)
    return from_arrays(name or path.stem, X, y, features, class_names, task, seed=seed, test_fraction=test_fraction,
                       source=str(path.resolve()))


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
        X, y_raw, features, _ = _read_npz(path)
        return X, features, y_raw if target else None
    if suffix == ".npy":
        X = np.load(path, allow_pickle=False)
        if X.ndim == 1:
            X = X[None, :]
        return X.astype(np.float64), [f"f{i}" for i in range(X.shape[1])], None
    if suffix in (".parquet", ".pq"):
        X, y_raw, features, _ = _read_parquet(path, targets)
    elif suffix in (".csv", ".tsv", ".txt"):
        X, y_raw, features, _ = _read_csv(path, targets)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .npy, .npz or .parquet")
    return X, features, y_raw if target else None


def _targets(path: Path, target: str | None) -> list[str]:
    if not target:
        raise DataError(f"{path}: name the label column with --target COLUMN")
    return [t.strip() for t in target.split(",") if t.strip()]


def _read_csv(path: Path, targets: list[str]):
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path}: the file is empty; expected a header line and at least one data row")
    header = [h.strip() for h in rows[0]]
    if len(rows) < 2:
        raise DataError(f"{path}: the file has a header but no data rows")
    missing = [t for t in targets if t not in header]
    if missing:
        raise DataError(f"{path}: no target column {missing[0]!r}; the columns are: {', '.join(header)}")
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise DataError(f"{path}: column {dup!r} appears twice in the header")
    t_idx = [header.index(t) for t in targets]
    f_idx = [i for i in range(len(header)) if i not in t_idx]
    if not f_idx:
        raise DataError(f"{path}: no feature columns besides the target")
    X = np.empty((len(rows) - 1, len(f_idx)), dtype=np.float64)
    y_raw = []
    for r, row in enumerate(rows[1:]):
        line = r + 2  # 1-based, after the header
        if len(row) != len(header):
            raise DataError(f"{path}: line {line} has {len(row)} fields; the header has {len(header)}")
        for j, i in enumerate(f_idx):
            cell = row[i].strip()
            try:
                v = float(cell)
            except ValueError:
                raise DataError(f"{path}: column {header[i]!r}, line {line}: {cell!r} is not a number") from None
            if not math.isfinite(v):
                raise DataError(f"{path}: column {header[i]!r}, line {line}: {cell!r} is not a finite number (NaN/Inf)")
            X[r, j] = v
        labels = [row[i].strip() for i in t_idx]
        for i, lab in zip(t_idx, labels):
            if lab == "" or lab.lower() in ("nan", "na", "null", "none"):
                raise DataError(f"{path}: column {header[i]!r}, line {line}: the label is missing")
        y_raw.append(labels)
    return X, y_raw, [header[i] for i in f_idx], targets


def _read_npz(path: Path):
    with np.load(path, allow_pickle=False) as z:
        if "X" not in z or "y" not in z:
            raise DataError(f"{path}: expected arrays 'X' (features) and 'y' (labels); found {', '.join(z.files) or 'none'}")
        X, y = z["X"], z["y"]
        features = [str(s) for s in z["feature_names"]] if "feature_names" in z else [f"f{i}" for i in range(X.shape[1] if X.ndim == 2 else 0)]
        targets = [str(s) for s in z["target_names"]] if "target_names" in z else ["y"]
    if X.ndim != 2 or X.shape[0] == 0:
        raise DataError(f"{path}: 'X' must be a non-empty 2-D array [rows, features]; got shape {list(X.shape)}")
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"{path}: 'X' must be numeric; got dtype {X.dtype}")
    if len(y) != len(X):
        raise DataError(f"{path}: 'X' has {len(X)} rows but 'y' has {len(y)}")
    bad = np.argwhere(~np.isfinite(X.astype(np.float64)))
    if len(bad):
        r, c = bad[0]
        raise DataError(f"{path}: column {features[c]!r}, row {r}: not a finite number (NaN/Inf)")
    y_raw = [list(map(str, row)) if np.ndim(row) else [str(row)] for row in y]
    if y.ndim == 2 and targets == ["y"]:
        targets = [f"label_{i}" for i in range(y.shape[1])]
    return X.astype(np.float64), y_raw, features, targets


def _read_parquet(path: Path, targets: list[str]):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    cols = table.column_names
    if table.num_rows == 0:
        raise DataError(f"{path}: the file has no rows")
    missing = [t for t in targets if t not in cols]
    if missing:
        raise DataError(f"{path}: no target column {missing[0]!r}; the columns are: {', '.join(cols)}")
    features = [c for c in cols if c not in targets]
    X = np.empty((table.num_rows, len(features)), dtype=np.float64)
    for j, c in enumerate(features):
        values = table.column(c).to_pylist()
        for r, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise DataError(f"{path}: column {c!r}, row {r}: {v!r} is not a number")
            if not math.isfinite(v):
                raise DataError(f"{path}: column {c!r}, row {r}: {v!r} is not a finite number (NaN/Inf)")
            X[r, j] = v
    label_cols = [table.column(t).to_pylist() for t in targets]
    y_raw = []
    for r in range(table.num_rows):
        row = [label_cols[k][r] for k in range(len(targets))]
        for t, v in zip(targets, row):
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                raise DataError(f"{path}: column {t!r}, row {r}: the label is missing")
        y_raw.append([str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in row])
    return X, y_raw, features, targets


def _encode_targets(path: Path, y_raw: list[list[str]], targets: list[str]):
    """Integer-code the labels: one column -> multiclass/binary, several 0/1 columns -> multilabel."""
    if len(targets) > 1:
        y = np.zeros((len(y_raw), len(targets)), dtype=np.float32)
        for r, row in enumerate(y_raw):
            for c, v in enumerate(row):
                if v not in ("0", "1", "0.0", "1.0", "True", "False", "true", "false"):
                    raise DataError(f"{path}: column {targets[c]!r}, row {r}: multilabel targets must be 0 or 1; got {v!r}")
                y[r, c] = 1.0 if v in ("1", "1.0", "True", "true") else 0.0
        return y, list(targets), "multilabel"
    values = [row[0] for row in y_raw]
    uniq = sorted(set(values))
    try:  # integer labels sort numerically (2 before 10)
        uniq = sorted(uniq, key=lambda s: float(s))
    except ValueError:
        pass
    if len(uniq) < 2:
        raise DataError(f"{path}: column {targets[0]!r} has a single class ({uniq[0]!r}); a classifier needs at least two")
    index = {v: i for i, v in enumerate(uniq)}
    y = np.array([index[v] for v in values], dtype=np.int64)
    return y, uniq, "binary" if len(uniq) == 2 else "multiclass"
