"""PNG plots of how a model decides: the reliability diagram and the precision-recall curve (matplotlib, torch-free)."""

from __future__ import annotations

import numpy as np

from zoo.core.contract import Task
from zoo.metrics import ECE_BINS, ece, reliability
from zoo.plots import _figure_bytes, _pyplot


def reliability_png(curves: dict[str, tuple[np.ndarray, np.ndarray]], task: str, title: str) -> bytes:
    """Accuracy against confidence per equal-width bin, one line per named probability set (e.g. before/after)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for label, (p, y) in curves.items():
        r = reliability(p, y, task)
        filled = r["count"] > 0
        ax.plot(r["confidence"][filled], r["accuracy"][filled], marker="o", label=f"{label} (ECE {ece(p, y, task):.3f})")
    what = "share positive" if task == Task.MULTILABEL else "accuracy"
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="confidence", ylabel=what, title=f"{title} ({ECE_BINS} bins)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _figure_bytes(fig)


def pr_curve_png(curves: dict[str, dict], title: str, chosen: dict[str, tuple[float, float]] | None = None) -> bytes:
    """Precision against recall (or accuracy against coverage) per class name, the operating point marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, c in curves.items():
        x = c.get("recall", c.get("coverage"))
        y = c.get("precision", c.get("accuracy"))
        (line,) = ax.plot(x, y, label=name)
        if chosen and name in chosen:
            ax.plot(*chosen[name], marker="*", markersize=14, color=line.get_color())
    first = next(iter(curves.values()), {})
    xlabel, ylabel = ("recall", "precision") if "recall" in first else ("coverage", "accuracy")
    ax.set(xlim=(0, 1.01), ylim=(0, 1.01), xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if len(curves) <= 12:
        ax.legend(loc="lower left", fontsize=8)
    return _figure_bytes(fig)
