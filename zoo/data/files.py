"""The user's own data: CSV (with header), NPZ and Parquet files, validated with errors that point at the cell.

CSV goes through pyarrow's reader (fast path); only when pyarrow refuses the file, or the values need a closer look
(NaN/Inf, a missing label), does a careful pass stream the file with the csv module and name the first bad cell.
The careful pass is the specification: the fast path either returns exactly what it would return, or defers to it.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import math
import zipfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from zoo.data.dataset import DataError, Dataset, from_arrays

# pyarrow's streaming CSV reader holds a few dozen blocks in flight: 128 KiB blocks keep that near 5 MB (1 MiB
# blocks: ~40 MB) at no cost in speed.
_CSV_BLOCK_BYTES = 1 << 17
_MISSING_LABELS = ("", "nan", "na", "null", "none")
_MULTILABEL_VALUES = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0}
_MAGIC = (  # what a file is, from its first bytes, to say what came instead of the expected format
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a ZIP archive (an .npz or .xlsx file?)"),
    (b"PAR1", "a Parquet file"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) file"),
    (b"%PDF", "a PDF document"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
)


def load_file(path: str | Path, target: str | None, *, name: str | None = None, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Load a CSV/NPZ/Parquet file; `target` names the label column (comma-separated columns: multilabel)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    # Training features are float32: reading straight into float32 (each value still parsed as float64 first, so
    # the numbers are those of a float64 read cast by from_arrays) saves holding a float64 copy of the whole file.
    if suffix == ".npz":
        X, labels, features, targets = _read_npz(path, np.float32)
    elif suffix in (".parquet", ".pq"):
        X, labels, features, targets = _read_parquet(path, _targets(path, target), np.float32)
    elif suffix in (".csv", ".tsv", ".txt"):
        X, labels, features, targets = _read_csv(path, _targets(path, target), np.float32)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .npz or .parquet")
    y, class_names, task = _encode_targets(path, labels, targets)
    del labels  # a code per row: not needed while from_arrays splits
    return from_arrays(
        name or path.stem, X, y, features, class_names, task, seed=seed, test_fraction=test_fraction, source=str(path.resolve())
    )


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
        X, labels, features, _ = _read_npz(path)
        return X, features, _label_rows(labels, len(X)) if target else None
    if suffix == ".npy":
        return _read_npy(path)
    if suffix in (".parquet", ".pq"):
        X, labels, features, _ = _read_parquet(path, targets)
    elif suffix in (".csv", ".tsv", ".txt"):
        X, labels, features, _ = _read_csv(path, targets)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .npy, .npz or .parquet")
    return X, features, _label_rows(labels, len(X)) if target else None


def _targets(path: Path, target: str | None) -> list[str]:
    """The label column names of a --target value."""
    names = [t.strip() for t in (target or "").split(",") if t.strip()]
    if not names:
        raise DataError(f"{path}: name the label column with --target COLUMN")
    return names


# ---------------------------------------------------------------------------------------------------------- labels


@dataclass
class _Labels:
    """One label column as its distinct texts and a code per row: no Python string per row."""

    values: list[str]  # distinct; every one occurs in some row
    codes: np.ndarray  # [N] index into values

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> _Labels:
        """Encode row texts (the slow readers' way in)."""
        seen: dict[str, int] = {}
        codes = array("q", (seen.setdefault(t, len(seen)) for t in texts))
        return cls(list(seen), np.frombuffer(codes, dtype=np.int64))

    def mapped(self, fn: Callable[[str], str]) -> _Labels:
        """Apply `fn` to the distinct values, merging values it makes equal (e.g. " a" and "a" under strip)."""
        seen: dict[str, int] = {}
        remap = np.array([seen.setdefault(fn(v), len(seen)) for v in self.values], dtype=self.codes.dtype)
        return _Labels(list(seen), remap[self.codes])

    def texts(self) -> list[str]:
        """The label text of every row."""
        return np.array(self.values, dtype=object)[self.codes].tolist()


def _label_rows(labels: list[_Labels], n: int) -> list[list[str]]:
    """Per-row label lists, the shape read_rows returns."""
    if not labels:
        return [[] for _ in range(n)]
    return [list(row) for row in zip(*(lab.texts() for lab in labels), strict=True)]


def _encode_targets(path: Path, labels: list[_Labels], targets: list[str]):
    """Integer-code the labels: one column -> multiclass/binary, several 0/1 columns -> multilabel."""
    if len(targets) > 1:
        return _encode_multilabel(path, labels, targets), list(targets), "multilabel"
    lab = labels[0]
    uniq = sorted(lab.values)
    try:  # integer labels sort numerically (2 before 10)
        uniq = sorted(uniq, key=lambda s: float(s))
    except ValueError:
        pass
    if len(uniq) < 2:
        raise DataError(f"{path}: column {targets[0]!r} has a single class ({uniq[0]!r}); a classifier needs at least two")
    index = {v: i for i, v in enumerate(uniq)}
    y = np.array([index[v] for v in lab.values], dtype=np.int64)[lab.codes]
    return y, uniq, "binary" if len(uniq) == 2 else "multiclass"


def _encode_multilabel(path: Path, labels: list[_Labels], targets: list[str]) -> np.ndarray:
    """[N, C] float32 0/1 from several label columns; the first non-0/1 value (row-major) is an error."""
    n = len(labels[0].codes)
    y = np.zeros((n, len(labels)), dtype=np.float32)
    bad = np.zeros((n, len(labels)), dtype=bool)
    for c, lab in enumerate(labels):
        y[:, c] = np.array([_MULTILABEL_VALUES.get(v, 0.0) for v in lab.values], dtype=np.float32)[lab.codes]
        bad[:, c] = np.array([v not in _MULTILABEL_VALUES for v in lab.values], dtype=bool)[lab.codes]
    if bad.any():
        r, c = np.argwhere(bad)[0]
        v = labels[c].values[labels[c].codes[r]]
        raise DataError(f"{path}: column {targets[c]!r}, row {r}: multilabel targets must be 0 or 1; got {v!r}")
    return y


# ------------------------------------------------------------------------------------------------ what a file is


def _looks_like(head: bytes) -> str | None:
    """A known format from a file's first bytes, or None."""
    return next((what for magic, what in _MAGIC if head.startswith(magic)), None)


def _what_came(path: Path) -> str:
    """A few words on what a file holds, for an error that says what came instead of the expected format."""
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        return "it is empty"
    known = _looks_like(head)
    if known:
        return f"it looks like {known}"
    try:
        head.decode("utf-8")
        return "it looks like text"
    except UnicodeDecodeError:
        return "it starts with bytes " + " ".join(f"{b:02x}" for b in head[:8])


# ------------------------------------------------------------------------------------------------------------ CSV


def _read_csv(path: Path, targets: list[str], dtype=np.float64):
    """(X [N, F] of `dtype`, labels, feature names, targets) of a CSV/TSV file with a header line."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    fast = _read_csv_fast(path, targets, delimiter, dtype)
    if fast is not None:
        return fast
    # The old reader decoded the whole file before looking at a cell, so a non-UTF-8 file is reported first.
    _check_utf8(path, delimiter)
    return _read_csv_careful(path, targets, delimiter, dtype)


def _kind(delimiter: str) -> str:
    """CSV or TSV, for messages."""
    return "TSV" if delimiter == "\t" else "CSV"


def _columns(path: Path, header: list[str], targets: list[str]) -> tuple[list[int], list[int]]:
    """(target column indices in --target order, feature column indices in file order) of a stripped header."""
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
    return t_idx, f_idx


def _check_utf8(path: Path, delimiter: str) -> None:
    """Raise a DataError at the first byte that keeps the file from being UTF-8 text (a NUL counts: binary)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = lines = 0
    with open(path, "rb") as f:
        head = f.read(64)
        f.seek(0)
        for chunk in iter(partial(f.read, 1 << 20), b""):
            bad = _first_non_text(decoder, chunk)
            if bad is not None:
                at, byte = bad
                _not_utf8(path, delimiter, head, byte, offset + at, lines + chunk.count(b"\n", 0, max(at, 0)) + 1)
            offset += len(chunk)
            lines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:  # a multi-byte character cut off by the end of the file
            _not_utf8(path, delimiter, head, e.object[e.start], offset - len(e.object) + e.start, lines + 1)


def _first_non_text(decoder, chunk: bytes) -> tuple[int, int] | None:
    """(index in `chunk`, byte) of its first NUL or undecodable byte; the index is negative in carried-over bytes."""
    found = []
    nul = chunk.find(b"\x00")
    if nul >= 0:
        found.append((nul, 0))
    try:
        decoder.decode(chunk)
    except UnicodeDecodeError as e:  # e.object is the bytes the decoder carried over from the last chunk + this one
        found.append((e.start - (len(e.object) - len(chunk)), e.object[e.start]))
    return min(found, default=None)


def _not_utf8(path: Path, delimiter: str, head: bytes, byte: int, offset: int, line: int):
    """Raise the not-UTF-8-text error."""
    known = _looks_like(head)
    if known:
        came = f"it looks like {known}"
    elif byte == 0:
        came = "it looks like binary data"
    else:  # a text file in a legacy 8-bit encoding, most often
        came = "is it Latin-1 or Windows-1252? save it as UTF-8"
    kind = _kind(delimiter)
    raise DataError(
        f"{path}: not a UTF-8 text {kind} file (byte 0x{byte:02x} at offset {offset}, line {line}; "
        f"{came}); expected a UTF-8 {kind} file with a header line"
    )


def _first_record(path: Path, delimiter: str) -> list[str] | None:
    """The raw cells of the first non-blank record (the header), or None."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        return next((row for _, row in _records(csv.reader(f, delimiter=delimiter))), None)


def _read_csv_fast(path: Path, targets: list[str], delimiter: str, dtype):
    """pyarrow's parse, or None whenever the file needs the careful pass (which raises every error)."""
    import pyarrow as pa

    try:
        raw = _first_record(path, delimiter)
        if raw is None or any("\x00" in h for h in raw):
            return None
        header = [h.strip() for h in raw]
        t_idx, f_idx = _columns(path, header, targets)
    except (DataError, UnicodeDecodeError, csv.Error):
        return None
    # Filled in place, batch by batch: no list of blocks and no concatenated copy of the whole file.
    bound = _max_records(path)
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
    labels = [_Labels(list(s), c[:n]).mapped(str.strip) for s, c in zip(seen, codes, strict=True)]
    if n == 0 or any(v.lower() in _MISSING_LABELS or "\x00" in v for lab in labels for v in lab.values):
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
        read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=types),
    )
    if reader.schema.names != raw:
        yield None
        return
    yield from reader


