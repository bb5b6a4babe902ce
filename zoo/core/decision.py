"""Thresholding probabilities into one-hot decisions and labels (numpy; the ONNX graph does the same).

- multiclass: the argmax class is set when its probability >= threshold (default 0: always one class).
- binary: probabilities are [1 - p, p]; the positive class is set when p >= threshold, else the negative one.
- multilabel: every class with p >= threshold is set (default 0.5); the threshold may be one number per class.
`label` is the index of the most probable set class, or -1 when no class is set.
"""

from __future__ import annotations

import numpy as np

from zoo.core.contract import Task

DEFAULT_THRESHOLDS: dict[str, float] = {Task.MULTICLASS: 0.0, Task.BINARY: 0.5, Task.MULTILABEL: 0.5}


def default_threshold(task: str) -> float:
    """The threshold a model of this task uses unless told otherwise."""
    return DEFAULT_THRESHOLDS[task]


def as_threshold(threshold: float | list[float], task: str, num_classes: int) -> np.float32 | np.ndarray:
    """A threshold as compared with FP32 probabilities: a scalar, or (multilabel only) one per class."""
    t = np.asarray(threshold, dtype=np.float32)
    if t.ndim == 0:
        return np.float32(t)
    if task != Task.MULTILABEL or t.shape != (num_classes,):
        raise ValueError(f"per-class thresholds need a multilabel model and one per class ({num_classes}); got {t.size} for a {task} model")
    return t


def one_hot(probabilities: np.ndarray, task: str, threshold: float | list[float]) -> np.ndarray:
    """FP32 [N, C] decision matrix for [N, C] probabilities."""
    p = np.asarray(probabilities, dtype=np.float32)
    t = as_threshold(threshold, task, p.shape[1])
    if task == Task.MULTILABEL:
        return (p >= t).astype(np.float32)
    if task == Task.BINARY:
        pos = p[:, 1] >= t
        return np.stack([~pos, pos], axis=1).astype(np.float32)
    k = p.argmax(axis=1)
    out = np.zeros_like(p, dtype=np.float32)
    rows = np.arange(p.shape[0])
    out[rows, k] = (p[rows, k] >= t).astype(np.float32)
    return out


def labels(probabilities: np.ndarray, task: str, threshold: float | list[float]) -> np.ndarray:
    """INT64 [N] label: the most probable set class, -1 when none is set."""
    p = np.asarray(probabilities, dtype=np.float32)
    t = as_threshold(threshold, task, p.shape[1])
    if task == Task.BINARY:
        return (p[:, 1] >= t).astype(np.int64)
    if np.ndim(t):  # per-class thresholds: the most probable of the classes set (probabilities are >= 0)
        is_set = p >= t
        return np.where(is_set.any(axis=1), np.where(is_set, p, -1.0).argmax(axis=1), -1).astype(np.int64)
    k = p.argmax(axis=1)
    top = p[np.arange(p.shape[0]), k]
    return np.where(top >= t, k, -1).astype(np.int64)
