"""What one model version has been deciding, and whether its inputs still look like its training data.

A sliding window of the last `size` served rows keeps, per feature, how many fall in each of the training
reference's quantile bins (zoo.core.reference), from which the population stability index (PSI) follows; beside it,
the predicted labels (-1: no class) and the top probability of the same rows. Counts since the version loaded
(rows, labels, inputs outside the training range) only grow, as Prometheus counters do. Everything works on whole
batches with numpy: a ring buffer of bin indices, and bincount to add the new rows and take away the ones they
push out. Windows of several workers add up (`merge`), as their statistics do.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from zoo.core import reference
from zoo.core.reference import Reference

DEFAULT_WINDOW = 10_000
TOP_BINS = 10  # the top probability's histogram: ten equal bins over [0, 1]


@dataclass
class DriftCounts:
    """The additive state of a window: what several workers' windows sum to (and what `figures` reads)."""

    window_rows: int  # rows in the window now
    bin_counts: np.ndarray | None  # [F, B] window rows per feature bin; None without a reference
    window_labels: np.ndarray  # [C + 1] window rows per predicted label; index 0 is label -1 (no class)
    window_top: np.ndarray  # [TOP_BINS] window rows per top-probability bin
    rows: int  # rows served since the version loaded
    labels: np.ndarray  # [C + 1] rows per predicted label since it loaded
    top: np.ndarray  # [TOP_BINS] rows per top-probability bin since it loaded
    top_sum: float  # the sum of those rows' top probabilities
    out_of_range: np.ndarray | None  # [F] values outside the training [min, max] since it loaded

    def __add__(self, other: DriftCounts) -> DriftCounts:
        def both(a, b):
            return None if a is None or b is None else a + b

        return DriftCounts(
            self.window_rows + other.window_rows,
            both(self.bin_counts, other.bin_counts),
            self.window_labels + other.window_labels,
            self.window_top + other.window_top,
            self.rows + other.rows,
            self.labels + other.labels,
            self.top + other.top,
            self.top_sum + other.top_sum,
            both(self.out_of_range, other.out_of_range),
        )


