"""Training runs on disk: weights in safetensors, everything else JSON; nothing is ever unpickled."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.torch import load_file, save

from zoo.core import reference
from zoo.core.atomic import publish_dir, remove_stale_staging, remove_tree, staging_dir, write_bytes, write_json
from zoo.core.contract import Task
from zoo.data.dataset import Dataset, stratified_split
from zoo.training.model import MLP, MLPSpec

WEIGHTS_FILE = "model.safetensors"
MODEL_FILE = "model.json"
CONFIG_FILE = "train_config.json"
METRICS_FILE = "metrics.json"
HOLDOUT_FILE = "holdout.npz"
HOLDOUT_ROWS = 512  # held-out test rows kept for the export parity gate


@dataclass
class Run:
    """A finished training run read back from disk."""

    path: Path
    model: MLP
    info: dict  # model.json: spec, names, task, dataset facts
    config: dict
    metrics: dict

    def holdout(self) -> tuple[np.ndarray, np.ndarray]:
        """Held-out test rows (features, targets) saved with the run."""
        with np.load(self.path / HOLDOUT_FILE, allow_pickle=False) as z:
            return z["X"], z["y"]

    def validation(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The run's validation rows (features, targets); None for runs saved before zoo kept them."""
        with np.load(self.path / HOLDOUT_FILE, allow_pickle=False) as z:
            return (z["X_val"], z["y_val"]) if "X_val" in z.files else None


def validation_rows(data: Dataset, config: dict) -> tuple[np.ndarray, np.ndarray]:
    """The validation rows training held out of the training split (zoo.training.loop.fit splits them the same way)."""
    fraction, seed = float(config.get("val_fraction", 0.0) or 0.0), int(config.get("seed", 0) or 0)
    if fraction > 0 and len(data.X_train) >= 10:
        _, va = stratified_split(data.y_train, fraction, seed)
    else:
        va = np.arange(0)
    return data.X_train[va].astype(np.float32), data.y_train[va]


def new_run_id() -> str:
    """Sortable id: UTC timestamp to the microsecond."""
    t = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(t)) + f"{int(t % 1 * 1e6):06d}"


def save_run(
    runs_dir: str | Path,
    name: str,
    model: MLP,
    data: Dataset,
    config: dict,
    metrics: dict,
    history: list[dict],
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a run folder in a hidden staging folder, then rename it into `runs_dir/name/<id>`."""
    parent = Path(runs_dir) / name
    stage = staging_dir(parent, "run")
    remove_stale_staging(parent, "run", keep=stage)  # left by a run that was killed
    try:
        state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        write_bytes(stage / WEIGHTS_FILE, save(state))
        info = {
            "name": name,
            "spec": model.spec.to_dict(),
            "task": data.task,
            "feature_names": data.feature_names,
            "class_names": data.class_names,
            "dataset": {
                "name": data.name,
                "source": data.source,
                "fingerprint": data.fingerprint(),
                "train_rows": int(len(data.X_train)),
                "test_rows": int(len(data.X_test)),
                "origin": data.origin,
            },
            # what the server compares its inputs and decisions with (zoo.core.reference), carried by the export
            reference.KEY: reference.statistics(data.X_train, data.y_train, data.num_classes, multilabel=data.task == Task.MULTILABEL),
        }
        write_json(stage / MODEL_FILE, info)
        write_json(stage / CONFIG_FILE, config)
        write_json(stage / METRICS_FILE, {**metrics, "history": history})
        buf = io.BytesIO()
        X_val, y_val = validation_rows(data, config)  # what `zoo export` calibrates and picks thresholds on
        np.savez(buf, X=data.X_test[:HOLDOUT_ROWS].astype(np.float32), y=data.y_test[:HOLDOUT_ROWS], X_val=X_val, y_val=y_val)
        write_bytes(stage / HOLDOUT_FILE, buf.getvalue())
        for fname, blob in (extra_files or {}).items():
            write_bytes(stage / fname, blob)
        while True:  # two runs in the same microsecond: take the next id
            try:
                return publish_dir(stage, parent / new_run_id())
            except FileExistsError:
                continue
    except BaseException:
        remove_tree(stage)
        raise


def run_ids(runs_dir: str | Path, name: str) -> list[str]:
    """Finished runs of `name`, oldest first (staging folders are hidden and skipped)."""
    parent = Path(runs_dir) / name
    if not parent.is_dir():
        return []
    return sorted(p.name for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MODEL_FILE).is_file())


def latest_run(runs_dir: str | Path, name: str) -> Path:
    """Folder of the newest run of `name`; FileNotFoundError saying how to make one otherwise."""
    ids = run_ids(runs_dir, name)
    if not ids:
        raise FileNotFoundError(f"no training run named {name!r} under {runs_dir}; train one with `zoo train {name}`")
    return Path(runs_dir) / name / ids[-1]


def load_run(path: str | Path) -> Run:
    """Rebuild the model of a run folder from safetensors + JSON."""
    path = Path(path)
    info = json.loads((path / MODEL_FILE).read_text())
    model = MLP(MLPSpec.from_dict(info["spec"]))
    model.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
    model.eval()
    config = json.loads((path / CONFIG_FILE).read_text())
    metrics = json.loads((path / METRICS_FILE).read_text())
    return Run(path, model, info, config, metrics)


def list_runs(runs_dir: str | Path) -> dict[str, list[str]]:
    """All run names with their run ids."""
    root = Path(runs_dir)
    if not root.is_dir():
        return {}
    return {p.name: run_ids(root, p.name) for p in sorted(root.iterdir()) if p.is_dir() and run_ids(root, p.name)}
