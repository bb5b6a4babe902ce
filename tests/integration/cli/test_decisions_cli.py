"""`zoo export` calibrates and chooses operating points on the validation split; per-class thresholds end to end."""

import json
import re

import numpy as np
import onnxruntime as ort

from tests.integration.cli.test_cli import zoo
from zoo.core import decision, repository


def meta(tmp_path, name, version):
    return json.loads((tmp_path / "models" / name / str(version) / "metadata.json").read_text())


def test_target_precision_on_breast_cancer_raises_the_positive_precision(tmp_path):
    zoo("train", "breast-cancer", "--val-split", "0.25", "--quiet", cwd=tmp_path)
    out = zoo("export", "breast-cancer", cwd=tmp_path).stdout
    assert "calibration: temperature" in out
    zoo("export", "breast-cancer", "--threshold", "auto", "--target-precision", "0.99", cwd=tmp_path)
    default, chosen = meta(tmp_path, "breast-cancer", 1), meta(tmp_path, "breast-cancer", 2)
    assert default["default_threshold"] == 0.5 and chosen["default_threshold"] > 0.5
    assert chosen["operating_point"]["test"]["precision"] > default["operating_point"]["test"]["precision"]
    assert chosen["operating_point"]["validation"]["precision"] >= 0.99
    curve = chosen["operating_point"]["validation_curve"]
    assert 10 <= len(curve["threshold"]) <= 200 and set(curve) == {"threshold", "precision", "recall", "coverage"}
    cal = chosen["calibration"]
    assert set(cal) >= {"method", "temperature", "test_ece_before", "test_ece_after", "test_nll_before", "test_nll_after"}
    folder = tmp_path / "models" / "breast-cancer" / "2"
    for figure in ("reliability_diagram", "precision_recall"):
        data = (folder / repository.FIGURES[figure]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and chosen["figures"][figure] == repository.sha256_bytes(data)


def test_digits_at_target_precision_answers_fewer_rows_more_accurately(tmp_path):
    zoo("train", "digits", "--quiet", cwd=tmp_path)
    zoo("export", "digits", cwd=tmp_path)
    zoo("export", "digits", "--threshold", "auto", "--target-precision", "0.99", cwd=tmp_path)
    default, chosen = meta(tmp_path, "digits", 1)["operating_point"]["test"], meta(tmp_path, "digits", 2)["operating_point"]["test"]
    assert default["coverage"] == 1.0 and chosen["coverage"] < 1.0
    assert chosen["precision"] > default["precision"]
    coverage = [float(re.search(r"coverage ([0-9.]+)", zoo("evaluate", "digits", "--version", v, cwd=tmp_path).stdout)[1]) for v in "12"]
    assert coverage[0] == 1.0 and coverage[1] < 1.0
    ev = zoo("evaluate", "digits", "--plot", "cm.png", cwd=tmp_path).stdout
    assert "precision" in ev and "ECE" in ev
    for fname in ("cm.png", "cm_reliability.png", "cm_precision_recall.png"):
        assert (tmp_path / fname).read_bytes()[:4] == b"\x89PNG"


def test_an_unmeetable_target_says_what_to_do(tmp_path):
    zoo("train", "iris", "--quiet", cwd=tmp_path)
    p = zoo("export", "iris", "--threshold", "auto", "--target-precision", "0.999", cwd=tmp_path, check=False)
    assert p.returncode == 1 and "--val-split" in p.stderr and "--target-precision" in p.stderr
    assert not (tmp_path / "models" / "iris").exists()


def test_multilabel_from_a_user_file_gets_per_class_thresholds(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 4))
    y = np.stack([X[:, 0] + 0.3 * rng.normal(size=1200) > 0, X[:, 1] > 0.8, X[:, 2] + X[:, 3] > 0.5], 1).astype(int)
    rows = ["a,b,c,d,red,green,blue"] + [",".join([*(f"{v:.5f}" for v in x), *map(str, t)]) for x, t in zip(X, y, strict=True)]
    (tmp_path / "tags.csv").write_text("\n".join(rows) + "\n")
    zoo("train", "--data", "tags.csv", "--target", "red,green,blue", "--epochs", "30", "--quiet", cwd=tmp_path)
    zoo("export", "tags", "--threshold", "auto", cwd=tmp_path)
    m = meta(tmp_path, "tags", 1)
    t = m["default_threshold"]
    assert isinstance(t, list) and len(t) == 3 and len(set(t)) == 3
    assert set(m["operating_point"]["validation"]["per_class"]) == {"red", "green", "blue"}
    card = repository.read_card(tmp_path / "models", "tags", 1)
    assert card.default_threshold == t
    sess = ort.InferenceSession(str(tmp_path / "models" / "tags" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    Xq = rng.normal(size=(500, 4)).astype(np.float32)
    p, oh, lab = sess.run(None, {"input": Xq})
    assert np.array_equal(oh, decision.one_hot(p, "multilabel", t)) and np.array_equal(lab, decision.labels(p, "multilabel", t))
    _served_at_per_class_defaults(tmp_path / "models", Xq, t)
    zoo("export", "tags", "--threshold", "0.2,0.5,0.8", cwd=tmp_path)
    assert meta(tmp_path, "tags", 2)["default_threshold"] == [0.2, 0.5, 0.8]
    bad = zoo("export", "tags", "--threshold", "0.2,0.5", cwd=tmp_path, check=False)
    assert bad.returncode == 1 and "one per class (3)" in bad.stderr


def _served_at_per_class_defaults(repo, X, thresholds):
    """A real server loads the card and decides at its per-class defaults; the client reads them back."""
    from tests.integration.server.server_helpers import ThreadServer, settings_for
    from zoo.client import ZooClient

    srv = ThreadServer(settings_for(repo)).start()
    try:
        with ZooClient(srv.address) as client:
            assert client.metadata("tags").default_threshold == thresholds
            pred = client.predict("tags", X)
            assert np.array_equal(pred.one_hot, decision.one_hot(pred.probabilities, "multilabel", thresholds))
            assert np.array_equal(pred.labels, decision.labels(pred.probabilities, "multilabel", thresholds))
    finally:
        srv.stop()
