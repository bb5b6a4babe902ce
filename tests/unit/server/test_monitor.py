"""The monitor's folds: every row counts in the totals, a fold bins an even sample of at most bin_rows rows, and
folds happen on the event loop without a reader."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from zoo.core import reference
from zoo.core.contract import ModelCard
from zoo.server.drift import TOP_BINS
from zoo.server import monitor as monitor_module
from zoo.server.monitor import Monitor


def _card(train: np.ndarray, y: np.ndarray, classes: int) -> ModelCard:
    stats = reference.statistics(train, y, classes)
    features = [f"f{i}" for i in range(train.shape[1])]
    return ModelCard("m", 1, "multiclass", features, [f"c{i}" for i in range(classes)], 0.5, "0" * 64, extra={reference.KEY: stats})


def _served(rng: np.random.Generator, n: int, features: int, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, features)).astype(np.float32)
    x[:, 2] += 3.0  # one feature beyond the training range in most rows, the others within it in nearly all
    p = rng.dirichlet(np.ones(classes), size=n).astype(np.float32)
    return x, p, np.where(p.max(axis=1) >= 0.5, p.argmax(axis=1), -1)


def test_a_fold_over_the_cap_bins_an_even_sample_and_counts_every_row():
    rng = np.random.default_rng(3)
    train = rng.normal(size=(2000, 6))
    card = _card(train, rng.integers(0, 3, 2000), 3)
    ref = reference.parse(card.extra, 6, 3)
    monitor = Monitor(window_rows=500, bin_rows=100)
    try:
        x, p, labels = _served(rng, 1000, 6, 3)
        for start in range(0, 1000, 37):  # uneven requests, folded at once
            monitor.observe(card, x[start : start + 37], p[start : start + 37], labels[start : start + 37])
        watched = monitor.watched("m", 1)
        assert watched is not None
        c = watched.window.counts()
    finally:
        monitor.close()
    sample = np.arange(100) * 1000 // 100
    assert c.rows == 1000 and c.window_rows == 100
    assert np.array_equal(c.labels, np.bincount(labels + 1, minlength=4))  # every row
    assert np.array_equal(c.top, np.bincount(np.minimum((p.max(axis=1) * TOP_BINS).astype(int), TOP_BINS - 1), minlength=TOP_BINS))
    want_outside = ((x.astype(np.float64) < ref.minimum) | (x.astype(np.float64) > ref.maximum)).sum(axis=0)
    assert np.array_equal(c.out_of_range, want_outside) and want_outside[2] > 500 and want_outside[0] < 10
    assert np.array_equal(c.window_labels, np.bincount(labels[sample] + 1, minlength=4))  # the sample only
    assert np.array_equal(c.bin_counts, reference.bin_counts(x[sample], ref))


def test_a_fold_under_the_cap_bins_every_row():
    rng = np.random.default_rng(4)
    train = rng.normal(size=(500, 3))
    card = _card(train, rng.integers(0, 2, 500), 2)
    monitor = Monitor(window_rows=500, bin_rows=100)
    try:
        x, p, labels = _served(rng, 100, 3, 2)
        monitor.observe(card, x[:60], p[:60], labels[:60])
        monitor.observe(card, x[60:], p[60:], labels[60:])
        watched = monitor.watched("m", 1)
        assert watched is not None
        c = watched.window.counts()
    finally:
        monitor.close()
    ref = reference.parse(card.extra, 3, 2)
    assert c.rows == c.window_rows == 100 and np.array_equal(c.bin_counts, reference.bin_counts(x, ref))



def _started(card: ModelCard, rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], then, bin_rows: int = 1024) -> list[int]:
    """Start a monitor on a loop and observe `rows`; `then(rows)` reads the window's row count without folding."""

    async def main() -> list[int]:
        monitor = Monitor(window_rows=500, bin_rows=bin_rows)
        monitor.watch(card)
        watched = monitor.watched("m", 1)
        assert watched is not None
        monitor.start(asyncio.get_running_loop())
        try:
            for x, p, labels in rows:
                monitor.observe(card, x, p, labels)
            return await then(lambda: watched.window.counts().rows)
        finally:
            monitor.close()

    return asyncio.run(main())


def test_a_started_monitor_folds_on_its_loop_ten_times_a_second_without_a_reader():
    rng = np.random.default_rng(5)
    card = _card(rng.normal(size=(200, 3)), rng.integers(0, 2, 200), 2)
    x, p, labels = _served(rng, 10, 3, 2)

    async def then(rows) -> list[int]:
        seen = [rows()]  # nothing folds inside the request path
        for _ in range(1000):  # the bound is only a hang guard: 10 s against a fold every 0.1 s
            if rows() == 10:
                break
            await asyncio.sleep(0.01)
        return seen + [rows()]

    assert _started(card, [(x, p, labels)], then) == [0, 10]


def test_a_started_monitor_folds_on_the_loops_next_turn_once_fold_bytes_wait(monkeypatch):
    rng = np.random.default_rng(6)
    card = _card(rng.normal(size=(200, 3)), rng.integers(0, 2, 200), 2)
    x, p, labels = _served(rng, 40, 3, 2)
    monkeypatch.setattr(monitor_module, "FOLD_EVERY_S", 3600.0)  # only the early fold can happen here
    monkeypatch.setattr(monitor_module, "FOLD_BYTES", x[:30].nbytes)

    async def then(rows) -> list[int]:
        seen = [rows()]
        await asyncio.sleep(0)  # one turn of the loop: the fold was scheduled before it
        return seen + [rows()]

    # 10 rows wait below the threshold; the next 30 reach it
    assert _started(card, [(x[:10], p[:10], labels[:10]), (x[10:], p[10:], labels[10:])], then) == [0, 40]


def test_a_fold_over_the_cap_runs_on_the_monitors_thread_and_counts_every_row(monkeypatch):
    """A large fold leaves the loop free (numpy on large arrays releases the GIL); a small one never starts the thread."""
    rng = np.random.default_rng(7)
    card = _card(rng.normal(size=(200, 3)), rng.integers(0, 2, 200), 2)
    x, p, labels = _served(rng, 40, 3, 2)
    monkeypatch.setattr(monitor_module, "FOLD_EVERY_S", 3600.0)
    monkeypatch.setattr(monitor_module, "FOLD_BYTES", x.nbytes)

    def monitor_threads() -> int:
        return sum(t.name.startswith("zoo-monitor") for t in threading.enumerate())

    async def then(rows) -> list[int]:
        for _ in range(1000):  # hang guard only
            if rows() == 40:
                break
            await asyncio.sleep(0.01)
        return [rows(), monitor_threads()]

    before = monitor_threads()
    assert _started(card, [(x, p, labels)], then, bin_rows=5) == [40, before + 1]
    assert _started(card, [(x, p, labels)], then, bin_rows=40) == [40, before]  # at the cap: on the loop
