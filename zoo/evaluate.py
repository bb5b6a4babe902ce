"""Score an exported model with onnxruntime: accuracy and confusion matrix on labelled rows (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.core import repository
from zoo.core.contract import INPUT_NAME, LABEL, ONE_HOT, OUTPUT_NAMES, ModelCard, Task
from zoo.core.onnx_session import open_session
from zoo.data.dataset import DataError


@dataclass
class Evaluation:
    """Accuracy and confusion matrix of one model version on some rows."""

    name: str
    version: int
    rows: int
    accuracy: float
    confusion: np.ndarray | None
    class_names: list[str]


def resolve_version(repo_root: str | Path, name: str, version: int | None) -> int:
    """The asked version, or the latest; FileNotFoundError saying what exists otherwise."""
    vs = repository.versions(repo_root, name)
    if not vs:
        raise FileNotFoundError(f"no model {name!r} in {repo_root}; models there: {', '.join(repository.model_names(repo_root)) or 'none'}")
    if version is None:
        return vs[-1]
    if version not in vs:
        raise FileNotFoundError(f"model {name!r} has no version {version}; versions: {', '.join(map(str, vs))}")
    return version


def align_features(X: np.ndarray, names: list[str], card: ModelCard, source: str) -> np.ndarray:
    """Reorder named columns into the model's feature order; unnamed (f0, f1, ...) columns must match in count."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise DataError(f"{source}: expected rows of {card.num_features} features; got an array of shape {list(X.shape)}")
    if set(card.feature_names) <= set(names):
        return np.ascontiguousarray(X[:, [names.index(f) for f in card.feature_names]])
    if X.shape[1] != card.num_features:
        missing = [f for f in card.feature_names if f not in names][:5]
        raise DataError(
            f"{source}: model {card.name!r} expects {card.num_features} features "
            f"({', '.join(card.feature_names[:6])}{', ...' if card.num_features > 6 else ''}); "
            f"got {X.shape[1]} columns" + (f", missing {', '.join(missing)}" if names and not names[0].startswith("f") else "")
        )
    return np.ascontiguousarray(X)


def run_model(repo_root: str | Path, card: ModelCard, X: np.ndarray) -> dict[str, np.ndarray]:
    """All outputs of the model on X via onnxruntime (CPU)."""
    path = repository.verify_model_file(repo_root, card)
    sess = open_session(str(path), threads=0).session
    return dict(zip(OUTPUT_NAMES, sess.run(list(OUTPUT_NAMES), {INPUT_NAME: X}), strict=True))


def evaluate(repo_root, name, version, X, y_true: np.ndarray, card: ModelCard | None = None) -> Evaluation:
    """Accuracy (exact match for multilabel) and, for single-label tasks, the confusion matrix."""
    from zoo.plots import confusion_matrix

    card = card or repository.read_card(repo_root, name, version)
    out = run_model(repo_root, card, X)
    if card.task == Task.MULTILABEL:
        acc = float(np.mean(np.all(out[ONE_HOT] == y_true, axis=1)))
        cm = None
    else:
        acc = float(np.mean(out[LABEL] == y_true))
        cm = confusion_matrix(y_true, out[LABEL], card.num_classes)
    return Evaluation(card.name, card.version, len(X), acc, cm, card.class_names)


def encode_labels(raw: list[list[str]], card: ModelCard, source: str) -> np.ndarray:
    """Map label strings of a file onto the model's class indices (multilabel: 0/1 columns)."""
    if card.task == Task.MULTILABEL:
        return np.array([[float(v in ("1", "1.0", "true", "True")) for v in row] for row in raw], dtype=np.float32)
    index = {c: i for i, c in enumerate(card.class_names)}
    out = np.empty(len(raw), dtype=np.int64)
    for r, row in enumerate(raw):
        if row[0] not in index:
            raise DataError(f"{source}: row {r}: label {row[0]!r} is not one of the model's classes ({', '.join(card.class_names)})")
        out[r] = index[row[0]]
    return out


def training_overlap(card: ModelCard, X: np.ndarray) -> tuple[int, str]:
    """(how many rows of X were training rows of the model, '') or (0, why that cannot be told)."""
    from zoo.data import origin

    recorded = card.extra.get("dataset_origin")
    if not recorded:
        return 0, "the model does not record its training data (exported by an older zoo)"
    try:
        data = origin.load(recorded, name=card.name)
    except (DataError, OSError, ValueError) as e:
        return 0, str(e)
    # Rows compared as the model sees them (float32 bytes), via a set: no per-pair comparison.
    train = np.ascontiguousarray(data.X_train, dtype=np.float32)
    seen = {row.tobytes() for row in train}
    rows = np.ascontiguousarray(X, dtype=np.float32)
    return sum(row.tobytes() in seen for row in rows), ""
