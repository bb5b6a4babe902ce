"""CSV/TSV files with a header line, validated with errors that point at the cells.

CSV goes through pyarrow's reader (fast path); only when pyarrow refuses the file, or the values need a closer look
(NaN/Inf, a missing label), does a careful pass stream the file with the csv module and name the bad cells.
The careful pass is the specification: the fast path either returns exactly what it would return, or defers to it.
"""

from __future__ import annotations

import csv
import itertools
import math
from array import array
from pathlib import Path

import numpy as np

from zoo.data.cells import BadCells
from zoo.data.csv_text import check_utf8, columns, first_record, how_read, max_records, records
from zoo.data.dataset import DataError
from zoo.data.labels import MISSING_LABELS, Labels
from zoo.data.sniff import sniff_delimiter

# pyarrow's streaming CSV reader holds a few dozen blocks in flight: 128 KiB blocks keep that near 5 MB (1 MiB
# blocks: ~40 MB) at no cost in speed.
CSV_BLOCK_BYTES = 1 << 17


def read_csv(path: Path, targets: list[str], dtype=np.float64):
    """(X [N, F] of `dtype`, labels, feature names, targets) of a CSV/TSV file with a header line."""
    delimiter = sniff_delimiter(path, "\t" if path.suffix.lower() == ".tsv" else ",")
    fast = read_csv_fast(path, targets, delimiter, dtype)
    if fast is not None:
        return fast
    # The old reader decoded the whole file before looking at a cell, so a non-UTF-8 file is reported first.
    check_utf8(path, delimiter)
    return read_csv_careful(path, targets, delimiter, dtype)


def read_csv_fast(path: Path, targets: list[str], delimiter: str, dtype):
    """pyarrow's parse, or None whenever the file needs the careful pass (which raises every error)."""
    import pyarrow as pa

    try:
        raw = first_record(path, delimiter)
        if raw is None or any("\x00" in h for h in raw):
            return None
        header = [h.strip() for h in raw]
        t_idx, f_idx = columns(path, header, targets, delimiter)
    except (DataError, UnicodeDecodeError, csv.Error):
        return None
    # Filled in place, batch by batch: no list of blocks and no concatenated copy of the whole file.
    bound = max_records(path)
    X = np.empty((bound, len(f_idx)), dtype=dtype)
    codes = [np.empty(bound, dtype=np.int32) for _ in t_idx]
    seen: list[dict[str, int]] = [{} for _ in t_idx]
    n = 0
    try:
        for batch in _arrow_batches(path, delimiter, raw, f_idx, t_idx):
            if batch is None or not _put_floats(batch, f_idx, X[n : n + batch.num_rows]):
                return None
            for k, i in enumerate(t_idx):
                if batch.column(i).null_count:  # strings are never null unless told to be; defer rather than guess
                    return None
                codes[k][n : n + batch.num_rows] = _batch_codes(batch.column(i), seen[k])
            n += batch.num_rows
    except pa.ArrowException:  # a cell that is not a number, a ragged row, bad UTF-8 in a label, ...
        return None
    labels = [Labels(list(s), c[:n]).mapped(str.strip) for s, c in zip(seen, codes, strict=True)]
    if n == 0 or any(v.lower() in MISSING_LABELS or "\x00" in v for lab in labels for v in lab.values):
        return None
    return X[:n], labels, [header[i] for i in f_idx], targets


def _arrow_batches(path: Path, delimiter: str, raw: list[str], f_idx: list[int], t_idx: list[int]):
    """pyarrow's streaming reader over the file; yields None if it took another header than the csv module."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # Features as float64 (what float() gives); labels as dictionary-encoded strings, so "01" and "setosa" keep
    # their text and each batch hands over its few distinct labels plus an integer per row.
    types = {raw[i]: pa.float64() for i in f_idx} | {raw[i]: pa.dictionary(pa.int32(), pa.string()) for i in t_idx}
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=types),
    )
    if reader.schema.names != raw:
        yield None
        return
    yield from reader


def _put_floats(batch, f_idx: list[int], out: np.ndarray) -> bool:
    """Copy a record batch's feature columns into `out`; False if any cell is empty (null) or NaN/Inf."""
    for j, i in enumerate(f_idx):
        column = batch.column(i)
        if column.null_count:
            return False
        # DLPack: a zero-copy view that, unlike Array.to_numpy, does not import pandas (~50 MB, half a second).
        values = np.from_dlpack(column)
        if not np.isfinite(values).all():
            return False
        out[:, j] = values  # cast to out's dtype like from_arrays' astype: the same float32 numbers
    return True


def _batch_codes(column, seen: dict[str, int]) -> np.ndarray:
    """A batch's dictionary-encoded labels as codes into `seen` (distinct raw texts, in order of first sight)."""
    remap = np.array([seen.setdefault(v, len(seen)) for v in column.dictionary.to_pylist()], dtype=np.int32)
    return remap[np.from_dlpack(column.indices)]


def read_csv_careful(path: Path, targets: list[str], delimiter: str, dtype):
    """Stream the file with the csv module, gathering bad cells (this pass defines every CSV error)."""
    bad = BadCells(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        rows = records(reader)
        try:
            first, second = next(rows, None), next(rows, None)
            if first is None:
                raise DataError(f"{path}: the file is empty; expected a header line and at least one data row")
            if second is None:
                raise DataError(f"{path}: the file has a header but no data rows")
            header = [h.strip() for h in first[1]]
            t_idx, f_idx = columns(path, header, targets, delimiter)
            # Compact as it goes (8 bytes a value, a code per label) rather than a Python object per cell.
            values, codes = array("d"), [array("q") for _ in t_idx]
            seen: list[dict[str, int]] = [{} for _ in t_idx]
            for line, row in itertools.chain([second], rows):
                row_labels = _check_row(bad, header, f_idx, t_idx, line, row, values, delimiter)
                if row_labels is not None:
                    for s, c, lab in zip(seen, codes, row_labels, strict=True):
                        c.append(s.setdefault(lab, len(s)))
        except csv.Error as e:  # e.g. a field over the csv module's size limit
            raise DataError(f"{path}: line {reader.line_num}: {e}") from None
    bad.raise_if_any()
    X = np.frombuffer(values, dtype=np.float64).reshape(-1, len(f_idx)).astype(dtype)
    labels = [Labels(list(s), np.frombuffer(c, dtype=np.int64)) for s, c in zip(seen, codes, strict=True)]
    return X, labels, [header[i] for i in f_idx], targets


def _check_row(
    bad: BadCells, header: list[str], f_idx: list[int], t_idx: list[int], line: int, row: list[str], values: array, delimiter: str
) -> list[str] | None:
    """Append a good record's feature values to `values` and return its labels; note its bad cells and return None."""
    if len(row) != len(header):
        bad.add(f"line {line} has {len(row)} fields; the header has {len(header)}{how_read(delimiter)}")
        return None
    before = bad.count
    row_values = []
    for i in f_idx:
        cell = row[i].strip()
        try:
            v = float(cell)
        except ValueError:
            bad.add(f"column {header[i]!r}, line {line}: {cell!r} is not a number")
            continue
        if not math.isfinite(v):
            bad.add(f"column {header[i]!r}, line {line}: {cell!r} is not a finite number (NaN/Inf)")
        row_values.append(v)
    labels = [row[i].strip() for i in t_idx]
    for i, lab in zip(t_idx, labels, strict=True):
        if lab.lower() in MISSING_LABELS:
            bad.add(f"column {header[i]!r}, line {line}: the label is missing")
    if bad.count > before:
        return None
    values.extend(row_values)
    return labels
