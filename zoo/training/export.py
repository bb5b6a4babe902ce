"""ONNX export into the versioned repository, behind a parity gate against PyTorch."""

from __future__ import annotations

import json
import logging
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zoo.core import decision, model_config, reference, repository
from zoo.core.atomic import publish_dir, remove_stale_staging, remove_tree, staging_dir, write_bytes, write_json, write_text
from zoo.core.contract import DEFAULT_BATCHING, INPUT_NAME, OUTPUT_NAMES, ModelCard, Task
from zoo.core.onnx_session import open_session
from zoo.training.checkpoint import Run
from zoo.training.model import MLP, logits_to_probabilities

OPSET = 18
PARITY_TOLERANCE = 1e-5
SELFCHECK_ROWS = 8  # rows stored in metadata.json so a server can verify a freshly loaded version


class ExportError(RuntimeError):
    """The export failed (parity gate or I/O); nothing was left in the repository."""


class DecisionGraph(nn.Module):
    """Raw features -> (probabilities, one_hot, label), the decision made in-graph as zoo.core.decision does it."""

    def __init__(self, model: MLP, threshold: float | list[float], temperature: float = 1.0):
        super().__init__()
        self.model, self.task, self.temperature = model, model.spec.task, float(temperature)
        self.per_class = isinstance(threshold, list)  # multilabel only (zoo.core.decision.as_threshold checks)
        self.threshold = torch.tensor(threshold, dtype=torch.float32) if isinstance(threshold, list) else float(threshold)
        self.register_buffer("classes", torch.arange(model.spec.num_classes))

    def forward(self, x: torch.Tensor):
        logits = self.model(x)
        if self.temperature != 1.0:  # temperature scaling (zoo.training.calibration): same order, calibrated spread
            logits = logits / self.temperature
        p = logits_to_probabilities(logits, self.task)
        t = self.threshold
        if self.per_class:  # the most probable of the classes set, -1 when none is
            is_set = p >= t
            k = torch.where(is_set, p, torch.full_like(p, -1.0)).argmax(dim=1)
            return p, is_set.float(), torch.where(is_set.any(dim=1), k, torch.full_like(k, -1))
        if self.task == Task.BINARY:
            pos = p[:, 1] >= t
            return p, torch.stack([~pos, pos], dim=1).float(), pos.long()
        k = p.argmax(dim=1)  # first maximum on ties, like ONNX ArgMax and numpy
        top_set = p.gather(1, k.unsqueeze(1)).squeeze(1) >= t
        label = torch.where(top_set, k, torch.full_like(k, -1))
        if self.task == Task.MULTILABEL:
            return p, (p >= t).float(), label
        one_hot = (self.get_buffer("classes").unsqueeze(0) == k.unsqueeze(1)) & top_set.unsqueeze(1)
        return p, one_hot.float(), label


@dataclass
class ExportResult:
    """Where the model went and what the parity gate measured."""

    path: Path
    name: str
    version: int
    parity: dict
    metadata: dict  # what metadata.json holds


def _onnx_export(graph: DecisionGraph, num_features: int, path: Path, opset: int) -> None:
    """torch.onnx (dynamo exporter) with a dynamic batch axis, as one self-contained file."""
    example = torch.zeros(2, num_features)
    batch = torch.export.Dim("batch", min=1)
    for noisy in ("torch.onnx", "torch.export", "onnxscript"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            opset_version=opset,
            dynamo=True,
            dynamic_shapes={"x": {0: batch}},
            external_data=False,
            verbose=False,
        )


def parity_report(graph: DecisionGraph, onnx_path: Path, X: np.ndarray, threshold: float | list[float]) -> dict:
    """Compare torch and onnxruntime on X, and each row alone vs in the batch; `passed` says if the gate holds."""
    with torch.no_grad():
        p_t, oh_t, lab_t = (t.numpy() for t in graph(torch.as_tensor(X)))
    sess = open_session(str(onnx_path)).session
    p_o, oh_o, lab_o = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: X})
    alone = [sess.run(list(OUTPUT_NAMES), {INPUT_NAME: X[i : i + 1]}) for i in range(len(X))]
    p_alone = np.concatenate([a[0] for a in alone])
    oh_alone = np.concatenate([a[1] for a in alone])
    task = graph.task
    max_diff = float(np.abs(p_t - p_o).max()) if len(X) else 0.0
    report: dict = {
        "rows": int(len(X)),
        "max_abs_diff_probabilities": max_diff,
        "tolerance": PARITY_TOLERANCE,
        "one_hot_agreement": float(np.mean(np.all(oh_t == oh_o, axis=1))) if len(X) else 1.0,
        "label_agreement": float(np.mean(lab_t == lab_o)) if len(X) else 1.0,
        "one_hot_matches_threshold": bool(
            np.array_equal(oh_o, decision.one_hot(p_o, task, threshold)) and np.array_equal(lab_o, decision.labels(p_o, task, threshold))
        ),
        "batch_invariance_max_abs_diff": float(np.abs(p_alone - p_o).max()) if len(X) else 0.0,
        "batch_invariant_one_hot": bool(np.array_equal(oh_alone, oh_o)),
    }
    report["passed"] = bool(
        max_diff <= PARITY_TOLERANCE
        and report["one_hot_agreement"] == 1.0
        and report["label_agreement"] == 1.0
        and report["one_hot_matches_threshold"]
        and report["batch_invariance_max_abs_diff"] == 0.0  # a row in a batch must equal the row alone, bit for bit
        and report["batch_invariant_one_hot"]
    )
    report["selfcheck"] = {"inputs": X[:SELFCHECK_ROWS].tolist(), "probabilities": p_o[:SELFCHECK_ROWS].tolist()}
    return report


