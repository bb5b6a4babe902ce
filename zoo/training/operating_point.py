"""Operating points: the default threshold chosen on the validation split (scikit-learn's curves, numpy).

- binary / multilabel (per class): the best F1; with a target precision P the lowest threshold whose precision
  is >= P (the most recall at that precision); with a target recall R the highest threshold whose recall is >= R.
- multiclass: 0 (always answer); with a target precision P the lowest threshold on the top probability at which
  the answered rows are >= P accurate; rows below it get no class (label -1).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve, precision_recall_fscore_support

from zoo.core import decision
from zoo.core.contract import Task

MIN_POSITIVES = 5  # fewer validation positives (or answered rows) than this cannot support a threshold
CURVE_POINTS = 200  # the stored curve is downsampled to about this many points


class OperatingPointError(ValueError):
    """The validation split cannot support the threshold asked for; the message says what to do."""


_MORE_DATA = "give training more validation rows (zoo train --val-split 0.2) or more data"


def _downsample(curve: dict[str, np.ndarray]) -> dict[str, list[float]]:
    n = len(next(iter(curve.values())))
    keep = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int)) if n else np.arange(0)
    return {k: [round(float(v), 6) for v in np.asarray(a)[keep]] for k, a in curve.items()}


def _binary_threshold(scores: np.ndarray, positives: np.ndarray, what: str, precision_at=None, recall_at=None):
    """(threshold, curve) for one class's scores; OperatingPointError when the split cannot say."""
    n_pos = int(positives.sum())
    if n_pos < MIN_POSITIVES or n_pos == len(positives):
        raise OperatingPointError(
            f"the validation split holds {n_pos} positive and {len(positives) - n_pos} negative rows of {what}: "
            f"too few to choose a threshold (need >= {MIN_POSITIVES} positives and some negatives); {_MORE_DATA}, "
            "or give --threshold a number"
        )
    precision, recall, thresholds = precision_recall_curve(positives, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point (precision 1, recall 0) has no threshold
    ordered = np.sort(scores)
    coverage = 1.0 - np.searchsorted(ordered, thresholds, side="left") / len(scores)  # share of rows with score >= t
    curve = {"threshold": thresholds, "precision": precision, "recall": recall, "coverage": coverage}
    if precision_at is not None:
        ok = np.flatnonzero(precision >= precision_at)
        if not len(ok):
            raise OperatingPointError(
                f"no threshold reaches validation precision {precision_at} for {what} (the best is {precision.max():.3f}); "
                f"choose a lower --target-precision, or {_MORE_DATA}"
            )
        i = ok[0]  # thresholds ascend: the lowest that meets the target keeps the most recall
    elif recall_at is not None:
        ok = np.flatnonzero(recall >= recall_at)
        if not len(ok):
            raise OperatingPointError(f"no threshold reaches validation recall {recall_at} for {what}; choose a lower --target-recall")
        i = ok[-1]
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
        i = int(np.argmax(f1))
    return float(thresholds[i]), curve


def _multiclass_threshold(p: np.ndarray, y: np.ndarray, precision_at: float | None):
    """(threshold on the top probability, accuracy-coverage curve) for a multiclass model."""
    top, correct = p.max(axis=1), (p.argmax(axis=1) == y)
    order = np.argsort(-top, kind="stable")
    top_sorted, answered = top[order], np.arange(1, len(top) + 1)
    accuracy = np.cumsum(correct[order]) / answered
    last_of_tie = np.r_[top_sorted[1:] != top_sorted[:-1], True]  # a threshold answers every row tied with it
    curve = {
        "threshold": top_sorted[last_of_tie][::-1],
        "accuracy": accuracy[last_of_tie][::-1],
        "coverage": (answered / len(top))[last_of_tie][::-1],
    }
    if precision_at is None:
        return 0.0, curve
    ok = np.flatnonzero((curve["accuracy"] >= precision_at) & (curve["coverage"] * len(top) >= MIN_POSITIVES))
    if len(y) < 4 * MIN_POSITIVES or not len(ok):
        best = curve["accuracy"][curve["coverage"] * len(top) >= MIN_POSITIVES]
        raise OperatingPointError(
            f"no threshold makes the answered validation rows {precision_at} accurate "
            f"({len(y)} rows; the best over {MIN_POSITIVES}+ answered rows is {best.max() if len(best) else float('nan'):.3f}); "
            f"choose a lower --target-precision, or {_MORE_DATA}"
        )
    i = ok[0]
    return (0.0 if curve["coverage"][i] == 1.0 else float(curve["threshold"][i])), curve


def choose(p: np.ndarray, y: np.ndarray, task: str, class_names: list[str], target_precision=None, target_recall=None):
    """(threshold, chosen_by, curve) on validation probabilities p (already calibrated) and targets y."""
    chosen_by = (
        f"target precision {target_precision}"
        if target_precision is not None
        else f"target recall {target_recall}"
        if target_recall is not None
        else "best F1"
    )
    if task == Task.MULTICLASS:
        if target_recall is not None:
            raise OperatingPointError("--target-recall applies to binary and multilabel models; give a multiclass model --target-precision")
        t, curve = _multiclass_threshold(p, y, target_precision)
        return t, (chosen_by if target_precision is not None else "always answer (multiclass)"), _downsample(curve)
    if task == Task.BINARY:
        t, curve = _binary_threshold(p[:, 1], y == 1, f"class {class_names[1]!r}", target_precision, target_recall)
        return t, chosen_by, _downsample(curve)
    picks = [_binary_threshold(p[:, c], y[:, c] >= 0.5, f"class {n!r}", target_precision, target_recall) for c, n in enumerate(class_names)]
    return [t for t, _ in picks], chosen_by, {n: _downsample(c) for n, (_, c) in zip(class_names, picks, strict=True)}


def scores(p: np.ndarray, y: np.ndarray, task: str, threshold, class_names: list[str]) -> dict:
    """Precision, recall, F1 and coverage at a threshold (per class for multilabel; answered rows for multiclass)."""
    if task == Task.MULTICLASS:
        label = decision.labels(p, task, threshold)
        answered = label >= 0
        correct = int((label[answered] == y[answered]).sum())
        precision = correct / max(1, int(answered.sum()))
        recall = correct / max(1, len(y))
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "coverage": float(answered.mean()) if len(y) else 0.0}
    oh = decision.one_hot(p, task, threshold)
    if task == Task.BINARY:
        pr, rc, f1, _ = precision_recall_fscore_support(y == 1, oh[:, 1] > 0, average=Task.BINARY, zero_division=0)
        return {"precision": float(pr), "recall": float(rc), "f1": float(f1), "coverage": 1.0}
    pr, rc, f1, support = precision_recall_fscore_support(y >= 0.5, oh > 0, average=None, zero_division=0)
    per_class = {
        n: {"precision": float(pr[c]), "recall": float(rc[c]), "f1": float(f1[c]), "support": int(support[c])}
        for c, n in enumerate(class_names)
    }
    return {"per_class": per_class, "coverage": float((oh > 0).any(axis=1).mean()) if len(y) else 0.0}