def _max_records(path: Path) -> int:
    """An upper bound on a file's records: each one but the last ends with a newline (\\n, \\r\\n or \\r)."""
    lines = 0
    with open(path, "rb") as f:
        for chunk in iter(partial(f.read, 1 << 20), b""):
            lines += chunk.count(b"\n")
            if b"\r" in chunk:  # a lone \r ends a line too (a \r\n split across chunks counts twice: still a bound)
                lines += chunk.count(b"\r") - chunk.count(b"\r\n")
    return lines + 1


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


def _records(reader) -> Iterator[tuple[int, list[str]]]:
    """(file line where the record starts, cells) of every record with a non-blank cell."""
    line = 1
    for row in reader:
        if any(cell.strip() for cell in row):
            yield line, row
        line = reader.line_num + 1


def _read_csv_careful(path: Path, targets: list[str], delimiter: str, dtype):
    """Stream the file with the csv module, raising at the first bad cell (this pass defines every CSV error)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        records = _records(reader)
        try:
            first, second = next(records, None), next(records, None)
            if first is None:
                raise DataError(f"{path}: the file is empty; expected a header line and at least one data row")
            if second is None:
                raise DataError(f"{path}: the file has a header but no data rows")
            header = [h.strip() for h in first[1]]
            t_idx, f_idx = _columns(path, header, targets)
            # Compact as it goes (8 bytes a value, a code per label) rather than a Python object per cell.
            values, codes = array("d"), [array("q") for _ in t_idx]
            seen: list[dict[str, int]] = [{} for _ in t_idx]
            for line, row in itertools.chain([second], records):
                row_labels = _check_row(path, header, f_idx, t_idx, line, row, values)
                for s, c, lab in zip(seen, codes, row_labels, strict=True):
                    c.append(s.setdefault(lab, len(s)))
        except csv.Error as e:  # e.g. a field over the csv module's size limit
            raise DataError(f"{path}: line {reader.line_num}: {e}") from None
    X = np.frombuffer(values, dtype=np.float64).reshape(-1, len(f_idx)).astype(dtype)
    labels = [_Labels(list(s), np.frombuffer(c, dtype=np.int64)) for s, c in zip(seen, codes, strict=True)]
    return X, labels, [header[i] for i in f_idx], targets


def _check_row(path: Path, header: list[str], f_idx: list[int], t_idx: list[int], line: int, row: list[str], values: array) -> list[str]:
    """Append a record's feature values to `values` and return its labels; raise at its first bad cell."""
    if len(row) != len(header):
        raise DataError(f"{path}: line {line} has {len(row)} fields; the header has {len(header)}")
    for i in f_idx:
        cell = row[i].strip()
        try:
            v = float(cell)
        except ValueError:
            raise DataError(f"{path}: column {header[i]!r}, line {line}: {cell!r} is not a number") from None
        if not math.isfinite(v):
            raise DataError(f"{path}: column {header[i]!r}, line {line}: {cell!r} is not a finite number (NaN/Inf)")
        values.append(v)
    labels = [row[i].strip() for i in t_idx]
    for i, lab in zip(t_idx, labels, strict=True):
        if lab.lower() in _MISSING_LABELS:
            raise DataError(f"{path}: column {header[i]!r}, line {line}: the label is missing")
    return labels


