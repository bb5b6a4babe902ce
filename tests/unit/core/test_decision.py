"""Threshold semantics: multiclass argmax gated by the threshold, binary on p, multilabel per class."""

import numpy as np

from zoo.core.decision import default_threshold, labels, one_hot

P3 = np.array([[0.5, 0.3, 0.2], [0.2, 0.35, 0.45], [0.34, 0.33, 0.33]], dtype=np.float32)


def test_multiclass_default_always_sets_the_argmax():
    assert default_threshold("multiclass") == 0.0
    assert one_hot(P3, "multiclass", 0.0).tolist() == [[1, 0, 0], [0, 0, 1], [1, 0, 0]]
    assert labels(P3, "multiclass", 0.0).tolist() == [0, 2, 0]


def test_multiclass_threshold_can_leave_a_row_empty():
    assert one_hot(P3, "multiclass", 0.45).tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert labels(P3, "multiclass", 0.45).tolist() == [0, 2, -1]  # >= is inclusive


def test_binary_sets_exactly_one_class():
    p = np.array([[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]], dtype=np.float32)
    assert default_threshold("binary") == 0.5
    assert one_hot(p, "binary", 0.5).tolist() == [[1, 0], [0, 1], [0, 1]]
    assert labels(p, "binary", 0.75).tolist() == [0, 0, 0]
    assert one_hot(p, "binary", 0.1).tolist() == [[0, 1], [0, 1], [0, 1]]


def test_multilabel_sets_every_class_over_the_threshold():
    p = np.array([[0.9, 0.6, 0.1], [0.2, 0.3, 0.4]], dtype=np.float32)
    assert one_hot(p, "multilabel", 0.5).tolist() == [[1, 1, 0], [0, 0, 0]]
    assert labels(p, "multilabel", 0.5).tolist() == [0, -1]
    assert one_hot(p, "multilabel", 0.3).tolist() == [[1, 1, 0], [0, 1, 1]]
