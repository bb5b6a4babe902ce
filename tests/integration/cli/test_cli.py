"""The CLI end to end through the installed `zoo` console script, in a temp working folder."""

import json
import subprocess

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import zoo_executable


def zoo(*args, cwd, check=True):
    p = subprocess.run([zoo_executable(), *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"zoo {' '.join(args)} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def test_train_export_info_evaluate_list(tmp_path):
    out = zoo("train", "iris", "--epochs", "40", "--hidden", "16", "--quiet", cwd=tmp_path).stdout
    assert "test accuracy" in out
    (run,) = (tmp_path / "runs" / "iris").iterdir()
    for f in ("model.safetensors", "model.json", "train_config.json", "metrics.json", "training_curve.png", "confusion_matrix.png"):
        assert (run / f).is_file(), f
    assert json.loads((run / "train_config.json").read_text())["hidden"] == [16]
    assert (run / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "exported iris version 1" in zoo("export", "iris", cwd=tmp_path).stdout
    model = tmp_path / "models" / "iris" / "1" / "model.onnx"
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    p, oh, lab = sess.run(None, {"input": np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)})
    assert lab.tolist() == [0] and oh.tolist() == [[1.0, 0.0, 0.0]]  # a textbook setosa
    for fname in ("training_curve.png", "confusion_matrix.png"):  # carried into the version for the server's model pages
        assert (model.parent / fname).read_bytes() == (run / fname).read_bytes()
    info = zoo("info", "iris", cwd=tmp_path).stdout
    assert "setosa, versicolor, virginica" in info and "passed=True" in info
    meta = json.loads(zoo("info", "iris", "--json", cwd=tmp_path).stdout)
    assert meta["version"] == 1 and meta["task"] == "multiclass"
    ev = zoo("evaluate", "iris", "--plot", "cm.png", cwd=tmp_path).stdout
    assert "accuracy" in ev and "virginica" in ev and (tmp_path / "cm.png").is_file()
    listing = zoo("list", cwd=tmp_path).stdout
    assert "fashion-mnist" in listing and "versions 1" in listing


def test_train_own_csv_and_evaluate_it(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = np.where(X[:, 0] + X[:, 1] > 0, "up", "down")
    lines = ["label,b,a,c"] + [f"{lab},{r[1]},{r[0]},{r[2]}" for lab, r in zip(y, X)]
    (tmp_path / "moves.csv").write_text("\n".join(lines) + "\n")
    zoo("train", "--data", "moves.csv", "--target", "label", "--epochs", "60", "-q", cwd=tmp_path)
    zoo("export", "moves", cwd=tmp_path)
    meta = json.loads((tmp_path / "models" / "moves" / "1" / "metadata.json").read_text())
    assert meta["class_names"] == ["down", "up"] and meta["feature_names"] == ["b", "a", "c"] and meta["task"] == "binary"
    # Without --data: the test split is rebuilt from what training recorded (the file, its target, the split).
    ev = zoo("evaluate", "moves", cwd=tmp_path)
    assert "moves test split" in ev.stdout and "60 rows" in ev.stdout and "warning" not in ev.stderr
    assert float(ev.stdout.split("accuracy ")[1].split()[0]) > 0.9
    # With --data holding the training rows: scored, but with a warning that the figure is optimistic.
    ev = zoo("evaluate", "moves", "--data", "moves.csv", "--target", "label", cwd=tmp_path)
    assert float(ev.stdout.split("accuracy ")[1].split()[0]) > 0.9
    assert "warning: 240 of the 300 rows of moves.csv were training rows of moves" in ev.stderr
    fresh = np.random.default_rng(1).normal(size=(50, 3))  # rows the model never saw: no warning
    labels = np.where(fresh[:, 0] + fresh[:, 1] > 0, "up", "down")
    (tmp_path / "fresh.csv").write_text("\n".join(["a,b,c,label"] + [f"{r[0]},{r[1]},{r[2]},{lab}" for lab, r in zip(labels, fresh)]) + "\n")
    ev = zoo("evaluate", "moves", "--data", "fresh.csv", "--target", "label", cwd=tmp_path)
    assert "50 rows" in ev.stdout and "training rows" not in ev.stderr


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,2\n", "no target column 'label'"),
    ("a,label\n1,x\nseven,y\n", "column 'a', line 3: 'seven' is not a number"),
])
def test_bad_csv_fails_cleanly_and_writes_nothing(tmp_path, content, message):
    (tmp_path / "bad.csv").write_text(content)
    p = zoo("train", "--data", "bad.csv", "--target", "label", cwd=tmp_path, check=False)
    assert p.returncode != 0 and message in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "runs").exists()


def test_export_without_a_run_and_unknown_recipe(tmp_path):
    p = zoo("export", "wine", cwd=tmp_path, check=False)
    assert p.returncode == 1 and "zoo train wine" in p.stderr
    p = zoo("train", "cifar", cwd=tmp_path, check=False)
    assert p.returncode == 1 and "known recipes" in p.stderr
    p = zoo("info", "nothing", cwd=tmp_path, check=False)
    assert p.returncode == 1 and "no model 'nothing'" in p.stderr


def test_bootstrap_fills_an_empty_repository_once(tmp_path):
    out = zoo("bootstrap", cwd=tmp_path).stdout
    for name in ("iris", "wine", "breast-cancer", "digits"):
        assert f"exported {name} v1" in out
        assert (tmp_path / "models" / name / "1" / "model.onnx").is_file()
    assert "already holds the default zoo" in zoo("bootstrap", cwd=tmp_path).stdout


def test_a_command_whose_extra_is_missing_says_which_to_install(tmp_path):
    # A serve-only install has no torch: `zoo train` must say so instead of failing with a traceback.
    import sys

    code = ("import sys\n"
            "class NoTorch:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'):\n"
            "            raise ImportError(\"No module named 'torch'\")\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "from zoo.cli import main\n"
            "main()\n")
    p = subprocess.run([sys.executable, "-c", code, "train", "iris"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    assert "torch" in p.stderr