def _source_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _run_time(run_id: str) -> str | None:
    """The UTC time a run id (checkpoint.new_run_id) names, as ISO 8601; None for an id of another form."""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.strptime(run_id[:15], "%Y%m%dT%H%M%S"))
    except ValueError:
        return None


def _stamp_metadata(onnx_path: Path, props: dict) -> None:
    """Write the model's facts into the ONNX metadata_props (values JSON-encoded unless strings)."""
    import onnx

    m = onnx.load(str(onnx_path))
    del m.metadata_props[:]
    for k, v in props.items():
        entry = m.metadata_props.add()
        entry.key, entry.value = k, v if isinstance(v, str) else json.dumps(v)
    m.producer_name, m.doc_string = "zoo", f"zoo MLP classifier {props.get('name')}"
    onnx.checker.check_model(m)
    onnx.save(m, str(onnx_path))


def _carry_figures(run_path: Path, stage: Path) -> dict[str, str]:
    """Copy the run's figures (those it has) into the staging folder; figure -> SHA-256 of the bytes copied."""
    carried = {}
    for figure, fname in repository.FIGURES.items():
        src = run_path / fname
        if src.is_file():  # runs saved without plots (or multilabel: no confusion matrix) simply have fewer
            data = src.read_bytes()
            write_bytes(stage / fname, data)
            carried[figure] = repository.sha256_bytes(data)  # hashed from the bytes written, not re-read
    return carried


def export_run(
    run: Run,
    repo_root: str | Path,
    name: str | None = None,
    threshold: float | list[float] | str | None = None,
    opset: int = OPSET,
    calibration: str = "temperature",
    target_precision: float | None = None,
    target_recall: float | None = None,
) -> ExportResult:
    """Export a run as the next version of `name`; raise ExportError (leaving nothing behind) on any failure.

    The logits are temperature-scaled on the validation rows (`calibration`); `threshold` is a number, one per
    class (multilabel), None (the task's default) or "auto" (chosen on the validation rows: zoo.training.operating_point).
    """
    import onnx
    import onnxruntime

    from zoo.training.decisions import decide

    name = repository.check_name(name or run.info["name"])
    task = run.info["task"]
    chosen = decide(run, calibration, threshold, target_precision, target_recall)
    t = chosen.threshold
    graph = DecisionGraph(run.model, t, chosen.temperature).eval()
    X, _ = run.holdout()
    X = np.ascontiguousarray(X, dtype=np.float32)
    model_dir = Path(repo_root) / name
    stage = staging_dir(model_dir, "export")
    remove_stale_staging(model_dir, "export", keep=stage)  # left by an export that was killed
    try:
        onnx_path = stage / repository.MODEL_FILE
        _onnx_export(graph, run.model.spec.num_features, onnx_path, opset)
        parity = parity_report(graph, onnx_path, X, t)
        selfcheck = parity.pop("selfcheck")
        if not parity["passed"]:
            raise ExportError(f"parity gate failed for {name}: {json.dumps(parity)}")
        spec = run.model.spec
        facts = {
            "name": name,
            "task": task,
            "feature_names": run.info["feature_names"],
            "class_names": run.info["class_names"],
            "default_threshold": t,
            "normalization": {"mean": spec.mean, "std": spec.std},
            "architecture": {"hidden": list(spec.hidden), "activation": spec.activation, "parameters": run.metrics.get("parameters")},
            "metrics": {k: v for k, v in run.metrics.items() if k != "history"},
            "dataset_fingerprint": run.info["dataset"]["fingerprint"],
            "dataset": run.info["dataset"]["name"],
            "dataset_origin": run.info["dataset"].get("origin") or {},
            "seed": run.config.get("seed"),
            "source_commit": _source_commit(),
            "run": str(run.path),
            "trained_at": _run_time(run.path.name),  # the run id is its UTC start time
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "torch_version": torch.__version__,
            "onnx_version": onnx.__version__,
            "onnxruntime_version": onnxruntime.__version__,
            "opset": opset,
            "parity": parity,
            "calibration": chosen.calibration,
        }
        _stamp_metadata(onnx_path, facts)
        if chosen.operating_point:  # metadata.json only: it carries the validation curve
            facts["operating_point"] = chosen.operating_point
        if reference.KEY in run.info:  # metadata.json only (it is long); runs trained before zoo recorded it have none
            facts[reference.KEY] = run.info[reference.KEY]
        # Stamping rewrote the file: check once more that the bytes we ship still load and match.
        if not parity_report(graph, onnx_path, X[:SELFCHECK_ROWS], t)["passed"]:
            raise ExportError(f"parity gate failed for {name} after writing metadata")
        sha = repository.sha256_file(onnx_path)
        figures = {**_carry_figures(run.path, stage), **chosen.write_figures(stage)}
        while True:  # a concurrent export may take our version number: take the next one
            version = repository.next_version(repo_root, name)
            metadata = {**facts, "version": version, "model_sha256": sha, repository.FIGURES_KEY: figures, "selfcheck": selfcheck}
            card = ModelCard.from_dict(metadata)  # what the server will read back: checked before it is published
            write_json(stage / repository.METADATA_FILE, metadata)
            try:
                final = publish_dir(stage, repository.version_dir(repo_root, name, version))
                break
            except FileExistsError:
                continue
    except BaseException:
        remove_tree(stage)
        raise
    # The same message the server's ModelConfig RPC answers with, so Triton and zoo read one configuration.
    write_text(model_dir / repository.CONFIG_FILE, model_config.to_pbtxt(model_config.build(card, DEFAULT_BATCHING)))
    return ExportResult(final, name, version, parity, metadata)
