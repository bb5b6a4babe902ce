"""PNG plots of a run: the training curve and the confusion matrix (matplotlib, headless)."""

from __future__ import annotations

import io

import numpy as np

from zoo.core import decision
from zoo.core.contract import Task
from zoo.core.repository import FIGURES


def _figure_bytes(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def training_curve_png(history: list[dict], title: str) -> bytes:
    """Loss and accuracy per epoch, training and validation."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, label in (("train", "train"), ("val", "validation")):
        if f"{key}_loss" in history[0]:
            ax1.plot(epochs, [h[f"{key}_loss"] for h in history], label=label)
            ax2.plot(epochs, [h[f"{key}_accuracy"] for h in history], label=label)
    ax1.set(title="loss", xlabel="epoch")
    ax2.set(title="accuracy", xlabel="epoch", ylim=(0, 1.01))
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return _figure_bytes(fig)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """[true, predicted] counts; predictions of -1 (no class set) are dropped."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    keep = y_pred >= 0
    np.add.at(cm, (y_true[keep], y_pred[keep]), 1)
    return cm


def confusion_matrix_png(cm: np.ndarray, class_names: list[str], title: str) -> bytes:
    """Heat map of a confusion matrix with the counts written in."""
    plt = _pyplot()
    n = len(class_names)
    size = min(3 + 0.45 * n, 10)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    if n <= 20:
        top = cm.max() or 1
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > top / 2 else "black")
    return _figure_bytes(fig)


def format_confusion_matrix(cm: np.ndarray, class_names: list[str]) -> str:
    """The confusion matrix as aligned text for the terminal."""
    names = [n[:12] for n in class_names]
    w = max(max(len(n) for n in names), len(str(cm.max())), 4)
    lines = [" " * (w + 2) + " ".join(f"{n:>{w}}" for n in names) + "   <- predicted"]
    for n, row in zip(names, cm, strict=True):
        lines.append(f"{n:>{w}}  " + " ".join(f"{v:>{w}}" for v in row))
    return "\n".join(lines)


def run_figures(
    name: str, history: list[dict], task: str, y_test: np.ndarray, probabilities: np.ndarray, class_names: list[str]
) -> dict[str, bytes]:
    """A run's PNGs by file name, as `zoo export` carries them: the training curve and (single-label tasks) the
    confusion matrix of the test split at the task's default threshold."""
    out = {FIGURES["training_curve"]: training_curve_png(history, f"{name}: training")}
    if task != Task.MULTILABEL:
        pred = decision.labels(probabilities, task, decision.default_threshold(task))
        cm = confusion_matrix(np.asarray(y_test), pred, len(class_names))
        out[FIGURES["confusion_matrix"]] = confusion_matrix_png(cm, class_names, f"{name}: test split")
    return out
