"""Live monitoring of every loaded version: what it decides and how its inputs compare with its training data.

The request path only appends (rows, labels, top probability) of each answered request to a list; every
FOLD_EVERY_S what has gathered is folded into each version's drift window (server/drift.py) in whole batches, so
monitoring adds no numpy work to a request's latency. Where a fold runs follows its size, as a batch's does: a
small one (at most BIN_ROWS_PER_FOLD rows) on the event loop, between requests, because a second thread taking
turns at the GIL with the loop in small steps cost 1-row traffic a tenth of its throughput, twice the fold's own
work; a large one on the monitor's thread, where numpy on large arrays lets the loop keep feeding the model (on
the loop it cost 1,024-row traffic a quarter of its throughput; bench/RESULTS.md). A large fold bins an even
sample of its rows, so that monitoring costs a bounded share of the machine however many rows arrive. Readers
(the model page, metrics, statistics snapshots for other workers) fold first, so what they show includes every
request answered before they asked.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from zoo.core import reference
from zoo.core.contract import ModelCard
from zoo.server import monitor_share
from zoo.server.drift import DEFAULT_WINDOW, DriftCounts, DriftWindow

log = logging.getLogger("zoo.server")

FOLD_EVERY_S = 0.1  # the folding pace: figures are at most this much behind between reads
FOLD_BYTES = 64 << 20  # ... or sooner, once the rows waiting hold this much (the request path keeps them alive)
# Binning is the costly part (6 us a 784-feature row, about as much as the model's own work on a row of a large
# batch), so a fold bins at most this many of a version's rows, an even sample of them: about 10,000 rows a second.
# Every row still counts in the totals (rows, labels, top probability, values outside the training range).
BIN_ROWS_PER_FOLD = 1024


@dataclass(frozen=True)
class Watched:
    """One monitored version: its window and its training reference (None: exported before zoo recorded one)."""

    card: ModelCard
    window: DriftWindow
    reference: reference.Reference | None
    why_no_reference: str


class Monitor:
    """The drift windows of the loaded versions, fed through a list the request path appends to."""

    def __init__(self, window_rows: int = DEFAULT_WINDOW, bin_rows: int = BIN_ROWS_PER_FOLD):
        self.window_rows = window_rows
        self.bin_rows = bin_rows
        self._watched: dict[tuple[str, int], Watched] = {}
        self._pending: list[tuple[DriftWindow, np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_bytes = 0
        self._pending_rows = 0
        # Readers fold too, and the metrics endpoint reads on a thread of its own.
        self._lock = threading.Lock()  # guards _pending and _watched; windows have their own
        self._fold_lock = threading.Lock()  # one folder at a time, so rows reach a window in the order they came
        # Until start() (and in tests, which never call it), rows fold only when read: each read is exactly one fold.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False  # a fold is already scheduled for the loop's next turn
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoo-monitor")  # started by its first fold

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fold on `loop` (the one the request path runs on) every FOLD_EVERY_S, and soon after FOLD_BYTES wait."""
        self._loop = loop
        self._timer = loop.call_later(FOLD_EVERY_S, self._tick)

    def watch(self, card: ModelCard) -> None:
        """Start a window for a version that loaded (its reference read from its card)."""
        why = ""
        try:
            ref = reference.parse(card.extra, card.num_features, card.num_classes)
            if ref is None:
                why = "exported before zoo recorded training statistics: re-export it to see drift"
        except ValueError as e:
            ref, why = None, f"its training statistics are unusable ({e})"
            log.warning("model %s v%s: %s", card.name, card.version, why)
        window = DriftWindow(ref, card.num_features, card.num_classes, self.window_rows)
        with self._lock:
            self._watched[(card.name, card.version)] = Watched(card, window, ref, why)

    def forget(self, name: str, version: int) -> None:
        """Drop the window of a version that unloaded."""
        with self._lock:
            self._watched.pop((name, version), None)

    def observe(self, card: ModelCard, rows: np.ndarray, probabilities: np.ndarray, labels: np.ndarray) -> None:
        """Note a version's answered request (cheap: the numpy work happens in the next fold)."""
        watched = self._watched.get((card.name, card.version))
        if watched is None or watched.card is not card:  # its first request, or a card edited in place
            self.watch(card)
        with self._lock:
            watched = self._watched[(card.name, card.version)]
            self._pending.append((watched.window, rows, probabilities, labels))
            self._pending_bytes += rows.nbytes
            self._pending_rows += len(rows)
            full = self._pending_bytes >= FOLD_BYTES
        if full and self._loop is not None and not self._soon:  # after this request's answer, not inside it
            self._soon = True
            self._loop.call_soon(self._fold_soon)

    def watched(self, name: str, version: int) -> Watched | None:
        """The window of a version, with every request answered so far folded in."""
        self.fold()
        with self._lock:
            return self._watched.get((name, version))

    def all_counts(self) -> dict[tuple[str, int], DriftCounts]:
        """Every window's counts (for statistics snapshots and metrics), after folding."""
        self.fold()
        with self._lock:
            watched = list(self._watched.items())
        return {key: w.window.counts() for key, w in watched}

    def sources(self) -> list[tuple[ModelCard, reference.Reference | None, DriftCounts]]:
        """(card, reference, counts) of every monitored version, as the metrics collector reads them."""
        self.fold()
        with self._lock:
            watched = list(self._watched.values())
        return [(w.card, w.reference, w.window.counts()) for w in watched]

    def merged(self, name: str, version: int, folder: str | None) -> tuple[Watched, DriftCounts] | None:
        """A version's window with its counts, plus (under --workers) every other worker's counts of it."""
        watched = self.watched(name, version)
        if watched is None:
            return None
        counts = watched.window.counts()
        if folder is not None:
            counts = monitor_share.added(counts, monitor_share.read_all(folder, skip_own=True).get((name, version), []))
        return watched, counts

    def fold(self) -> None:
        """Fold what the request path noted into the windows, a batch per window (binning an even sample of at most
        bin_rows of its rows; every row counts in the totals)."""
        with self._fold_lock:
            with self._lock:
                pending, self._pending, self._pending_bytes, self._pending_rows = self._pending, [], 0, 0
            by_window: dict[int, list] = {}
            for item in pending:
                by_window.setdefault(id(item[0]), []).append(item)
            for items in by_window.values():
                self._fold_into(items[0][0], [i[1] for i in items], [i[2] for i in items], [i[3] for i in items])

    def _fold_into(self, window: DriftWindow, rows: list[np.ndarray], probabilities: list[np.ndarray], labels_of: list[np.ndarray]) -> None:
        p, labels = (np.concatenate(a) if len(a) > 1 else a[0] for a in (probabilities, labels_of))
        top = p.max(axis=1)
        if len(labels) <= self.bin_rows:
            window.add(np.concatenate(rows) if len(rows) > 1 else rows[0], labels, top)
            return
        # Never one concatenation of every row waiting: copying hundreds of MB holds the GIL for as long and stalls
        # every request (1,024-row requests: p99 300 ms, a third of the throughput). Pieces of about bin_rows rows.
        ref = window.reference
        outside = None if ref is None else np.sum([ref.outside(piece) for piece in _pieces(rows, self.bin_rows)], axis=0)
        window.count(labels, top, outside)
        sample = np.arange(self.bin_rows) * len(labels) // self.bin_rows  # evenly spaced, the first row included
        window.push(_rows_at(rows, sample), labels[sample], top[sample])

    def close(self) -> None:
        """Stop folding on the loop, and fold what is pending (after a fold still running on the thread)."""
        if self._timer is not None:
            self._timer.cancel()
        self._loop = self._timer = None
        self._thread.shutdown(wait=True)
        self.fold()

    def _tick(self) -> None:
        self._fold_where_it_fits(self._next_tick)

    def _next_tick(self) -> None:
        if self._loop is not None:  # not closed meanwhile
            self._timer = self._loop.call_later(FOLD_EVERY_S, self._tick)

    def _fold_soon(self) -> None:
        self._soon = False
        self._fold_where_it_fits(lambda: None)

    def _fold_where_it_fits(self, then) -> None:
        """A small fold now, on the loop; a large one on the monitor's thread; `then` on the loop once it is done."""
        loop = self._loop
        if loop is None:
            return
        if self._pending_rows <= self.bin_rows:
            self._safe_fold()
            then()
            return
        try:
            done = loop.run_in_executor(self._thread, self._safe_fold)
        except RuntimeError:  # closed meanwhile (the thread is shut down): close() folds what is left
            return
        done.add_done_callback(lambda _: then())

    def _safe_fold(self) -> None:
        try:
            self.fold()
        except Exception:  # monitoring must never take the server down
            log.exception("monitoring: folding requests into the drift windows failed")


def _pieces(arrays: list[np.ndarray], rows: int):
    """The arrays' rows in order, as concatenations of consecutive arrays of about `rows` rows (a larger one alone)."""
    group: list[np.ndarray] = []
    held = 0
    for a in arrays:
        if group and held + len(a) > rows:
            yield np.concatenate(group) if len(group) > 1 else group[0]
            group, held = [], 0
        group.append(a)
        held += len(a)
    if group:
        yield np.concatenate(group) if len(group) > 1 else group[0]


def _rows_at(arrays: list[np.ndarray], index: np.ndarray) -> np.ndarray:
    """The rows at sorted positions `index` of the arrays' concatenation, without making the concatenation."""
    lengths = np.array([len(a) for a in arrays])
    ends = np.cumsum(lengths)
    which = np.searchsorted(ends, index, side="right")
    starts = ends - lengths
    return np.concatenate([arrays[k][index[which == k] - starts[k]] for k in np.unique(which)])