# ------------------------------------------------------------------------------------------------------ NPZ / NPY


def _read_npz(path: Path, dtype=np.float64):
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
    bad = np.argwhere(~np.isfinite(X))
    if len(bad):
        r, c = bad[0]
        raise DataError(f"{path}: column {features[c]!r}, row {r}: not a finite number (NaN/Inf)")
    y_raw = [list(map(str, row)) if np.ndim(row) else [str(row)] for row in y]
    if y.ndim == 2 and targets == ["y"]:
        targets = [f"label_{i}" for i in range(y.shape[1])]
    labels = [_Labels.from_texts(row[c] for row in y_raw) for c in range(len(y_raw[0]))]
    return X.astype(dtype, copy=False), labels, features, targets


def _open_npz(path: Path):
    """np.load of an .npz, or a DataError saying what the file is instead."""
    expected = "expected a NumPy .npz archive with arrays 'X' and 'y' (numpy.savez)"
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise DataError(f"{path}: not an NPZ archive ({_what_came(path)}); {expected}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not an NPZ archive (it holds a single NumPy array, a .npy file); {expected}")
    return z


def _npz_array(path: Path, z, key: str) -> np.ndarray:
    """One array of an open .npz; object arrays (pickled) are refused by name."""
    try:
        return z[key]
    except ValueError:  # allow_pickle=False
        raise DataError(f"{path}: {key!r} holds Python objects; expected a numeric or string array") from None


