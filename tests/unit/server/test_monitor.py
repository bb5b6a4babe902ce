"""The monitor's folds: every row counts in the totals, and a fold bins an even sample of at most bin_rows rows."""

from __future__ import annotations

import numpy as np

from zoo.core import reference
from zoo.core.contract import ModelCard
from zoo.server.drift import TOP_BINS
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
    monitor = Monitor(window_rows=500, bin_rows=100, folding_thread=False)
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
    monitor = Monitor(window_rows=500, bin_rows=100, folding_thread=False)
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
