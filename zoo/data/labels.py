"""Label columns: distinct texts with a code per row, their encoding as classes, and the mistakes worth a warning."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.data.dataset import DataError

MISSING_LABELS = ("", "nan", "na", "null", "none")
MULTILABEL_VALUES = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0}
MIN_CLASS_ROWS = 10  # fewer rows than this: the class barely reaches the validation and test splits


@dataclass
class Labels:
    """One label column as its distinct texts and a code per row: no Python string per row."""

    values: list[str]  # distinct; every one occurs in some row
    codes: np.ndarray  # [N] index into values

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Labels:
        """Encode row texts (the slow readers' way in)."""
        seen: dict[str, int] = {}
        codes = array("q", (seen.setdefault(t, len(seen)) for t in texts))
        return cls(list(seen), np.frombuffer(codes, dtype=np.int64))

    def mapped(self, fn: Callable[[str], str]) -> Labels:
        """Apply `fn` to the distinct values, merging values it makes equal (e.g. " a" and "a" under strip)."""
        seen: dict[str, int] = {}
        remap = np.array([seen.setdefault(fn(v), len(seen)) for v in self.values], dtype=self.codes.dtype)
        return Labels(list(seen), remap[self.codes])

    def texts(self) -> list[str]:
        """The label text of every row."""
        return np.array(self.values, dtype=object)[self.codes].tolist()

    def counts(self) -> dict[str, int]:
        """Rows per distinct value."""
        return dict(zip(self.values, np.bincount(self.codes, minlength=len(self.values)).tolist(), strict=True))


def label_rows(labels: list[Labels], n: int) -> list[list[str]]:
    """Per-row label lists, the shape read_rows returns."""
    if not labels:
        return [[] for _ in range(n)]
    return [list(row) for row in zip(*(lab.texts() for lab in labels), strict=True)]


def encode_targets(path: Path, labels: list[Labels], targets: list[str]):
    """(y, class names, task, warnings): one column -> multiclass/binary, several 0/1 columns -> multilabel."""
    if len(targets) > 1:
        return encode_multilabel(path, labels, targets), list(targets), "multilabel", []
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
    return y, uniq, "binary" if len(uniq) == 2 else "multiclass", label_warnings(targets[0], lab.counts())


def label_warnings(column: str, counts: dict[str, int]) -> list[str]:
    """Labels that differ only by case or surrounding whitespace, and classes with very few rows, by name and count."""
    groups: dict[str, list[str]] = {}
    for v in counts:
        groups.setdefault(v.strip().casefold(), []).append(v)
    found = []
    for variants in groups.values():
        if len(variants) > 1:
            named = ", ".join(f"{v!r} ({_rows(counts[v])})" for v in sorted(variants, key=lambda v: -counts[v]))
            found.append(f"column {column!r}: labels {named} differ only by case or surrounding whitespace; they are separate classes")
    few = sorted((v for v in counts if counts[v] < MIN_CLASS_ROWS), key=lambda v: counts[v])
    if few:
        named = ", ".join(f"{v!r} ({_rows(counts[v])})" for v in few)
        found.append(f"column {column!r}: {'class' if len(few) == 1 else 'classes'} {named} with fewer than {MIN_CLASS_ROWS} rows")
    return found


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def encode_multilabel(path: Path, labels: list[Labels], targets: list[str]) -> np.ndarray:
    """[N, C] float32 0/1 from several label columns; the first non-0/1 value (row-major) is an error."""
    n = len(labels[0].codes)
    y = np.zeros((n, len(labels)), dtype=np.float32)
    bad = np.zeros((n, len(labels)), dtype=bool)
    for c, lab in enumerate(labels):
        y[:, c] = np.array([MULTILABEL_VALUES.get(v, 0.0) for v in lab.values], dtype=np.float32)[lab.codes]
        bad[:, c] = np.array([v not in MULTILABEL_VALUES for v in lab.values], dtype=bool)[lab.codes]
    if bad.any():
        r, c = np.argwhere(bad)[0]
        v = labels[c].values[labels[c].codes[r]]
        raise DataError(f"{path}: column {targets[c]!r}, row {r}: multilabel targets must be 0 or 1; got {v!r}")
    return y


def missing_column(path: Path, name: str, columns: list[str], how_read: str = "") -> DataError:
    """The error for a --target that is not a column: the columns, and the closest one ("did you mean")."""
    import difflib

    folded = {c.casefold(): c for c in columns}
    close = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.6)
    hint = f"; did you mean {folded[close[0]]!r}?" if close else ""
    return DataError(f"{path}: no target column {name!r}{how_read}; the columns are: {', '.join(columns)}{hint}")
