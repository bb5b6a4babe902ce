"""Fixtures for the HTTP integration tests: the server tests' repositories, one shared server, its gRPC stub, and
the repository the model browser's tests look at."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

# The same real exports, one shared server (gRPC and HTTP: settings_for opens both) and its gRPC stub.
from tests.integration.server.conftest import model_repo, served_repo, server, stub  # noqa: F401
from tests.integration.server.server_helpers import copy_version
from zoo.core import repository

WIDE_FEATURES = 784  # as wide as mnist: the try-it form must still work
HOSTILE_CLASSES = ['<script>alert("class")</script>', "fish & chips", "it's <b>bold</b>"]
HOSTILE_FEATURE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="session")
def browsed_repo(runs_and_repo, served_repo, tmp_path_factory) -> Path:  # noqa: F811
    """served_repo plus what the model browser must show: iris v3, exported from a run that drew its figures; `wide`
    (784 features, figures too); `escaped`, iris v1 with HTML in its names; `tampered`, whose figures do not match."""
    pytest.importorskip("torch")
    from zoo.training.checkpoint import latest_run, load_run
    from zoo.training.export import export_run

    root = tmp_path_factory.mktemp("browsed") / "models"
    shutil.copytree(served_repo, root)
    runs = tmp_path_factory.mktemp("browsed-runs")
    iris = _with_figures(latest_run(runs_and_repo[0], "iris"), runs / "iris")
    assert export_run(load_run(iris), root, name="iris").version == 3
    export_run(load_run(_wide_run(runs)), root, name="wide")
    meta_path = copy_version(served_repo, "iris", 1, root, "escaped", 1) / repository.METADATA_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta.update(class_names=HOSTILE_CLASSES, dataset="<i>iris</i>")
    meta["feature_names"][0] = HOSTILE_FEATURE
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    # tampered: the card of iris v3 (it records both figures), a training curve of other bytes, no confusion matrix
    folder = copy_version(root, "iris", 3, root, "tampered", 1)
    (folder / repository.FIGURES["training_curve"]).write_bytes(b"\x89PNG\r\n\x1a\nnot the exported bytes")
    return root


def _with_figures(run_path: Path, dest: Path) -> Path:
    """A copy of a saved run (saved without plots) with the figures `zoo train` draws."""
    import torch

    from zoo import plots
    from zoo.training.checkpoint import load_run

    run = load_run(run_path)
    X, y = run.holdout()
    with torch.no_grad():
        probs = run.model.probabilities(torch.as_tensor(X)).numpy()
    copy = shutil.copytree(run_path, dest / run_path.name)
    info = run.info
    figures = plots.run_figures(info["name"], run.metrics["history"], info["task"], y, probs, info["class_names"])
    for fname, png in figures.items():
        (copy / fname).write_bytes(png)
    return copy


def _wide_run(runs: Path) -> Path:
    """A run of a 784-feature model (random data, two epochs): its page has hundreds of fields."""
    import torch

    from zoo import plots
    from zoo.data.dataset import from_arrays
    from zoo.training.checkpoint import save_run
    from zoo.training.loop import TrainConfig, fit

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, WIDE_FEATURES)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    data = from_arrays("wide", X, y, [f"pixel_{i}" for i in range(WIDE_FEATURES)], ["low", "mid", "high"], "multiclass")
    cfg = TrainConfig(hidden=(16,), epochs=2, batch_size=64, lr=1e-2)
    res = fit(data, cfg)
    with torch.no_grad():
        probs = res.model.probabilities(torch.as_tensor(data.X_test)).numpy()
    figures = plots.run_figures("wide", res.history, data.task, data.y_test, probs, data.class_names)
    return save_run(runs, "wide", res.model, data, cfg.to_dict(), res.metrics, res.history, figures)
