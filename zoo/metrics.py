"""Calibration measures of probabilities against labels (numpy, torch-free: `zoo evaluate` uses them too)."""

from __future__ import annotations

import numpy as np

from zoo.core.contract import Task

ECE_BINS = 15  # equal-width confidence bins, as in Guo et al., "On Calibration of Modern Neural Networks"


def confidences(probabilities: np.ndarray, y: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) pairs the ECE bins: the top class for single-label tasks, every (row, class) for multilabel."""
    p = np.asarray(probabilities, dtype=np.float64)
    if task == Task.MULTILABEL:
        return p.ravel(), (np.asarray(y).ravel() >= 0.5).astype(np.float64)
    return p.max(axis=1), (p.argmax(axis=1) == np.asarray(y)).astype(np.float64)


def reliability(probabilities: np.ndarray, y: np.ndarray, task: str, bins: int = ECE_BINS) -> dict:
    """Per equal-width bin: rows, mean confidence and accuracy (empty bins hold 0 rows)."""
    conf, correct = confidences(probabilities, y, task)
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)  # (k/B, (k+1)/B], the first bin from 0
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(which, weights=conf, minlength=bins) / count
        accuracy = np.bincount(which, weights=correct, minlength=bins) / count
    return {"count": count, "confidence": np.nan_to_num(mean_conf), "accuracy": np.nan_to_num(accuracy)}


def ece(probabilities: np.ndarray, y: np.ndarray, task: str, bins: int = ECE_BINS) -> float:
    """Expected calibration error: the count-weighted mean |accuracy - confidence| over equal-width bins."""
    r = reliability(probabilities, y, task, bins)
    total = r["count"].sum()
    return float((r["count"] * np.abs(r["accuracy"] - r["confidence"])).sum() / total) if total else 0.0
