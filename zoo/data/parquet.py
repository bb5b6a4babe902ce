"""Parquet files: numeric feature columns and label columns of any type, bad cells named by column and row."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from zoo.data.cells import MAX_BAD_CELLS, BadCells
from zoo.data.dataset import DataError
from zoo.data.labels import Labels, missing_column
from zoo.data.sniff import what_came


def read_parquet(path: Path, targets: list[str], dtype=np.float64):
    """(X, labels, feature names, targets) of a Parquet file: numeric feature columns, any label columns."""
    table = _parquet_table(path)
    cols = table.column_names
    if table.num_rows == 0:
        raise DataError(f"{path}: the file has no rows")
    missing = [t for t in targets if t not in cols]
    if missing:
        raise missing_column(path, missing[0], cols)
    features = [c for c in cols if c not in targets]
    X = np.empty((table.num_rows, len(features)), dtype=dtype)
    found: list[tuple[int, int, str]] = []  # (row, column index, message): sorted into file order below
    total = 0
    for j, c in enumerate(features):
        X[:, j], problems, count = _parquet_numbers(c, table.column(c))
        found += [(r, j, m) for r, m in problems]
        total += count
    bad = BadCells(path)
    for _, _, m in sorted(found)[:MAX_BAD_CELLS]:
        bad.add(m)
    bad.count = total
    bad.raise_if_any()
    return X, _parquet_labels(path, table, targets), features, targets


def _parquet_table(path: Path):
    """pq.read_table, or a DataError saying what the file is instead."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except pa.ArrowException as e:
        came = what_came(path)
        came = f"{came}, but pyarrow says: {e}" if came == "it looks like a Parquet file" else came
        raise DataError(f"{path}: not a readable Parquet file ({came}); expected an Apache Parquet file") from None


def _parquet_numbers(name: str, column) -> tuple[np.ndarray, list[tuple[int, str]], int]:
    """A feature column as float64, with its first MAX_BAD_CELLS bad cells (row, message) and their total count."""
    import pyarrow as pa

    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)  # a null becomes NaN
        bad_rows = np.flatnonzero(~np.isfinite(values))
        return values, [(int(r), _cell_problem(name, int(r), column[int(r)].as_py())) for r in bad_rows[:MAX_BAD_CELLS]], len(bad_rows)
    # Another type (strings, booleans, dictionary): checked value by value.
    cells = column.to_pylist()
    out = np.full(len(cells), math.nan)
    problems = []
    for r, v in enumerate(cells):
        problem = _cell_problem(name, r, v)
        if problem:
            problems.append((r, problem))
        else:
            out[r] = v
    return out, problems[:MAX_BAD_CELLS], len(problems)


def _cell_problem(name: str, row: int, v) -> str:
    """What is wrong with a Parquet feature cell ('' when it is a finite int or float)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return f"column {name!r}, row {row}: {v!r} is not a number"
    if not math.isfinite(v):
        return f"column {name!r}, row {row}: {v!r} is not a finite number (NaN/Inf)"
    return ""


def _parquet_labels(path: Path, table, targets: list[str]) -> list[Labels]:
    """Label columns as Labels; null or NaN labels are errors at their rows."""
    import pyarrow as pa

    missing = np.zeros((table.num_rows, len(targets)), dtype=bool)
    for k, t in enumerate(targets):
        column = table.column(t)
        missing[:, k] = column.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_floating(column.type):
            missing[:, k] |= ~np.isfinite(column.to_numpy(zero_copy_only=False).astype(np.float64))
    bad = BadCells(path)
    for r, k in np.argwhere(missing):
        bad.add(f"column {targets[k]!r}, row {r}: the label is missing")
    bad.raise_if_any()
    return [_parquet_label_column(table.column(t)) for t in targets]


def _parquet_label_column(column) -> Labels:
    """One label column's texts (a whole float prints as an integer: 1.0 -> "1"), via its distinct values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):  # e.g. a pandas categorical
        column = column.cast(column.type.value_type)
    try:
        distinct = pc.unique(column)
        codes = pc.index_in(column, value_set=distinct).to_numpy(zero_copy_only=False)
    except pa.ArrowNotImplementedError:  # a type without hashing kernels: text per row
        return Labels.from_texts(_label_text(v) for v in column.to_pylist())
    return Labels(distinct.to_pylist(), codes).mapped(_label_text)


def _label_text(v) -> str:
    """A Parquet label value as text."""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
