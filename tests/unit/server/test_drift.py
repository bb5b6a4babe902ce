"""The drift window: its counts equal a recount of the last rows from scratch, and a shifted feature stands out."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.core import reference
from zoo.server.drift import TOP_BINS, DriftWindow, psi


def _reference(x: np.ndarray, y: np.ndarray, classes: int) -> reference.Reference:
    parsed = reference.parse({reference.KEY: reference.statistics(x, y, classes)}, x.shape[1], classes)
    assert parsed is not None
    return parsed


def _recount(ref: reference.Reference, rows: np.ndarray) -> np.ndarray:
    """Window bin counts the slow way: one feature at a time with searchsorted on its own (unpadded) edges."""
    out = np.zeros((rows.shape[1], ref.bins), dtype=np.int64)
    for f in range(rows.shape[1]):
        edges = ref.edges[f][np.isfinite(ref.edges[f])]
        out[f] += np.bincount(np.searchsorted(edges, rows[:, f], side="right"), minlength=ref.bins)
    return out


def test_reference_statistics_describe_the_training_rows():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=1000), np.zeros(1000), rng.uniform(5, 6, 1000)])
    y = rng.integers(0, 3, 1000)
    stats = reference.statistics(x, y, 3)
    assert stats["rows"] == 1000 and len(stats["edges"][0]) == 9 and stats["edges"][1] == [0.0]  # a constant: 2 bins
    assert [sum(c) for c in stats["counts"]] == [1000] * 3
    assert all(80 <= c <= 120 for c in stats["counts"][0])  # deciles: a tenth each
    assert stats["min"][2] >= 5 and stats["max"][2] <= 6 and stats["mean"][1] == 0
    assert np.allclose(stats["class_mix"], np.bincount(y, minlength=3) / 1000)
    with pytest.raises(ValueError, match="describes 3 features; the model has 4"):
        reference.parse({reference.KEY: stats}, 4, 3)
    assert reference.parse({}, 3, 3) is None  # exported before zoo recorded references: none, not a guess


@pytest.mark.parametrize("size, batches", [(50, [1] * 120), (64, [7, 30, 64, 100, 1, 13]), (1000, [3, 5])])
def test_the_window_counts_equal_a_recount_of_its_last_rows(size, batches):
    rng = np.random.default_rng(size)
    train = rng.normal(size=(500, 4))
    ref = _reference(train, rng.integers(0, 3, 500), 3)
    window = DriftWindow(ref, 4, 3, size=size)
    served, labels, tops = [], [], []
    for n in batches:
        x = rng.normal(1.0, 2.0, size=(n, 4))
        lab = rng.integers(-1, 3, n)
        top = rng.uniform(0, 1, n)
        window.add(x, lab, top)
        served.append(x), labels.append(lab), tops.append(top)
    x, lab, top = np.concatenate(served), np.concatenate(labels), np.concatenate(tops)
    last = slice(max(0, len(x) - size), len(x))
    c = window.counts()
    assert c.window_rows == min(size, len(x)) and c.rows == len(x)
    assert np.array_equal(c.bin_counts, _recount(ref, x[last]))
    assert np.array_equal(c.window_labels, np.bincount(lab[last] + 1, minlength=4))
    assert np.array_equal(c.labels, np.bincount(lab + 1, minlength=4))
    assert np.array_equal(c.window_top, np.bincount(np.minimum((top[last] * TOP_BINS).astype(int), 9), minlength=TOP_BINS))
    outside = ((x < train.min(axis=0)) | (x > train.max(axis=0))).sum(axis=0)
    assert np.array_equal(c.out_of_range, outside) and outside.sum() > 0


def test_a_shifted_feature_raises_its_psi_while_the_others_stay_low():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(5000, 5))
    ref = _reference(train, rng.integers(0, 2, 5000), 2)
    window = DriftWindow(ref, 5, 2, size=2000)
    served = rng.normal(size=(2000, 5))
    served[:, 3] += 1.5  # one feature moves
    for chunk in np.array_split(served, 40):
        window.add(chunk, np.zeros(len(chunk), int), np.full(len(chunk), 0.9))
    index = psi(window.counts(), ref)
    assert index[3] > 0.5  # the usual reading: above 0.25 is a major shift
    assert np.all(np.delete(index, 3) < 0.05)


def test_windows_of_several_workers_add_up():
    rng = np.random.default_rng(2)
    ref = _reference(rng.normal(size=(300, 2)), rng.integers(0, 2, 300), 2)
    a, b, both = (DriftWindow(ref, 2, 2, size=100) for _ in range(3))
    for i in range(10):
        x = rng.normal(size=(8, 2))
        lab = rng.integers(-1, 2, 8)
        (a if i % 2 else b).add(x, lab, np.full(8, 0.5))
        both.add(x, lab, np.full(8, 0.5))
    total, single = a.counts() + b.counts(), both.counts()
    assert total.rows == single.rows == 80
    assert np.array_equal(total.bin_counts, single.bin_counts) and np.array_equal(total.labels, single.labels)


def test_a_model_without_reference_still_counts_its_decisions():
    window = DriftWindow(None, 3, 2, size=10)
    window.add(np.zeros((4, 3)), np.array([0, 1, 1, -1]), np.array([0.99, 0.5, 0.7, 0.2]))
    c = window.counts()
    assert c.bin_counts is None and c.out_of_range is None
    assert c.labels.tolist() == [1, 1, 2] and c.window_top[9] == 1 and c.window_top[2] == 1


def test_float32_rows_bin_exactly_as_their_float64_values_do():
    # Edges and bounds that float32 cannot hold (0.1, 1/3, beyond its range, below its precision): the float32 fast
    # path must put every float32 value, including the ones next to each edge, in the bin the float64 comparison gives.
    rng = np.random.default_rng(2)
    train = np.column_stack([rng.normal(size=400) / 3, rng.uniform(0.1, 0.7, 400), np.full(400, 1e39), rng.normal(size=400) * 1e-30])
    ref = _reference(train, rng.integers(0, 2, 400), 2)
    finite = [v for v in np.concatenate([ref.edges.ravel(), ref.minimum, ref.maximum]) if np.isfinite(v)]
    with np.errstate(over="ignore"):
        near = np.float32(finite)
    near = near[np.isfinite(near)]  # served rows are finite (the server refuses others before they get here)
    probes = np.concatenate([near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, np.float32(-np.inf)),
                             np.float32([0, 3.4e38, -3.4e38])])  # fmt: skip
    x32 = np.repeat(probes[:, None], 4, axis=1).astype(np.float32)
    x32 = np.concatenate([x32, rng.normal(size=(200, 4)).astype(np.float32)])
    x64 = x32.astype(np.float64)
    assert np.array_equal(ref.bin_of(x32), ref.bin_of(x64))
    assert np.array_equal(ref.bin_of(x64), _recount_bins(ref, x64))
    assert np.array_equal(ref.outside(x32), ((x64 < ref.minimum) | (x64 > ref.maximum)).sum(axis=0))
    assert ref.outside(x32).sum() > 0 and len(np.unique(ref.bin_of(x32)[:, 0])) == ref.bins


def _recount_bins(ref: reference.Reference, rows: np.ndarray) -> np.ndarray:
    return np.column_stack([np.searchsorted(ref.edges[f][np.isfinite(ref.edges[f])], rows[:, f], side="right") for f in range(rows.shape[1])])