def _read_npy(path: Path) -> tuple[np.ndarray, list[str], None]:
    """(X float64, f0.., None) of a .npy prediction input."""
    try:
        X = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        X = None
    if isinstance(X, np.lib.npyio.NpzFile):  # a zip archive: release its file handle before refusing it
        X.close()
    if not isinstance(X, np.ndarray):
        raise DataError(f"{path}: not a NumPy .npy array ({_what_came(path)}); expected an array saved with numpy.save")
    if X.ndim == 1:
        X = X[None, :]
    try:
        X = X.astype(np.float64)
    except (ValueError, TypeError):
        raise DataError(f"{path}: expected a numeric array; got dtype {X.dtype}") from None
    return X, [f"f{i}" for i in range(X.shape[1])], None


# -------------------------------------------------------------------------------------------------------- Parquet


def _read_parquet(path: Path, targets: list[str], dtype=np.float64):
    """(X, labels, feature names, targets) of a Parquet file: numeric feature columns, any label columns."""
    table = _parquet_table(path)
    cols = table.column_names
    if table.num_rows == 0:
        raise DataError(f"{path}: the file has no rows")
    missing = [t for t in targets if t not in cols]
    if missing:
        raise DataError(f"{path}: no target column {missing[0]!r}; the columns are: {', '.join(cols)}")
    features = [c for c in cols if c not in targets]
    X = np.empty((table.num_rows, len(features)), dtype=dtype)
    for j, c in enumerate(features):  # column by column, as before: the first bad column wins
        X[:, j] = _parquet_numbers(path, c, table.column(c))
    return X, _parquet_labels(path, table, targets), features, targets