class DriftWindow:
    """The last `size` served rows of one model version, binned against its training reference (if it has one)."""

    def __init__(self, reference: Reference | None, num_features: int, num_classes: int, size: int = DEFAULT_WINDOW):
        if size < 1:
            raise ValueError(f"the drift window holds at least 1 row; got {size}")
        self.reference = reference
        self.size = size
        self.num_classes = num_classes
        self._lock = threading.Lock()  # adds come from the model's thread, reads from the event loop
        self._filled = 0
        self._next = 0  # ring position of the next row
        self._labels = np.zeros(size, dtype=np.int32)  # label + 1
        self._top = np.zeros(size, dtype=np.int16)  # top-probability bin
        self._rows = 0
        self._label_totals = np.zeros(num_classes + 1, dtype=np.int64)
        self._top_totals = np.zeros(TOP_BINS, dtype=np.int64)
        self._top_sum = 0.0
        if reference is not None:
            self._bins = np.zeros((size, num_features), dtype=np.uint8)
            self._bin_counts = np.zeros((num_features, reference.bins), dtype=np.int64)
            self._out_of_range = np.zeros(num_features, dtype=np.int64)

    def add(self, x: np.ndarray, labels: np.ndarray, top_probability: np.ndarray) -> None:
        """Take in a batch: rows x [N, F], their predicted labels [N] (-1: none) and top probabilities [N]."""
        if len(x) == 0:
            return
        self.count(labels, top_probability, self.reference.outside(x) if self.reference is not None else None)
        self.push(x, labels, top_probability)

    def count(self, labels: np.ndarray, top_probability: np.ndarray, outside: np.ndarray | None) -> None:
        """Add served rows to the totals since load: their labels [N], top probabilities [N] and, per feature, how
        many of their values fell outside the training range ([F], from Reference.outside; None without a reference)."""
        labels = np.asarray(labels, dtype=np.int64) + 1
        top = _top_bin(top_probability)
        with self._lock:
            self._rows += len(labels)
            self._label_totals += np.bincount(labels, minlength=self.num_classes + 1)
            self._top_totals += np.bincount(top, minlength=TOP_BINS)
            self._top_sum += float(np.sum(top_probability))
            if outside is not None and self.reference is not None:
                self._out_of_range += outside

    def push(self, x: np.ndarray, labels: np.ndarray, top_probability: np.ndarray) -> None:
        """Slide rows x [N, F] (with their labels and top probabilities) into the window, pushing out the oldest."""
        if len(x) == 0:
            return
        keep = slice(max(0, len(x) - self.size), len(x))  # a batch larger than the window: its last rows
        labels = np.asarray(labels[keep], dtype=np.int64) + 1
        top = _top_bin(np.asarray(top_probability)[keep])
        bins = self.reference.bin_of(x[keep]) if self.reference is not None else None
        with self._lock:
            self._push(labels, top, bins)

    def _push(self, labels: np.ndarray, top: np.ndarray, bins: np.ndarray | None) -> None:
        n = len(labels)
        slots = (self._next + np.arange(n)) % self.size
        # The ring fills from slot 0, so until it is full the first (size - filled) slots ahead are empty; the
        # rest hold the oldest rows, which these push out.
        evicted = slots[self.size - self._filled :] if self._filled + n > self.size else slots[:0]
        if bins is not None and self.reference is not None:
            flat = self._bin_counts.ravel()
            if len(evicted):
                flat -= np.bincount(self.reference.flat_bins(self._bins[evicted]).ravel(), minlength=flat.size)
            flat += np.bincount(self.reference.flat_bins(bins).ravel(), minlength=flat.size)
            self._bins[slots] = bins
        self._labels[slots] = labels
        self._top[slots] = top
        self._filled = min(self.size, self._filled + n)
        self._next = int((self._next + n) % self.size)

    def counts(self) -> DriftCounts:
        """A copy of the window's additive state."""
        with self._lock:
            live = np.arange(self._filled)  # the filled slots (all of them once the ring is full)
            return DriftCounts(
                window_rows=self._filled,
                bin_counts=self._bin_counts.copy() if self.reference is not None else None,
                window_labels=np.bincount(self._labels[live], minlength=self.num_classes + 1),
                window_top=np.bincount(self._top[live], minlength=TOP_BINS),
                rows=self._rows,
                labels=self._label_totals.copy(),
                top=self._top_totals.copy(),
                top_sum=self._top_sum,
                out_of_range=self._out_of_range.copy() if self.reference is not None else None,
            )


def _top_bin(top_probability: np.ndarray) -> np.ndarray:
    return np.minimum((np.asarray(top_probability) * TOP_BINS).astype(np.int64), TOP_BINS - 1)


def psi(counts: DriftCounts, ref: Reference) -> np.ndarray:
    """The population stability index of each feature over the window ([F]; zeros before any row)."""
    if counts.bin_counts is None:
        return np.zeros(len(ref.minimum))
    return reference.psi(counts.bin_counts, counts.window_rows, ref)


def counts_to_json(c: DriftCounts) -> dict:
    """A DriftCounts as JSON-ready lists (the statistics snapshots workers share)."""
    return {
        "window_rows": c.window_rows,
        "bin_counts": None if c.bin_counts is None else c.bin_counts.tolist(),
        "window_labels": c.window_labels.tolist(),
        "window_top": c.window_top.tolist(),
        "rows": c.rows,
        "labels": c.labels.tolist(),
        "top": c.top.tolist(),
        "top_sum": c.top_sum,
        "out_of_range": None if c.out_of_range is None else c.out_of_range.tolist(),
    }


def counts_from_json(d: dict) -> DriftCounts:
    """The DriftCounts that counts_to_json wrote."""

    def array(key: str) -> np.ndarray:
        return np.asarray(d[key], dtype=np.int64)

    return DriftCounts(
        window_rows=int(d["window_rows"]),
        bin_counts=None if d["bin_counts"] is None else array("bin_counts"),
        window_labels=array("window_labels"),
        window_top=array("window_top"),
        rows=int(d["rows"]),
        labels=array("labels"),
        top=array("top"),
        top_sum=float(d["top_sum"]),
        out_of_range=None if d["out_of_range"] is None else array("out_of_range"),
    )
