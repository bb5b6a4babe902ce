"""Export: the ONNX graph equals PyTorch, is batch-invariant, thresholds as documented, and lands atomically."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from zoo.core import decision, model_config, repository
from zoo.core.contract import DEFAULT_BATCHING, OUTPUT_NAMES
from zoo.data.dataset import from_arrays
from zoo.training.checkpoint import load_run, save_run
from zoo.training.export import ExportError, export_run
from zoo.training.loop import TrainConfig, fit
from zoo.training.model import logits_to_probabilities

OUTS = list(OUTPUT_NAMES)


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_exported_model_matches_torch_and_is_batch_invariant(runs_and_repo):
    runs, repo = runs_and_repo
    for name in ("iris", "breast-cancer"):
        card = repository.read_card(repo, name, 1)
        run = load_run(card.extra["run"])
        X, _ = run.holdout()
        sess = session(repository.verify_model_file(repo, card))
        p, oh, lab = sess.run(OUTS, {"input": X})
        temperature = card.extra["calibration"]["temperature"]  # the graph serves the calibrated probabilities
        p_torch = logits_to_probabilities(run.model(torch.as_tensor(X)) / temperature, card.task).detach().numpy()
        assert np.abs(p - p_torch).max() <= 1e-5
        for i in range(len(X)):
            pi, ohi, labi = sess.run(OUTS, {"input": X[i:i + 1]})
            assert np.array_equal(pi[0], p[i]) and np.array_equal(ohi[0], oh[i]) and labi[0] == lab[i]
        t = card.default_threshold
        assert np.array_equal(oh, decision.one_hot(p, card.task, t))
        assert np.array_equal(lab, decision.labels(p, card.task, t))
        assert oh.sum(1).tolist() == [1.0] * len(X)  # default thresholds always pick one class


def test_graph_interface_and_metadata(exported_repo):
    card = repository.read_card(exported_repo, "iris", 1)
    path = repository.verify_model_file(exported_repo, card)
    m = onnx.load(str(path))
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in m.graph.initializer)
    sess = session(path)
    (inp,) = sess.get_inputs()
    assert (inp.name, inp.type, inp.shape[1]) == ("input", "tensor(float)", 4) and not isinstance(inp.shape[0], int)
    assert [(o.name, o.type) for o in sess.get_outputs()] == [
        ("probabilities", "tensor(float)"), ("one_hot", "tensor(float)"), ("label", "tensor(int64)")]
    props = {p.key: p.value for p in m.metadata_props}
    meta = json.loads((path.parent / "metadata.json").read_text())
    for key in ("task", "feature_names", "class_names", "default_threshold", "normalization", "metrics",
                "dataset_fingerprint", "seed", "torch_version", "onnx_version", "opset", "parity"):
        value = props[key]
        assert (value if isinstance(meta[key], str) else json.loads(value)) == meta[key], key
    assert meta["model_sha256"] == repository.sha256_file(path)
    assert meta["parity"]["passed"] and meta["parity"]["max_abs_diff_probabilities"] <= 1e-5
    assert card.class_names == ["setosa", "versicolor", "virginica"] and card.feature_names[0] == "sepal_length_cm"
    assert len(card.selfcheck_inputs) == 8
    # config.pbtxt is the ModelConfig message built from the card: the text Triton reads parses back to it.
    cfg = model_config.from_pbtxt((exported_repo / "iris" / "config.pbtxt").read_text())
    assert cfg == model_config.build(card, DEFAULT_BATCHING)
    assert (cfg.platform, cfg.max_batch_size, list(cfg.input[0].dims)) == ("onnxruntime_onnx", 1024, [4])
    assert [(o.name, list(o.dims), o.HasField("reshape")) for o in cfg.output] == [
        ("probabilities", [3], False), ("one_hot", [3], False), ("label", [1], True)]
    assert json.loads(cfg.parameters["class_names"].string_value) == card.class_names


def _tiny_run(tmp_path, task):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    if task == "multilabel":
        y = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 0.5], 1).astype(np.float32)
        classes = ["a", "b", "c"]
    else:
        y = (X[:, 0] > 0).astype(int) + (task == "multiclass") * (X[:, 1] > 0.5).astype(int)
        classes = ["a", "b", "c"] if task == "multiclass" else ["no", "yes"]
    data = from_arrays("tiny", X, y, ["x", "y", "z"], classes, task)
    cfg = TrainConfig(hidden=(8,), epochs=3, batch_size=32, lr=1e-2)
    res = fit(data, cfg)
    return load_run(save_run(tmp_path / "runs", "tiny", res.model, data, cfg.to_dict(), res.metrics, res.history))


@pytest.mark.parametrize("task, threshold", [("multiclass", 0.6), ("binary", 0.3), ("multilabel", 0.4), ("multilabel", None)])
def test_threshold_baked_into_the_graph(tmp_path, task, threshold):
    run = _tiny_run(tmp_path, task)
    res = export_run(run, tmp_path / "models", name="tiny", threshold=threshold)
    t = decision.default_threshold(task) if threshold is None else threshold
    X = np.random.default_rng(5).normal(size=(300, 3)).astype(np.float32)
    p, oh, lab = session(res.path / "model.onnx").run(OUTS, {"input": X})
    assert np.array_equal(oh, decision.one_hot(p, task, t)) and np.array_equal(lab, decision.labels(p, task, t))
    assert res.parity["passed"]


def test_versions_increase_and_failed_gate_leaves_nothing(tmp_path, monkeypatch):
    import zoo.training.export

    run = _tiny_run(tmp_path, "multiclass")
    repo = tmp_path / "models"
    assert export_run(run, repo, name="tiny").version == 1
    assert export_run(run, repo, name="tiny").version == 2
    monkeypatch.setattr(zoo.training.export, "PARITY_TOLERANCE", -1.0)  # no model can meet a negative tolerance
    with pytest.raises(ExportError, match="parity gate failed"):
        export_run(run, repo, name="tiny")
    assert repository.versions(repo, "tiny") == [1, 2]
    assert sorted(p.name for p in (repo / "tiny").iterdir()) == ["1", "2", "config.pbtxt"]  # no staging left


def test_bad_model_name_is_refused(tmp_path):
    run = _tiny_run(tmp_path, "binary")
    with pytest.raises(ValueError, match="invalid model name"):
        export_run(run, tmp_path / "models", name="../evil")


def test_published_files_are_readable_by_others(exported_repo):
    """A server running as another user (a container's uid 10001) must be able to read an export."""
    import stat

    version = exported_repo / "iris" / "1"
    for p in (version, version / "model.onnx", version / "metadata.json", exported_repo / "iris" / "config.pbtxt"):
        assert p.stat().st_mode & stat.S_IROTH, p


def test_export_removes_staging_folders_left_by_a_killed_export(tmp_path):
    from zoo.core.atomic import OWNER_FILE, staging_dir

    run = _tiny_run(tmp_path, "binary")
    repo = tmp_path / "models"
    dead = staging_dir(repo / "tiny", "export")  # as a killed export leaves it: its owner process is gone
    (dead / OWNER_FILE).write_text("%s 999999999\n" % __import__("socket").gethostname())
    (dead / "model.onnx").write_bytes(b"half written")
    alive = staging_dir(repo / "tiny", "export")  # this process's own: still running, must be kept
    export_run(run, repo, name="tiny")
    assert not dead.exists() and alive.exists()
    assert {p.name for p in (repo / "tiny").iterdir()} == {"1", alive.name, "config.pbtxt"}


def test_the_runs_figures_are_carried_into_the_version_with_their_digests(tmp_path):
    run = _tiny_run(tmp_path, "multiclass")
    pngs = {"training_curve.png": b"\x89PNG curve", "confusion_matrix.png": b"\x89PNG matrix"}
    for fname, data in pngs.items():
        (run.path / fname).write_bytes(data)
    res = export_run(run, tmp_path / "models", name="tiny")
    card = repository.read_card(tmp_path / "models", "tiny", res.version)
    carried = {figure: repository.sha256_bytes(pngs[fname]) for figure, fname in repository.FIGURES.items() if fname in pngs}
    assert {f: d for f, d in repository.figures(card.extra).items() if f in carried} == carried
    assert {fname: (res.path / fname).read_bytes() for fname in pngs} == pngs
    (run.path / "confusion_matrix.png").unlink()  # a run with fewer figures (multilabel draws no matrix)
    (run.path / "training_curve.png").unlink()
    res = export_run(run, tmp_path / "models", name="tiny")
    assert set(json.loads((res.path / repository.METADATA_FILE).read_text())["figures"]) == {"reliability_diagram"}  # drawn at export
    assert [p.name for p in res.path.iterdir() if p.suffix == ".png"] == ["reliability_diagram.png"]
