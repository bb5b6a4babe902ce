"""`zoo evaluate`'s decision report: per-class precision, recall, F1 and support, accuracy, ECE and coverage at a
threshold, and the curves behind them (numpy and scikit-learn, torch-free)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve, precision_recall_fscore_support

from zoo.core import decision
from zoo.core.contract import Task
from zoo.metrics import ece


def parse_threshold(text: str | None) -> float | list[float] | None:
    """A number in [0, 1], or comma-separated numbers (one per class); ValueError saying so otherwise."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--threshold takes a number in [0, 1] or one per class separated by commas; got {text!r}") from None
    if not all(0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"--threshold values must be in [0, 1]; got {text!r}")
    return values[0] if len(values) == 1 else values


def report(p: np.ndarray, y: np.ndarray, task: str, threshold, class_names: list[str]) -> dict:
    """The decision facts of probabilities p against targets y at `threshold`."""
    C = len(class_names)
    if task == Task.MULTILABEL:
        pred = decision.one_hot(p, task, threshold) > 0
        pr, rc, f1, sup = precision_recall_fscore_support(y >= 0.5, pred, average=None, zero_division=0)
        accuracy, answered = float(np.mean(np.all(pred == (y >= 0.5), axis=1))), pred.any(axis=1)
    else:
        label = decision.labels(p, task, threshold)
        pr, rc, f1, sup = precision_recall_fscore_support(y, label, labels=list(range(C)), average=None, zero_division=0)
        accuracy, answered = float(np.mean(label == y)), label >= 0
    per_class = {
        n: {"precision": float(pr[c]), "recall": float(rc[c]), "f1": float(f1[c]), "support": int(sup[c])}
        for c, n in enumerate(class_names)
    }
    return {
        "threshold": threshold,
        "rows": int(len(y)),
        "accuracy": accuracy,
        "coverage": float(answered.mean()) if len(y) else 0.0,
        "ece": ece(p, y, task),
        "per_class": per_class,
    }


def format_report(r: dict) -> str:
    """The report as aligned text."""
    names = list(r["per_class"])
    w = max(8, *(len(n[:20]) for n in names))
    lines = [f"{'class':<{w}}  precision  recall      f1  support"]
    for n, s in r["per_class"].items():
        lines.append(f"{n[:20]:<{w}}  {s['precision']:9.4f}  {s['recall']:6.4f}  {s['f1']:6.4f}  {s['support']:7d}")
    t = r["threshold"]
    shown = ", ".join(f"{v:.4g}" for v in t) if isinstance(t, list) else f"{t:.4g}"
    lines.append(f"threshold {shown}: accuracy {r['accuracy']:.4f}, coverage {r['coverage']:.4f} (rows answered), ECE {r['ece']:.4f}")
    return "\n".join(lines)


def curves(p: np.ndarray, y: np.ndarray, task: str, class_names: list[str]) -> dict[str, dict]:
    """Precision-recall per class (binary: the positive one), or accuracy against coverage (multiclass)."""
    if task == Task.MULTICLASS:
        from zoo.training.operating_point import _multiclass_threshold

        return {"top class": _multiclass_threshold(p, y, None)[1]}
    cols = [1] if task == Task.BINARY else range(len(class_names))
    out = {}
    for c in cols:
        positives = (y == 1) if task == Task.BINARY else (y[:, c] >= 0.5)
        if positives.any():
            precision, recall, _ = precision_recall_curve(positives, p[:, c])
            out[class_names[c]] = {"precision": precision, "recall": recall}
    return out