def _parquet_table(path: Path):
    """pq.read_table, or a DataError saying what the file is instead."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except pa.ArrowException as e:
        came = _what_came(path)
        came = f"{came}, but pyarrow says: {e}" if came == "it looks like a Parquet file" else came
        raise DataError(f"{path}: not a readable Parquet file ({came}); expected an Apache Parquet file") from None


def _parquet_numbers(path: Path, name: str, column) -> np.ndarray:
    """A feature column as float64, raising at its first value that is not a finite number."""
    import pyarrow as pa

    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        return _parquet_numbers_per_cell(path, name, column)  # it fails at the first cell anyway, naming it
    values = column.to_numpy(zero_copy_only=False).astype(np.float64)  # a null becomes NaN
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        _check_number(path, name, int(bad[0]), column[int(bad[0])].as_py())
    return values


def _parquet_numbers_per_cell(path: Path, name: str, column) -> np.ndarray:
    """A column of another type (strings, booleans, dictionary): checked value by value."""
    values = column.to_pylist()
    for r, v in enumerate(values):
        _check_number(path, name, r, v)
    return np.array(values, dtype=np.float64)


def _check_number(path: Path, name: str, row: int, v) -> None:
    """Raise unless a Parquet cell is a finite int or float."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DataError(f"{path}: column {name!r}, row {row}: {v!r} is not a number")
    if not math.isfinite(v):
        raise DataError(f"{path}: column {name!r}, row {row}: {v!r} is not a finite number (NaN/Inf)")


def _parquet_labels(path: Path, table, targets: list[str]) -> list[_Labels]:
    """Label columns as _Labels; a null or NaN label is an error at its row (first row, then first target)."""
    import pyarrow as pa

    missing = np.zeros((table.num_rows, len(targets)), dtype=bool)
    for k, t in enumerate(targets):
        column = table.column(t)
        missing[:, k] = column.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_floating(column.type):
            missing[:, k] |= ~np.isfinite(column.to_numpy(zero_copy_only=False).astype(np.float64))
    if missing.any():
        r, k = np.argwhere(missing)[0]
        raise DataError(f"{path}: column {targets[k]!r}, row {r}: the label is missing")
    return [_parquet_label_column(table.column(t)) for t in targets]


def _parquet_label_column(column) -> _Labels:
    """One label column's texts (a whole float prints as an integer: 1.0 -> "1"), via its distinct values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):  # e.g. a pandas categorical
        column = column.cast(column.type.value_type)
    try:
        distinct = pc.unique(column)
        codes = pc.index_in(column, value_set=distinct).to_numpy(zero_copy_only=False)
    except pa.ArrowNotImplementedError:  # a type without hashing kernels: text per row
        return _Labels.from_texts(_label_text(v) for v in column.to_pylist())
    return _Labels(distinct.to_pylist(), codes).mapped(_label_text)


def _label_text(v) -> str:
    """A Parquet label value as text."""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
