"""A real multilabel model with per-class default thresholds (chosen on its validation rows), for the server tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ["red", "green", "blue"]


def export_tags(root: Path) -> Path:
    """Train a small multilabel model on a user's arrays and export it as `tags` v1 with --threshold auto: its card and
    graph hold one threshold per class. Returns the repository."""
    from zoo.data.dataset import from_arrays
    from zoo.training.checkpoint import load_run, save_run
    from zoo.training.export import export_run
    from zoo.training.loop import TrainConfig, fit

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 4))
    y = np.stack([X[:, 0] + 0.3 * rng.normal(size=1200) > 0, X[:, 1] > 0.8, X[:, 2] + X[:, 3] > 0.5], 1).astype(int)
    data = from_arrays("tags", X, y, ["a", "b", "c", "d"], CLASSES, "multilabel")
    cfg = TrainConfig(hidden=(16,), epochs=15, lr=1e-2, val_fraction=0.25)
    res = fit(data, cfg)
    run = save_run(root / "runs", "tags", res.model, data, cfg.to_dict(), res.metrics, res.history)
    repo = root / "models"
    export_run(load_run(run), repo, name="tags", threshold="auto")
    return repo
