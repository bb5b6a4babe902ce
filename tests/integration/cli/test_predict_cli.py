"""`zoo predict` end to end: the installed console script against a real server on an ephemeral port."""

from __future__ import annotations

import csv
import json
import subprocess

import numpy as np
import pytest
from tests.conftest import zoo_executable
from tests.integration.server.server_helpers import ThreadServer, reference, rows_for, settings_for

from zoo.core import decision, repository


@pytest.fixture(scope="module")
def server(exported_repo):
    srv = ThreadServer(settings_for(exported_repo)).start()
    yield srv
    srv.stop()


def zoo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([zoo_executable(), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def iris_csv(exported_repo, tmp_path):
    """(path, rows in the model's feature order): a CSV whose columns are shuffled and hold a label column too."""
    card = repository.read_card(exported_repo, "iris", 2)
    x = rows_for(exported_repo, "iris", 12, seed=21)
    order = [2, 0, 3, 1]
    assert order != list(range(4))
    path = tmp_path / "rows.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["species", *(card.feature_names[j] for j in order)])
        for row in x:
            w.writerow(["unknown", *(repr(float(row[j])) for j in order)])
    return path, x


def test_table_from_csv_with_shuffled_columns(server, exported_repo, iris_csv):
    path, x = iris_csv
    out = zoo("predict", "iris", "--input", str(path), "--url", server.address)
    assert out.returncode == 0, out.stderr
    want = reference(exported_repo, "iris", 2, x)
    classes = repository.read_card(exported_repo, "iris", 2).class_names
    lines = out.stdout.strip().splitlines()
    assert lines[0].split() == ["row", "label", "probability"] and len(lines) == 1 + len(x)
    for i, line in enumerate(lines[1:]):
        row, label, prob = line.split()
        k = int(want["label"][i])
        assert (int(row), label) == (i, classes[k])
        assert float(prob) == pytest.approx(float(want["probabilities"][i, k]), abs=1e-4)


def test_csv_output(server, exported_repo, iris_csv, tmp_path):
    path, x = iris_csv
    dest = tmp_path / "out.csv"
    out = zoo("predict", "iris", "--input", str(path), "--url", server.address, "--output", str(dest))
    assert out.returncode == 0, out.stderr
    classes = repository.read_card(exported_repo, "iris", 2).class_names
    with open(dest, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["row", "label", *classes, "one_hot"] and len(rows) == len(x)
    want = reference(exported_repo, "iris", 2, x)
    probs = np.array([[float(r[c]) for c in classes] for r in rows])
    np.testing.assert_allclose(probs, want["probabilities"], rtol=1e-5, atol=1e-7)
    assert [int(r["row"]) for r in rows] == list(range(len(x)))
    assert [r["label"] for r in rows] == [classes[k] for k in want["label"]]
    assert [r["one_hot"] for r in rows] == ["|".join(c for c, v in zip(classes, oh) if v) for oh in want["one_hot"]]


def test_json_output_with_threshold_and_version_from_npy(server, exported_repo, tmp_path):
    x = rows_for(exported_repo, "iris", 20, seed=22, version=1)
    src, dest = tmp_path / "rows.npy", tmp_path / "out.json"
    np.save(src, x)
    t = 0.95
    out = zoo("predict", "iris", "--input", str(src), "--url", server.address, "--version", "1", "--threshold", str(t),
              "--output", str(dest))
    assert out.returncode == 0, out.stderr
    records = json.loads(dest.read_text())
    classes = repository.read_card(exported_repo, "iris", 1).class_names
    p = reference(exported_repo, "iris", 1, x)["probabilities"]
    labels, one_hot = decision.labels(p, "multiclass", t), decision.one_hot(p, "multiclass", t)
    assert -1 in labels.tolist()  # the threshold left some rows without a class
    assert len(records) == len(x)
    for i, r in enumerate(records):
        assert r["label"] == (classes[labels[i]] if labels[i] >= 0 else None)
        assert list(r["probabilities"]) == classes
        np.testing.assert_allclose(list(r["probabilities"].values()), p[i], atol=1e-6)
        assert r["one_hot"] == [c for c, v in zip(classes, one_hot[i]) if v]


def test_binary_model_from_npz_with_feature_names(server, exported_repo, tmp_path):
    card = repository.read_card(exported_repo, "breast-cancer", 1)
    x = rows_for(exported_repo, "breast-cancer", 15, seed=23)
    order = np.random.default_rng(0).permutation(card.num_features)
    src, dest = tmp_path / "rows.npz", tmp_path / "out.json"
    np.savez(src, X=x[:, order], feature_names=np.array([card.feature_names[j] for j in order]))
    out = zoo("predict", "breast-cancer", "--input", str(src), "--url", server.address, "--output", str(dest))
    assert out.returncode == 0, out.stderr
    want = reference(exported_repo, "breast-cancer", 1, x)
    assert [r["label"] for r in json.loads(dest.read_text())] == [card.class_names[k] for k in want["label"]]


def _one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


def test_server_not_running_exits_1_with_a_clear_message(iris_csv):
    path, _ = iris_csv
    msg = _one_line_error(zoo("predict", "iris", "--input", str(path), "--url", "127.0.0.1:1", "--timeout", "10"))
    assert "no zoo server answers at 127.0.0.1:1" in msg and "zoo serve" in msg
    assert "failed to connect" not in msg  # not gRPC's raw text


def test_unknown_model_missing_column_and_bad_files_exit_1(server, exported_repo, iris_csv, tmp_path):
    path, _ = iris_csv
    msg = _one_line_error(zoo("predict", "nope", "--input", str(path), "--url", server.address))
    assert "NOT_FOUND" in msg and "nope" in msg
    msg = _one_line_error(zoo("predict", "iris", "--input", str(tmp_path / "missing.csv"), "--url", server.address))
    assert "no such file" in msg
    card = repository.read_card(exported_repo, "iris", 2)
    partial = tmp_path / "partial.csv"
    partial.write_text(",".join(card.feature_names[:3]) + "\n1,2,3\n")
    msg = _one_line_error(zoo("predict", "iris", "--input", str(partial), "--url", server.address))
    assert card.feature_names[3] in msg
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(card.feature_names) + "\n1,2,x,4\n")
    assert "not a number" in _one_line_error(zoo("predict", "iris", "--input", str(bad), "--url", server.address))
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("1,2,3,4\n")
    assert "unsupported" in _one_line_error(zoo("predict", "iris", "--input", str(wrong), "--url", server.address))


def test_a_header_that_names_other_columns_is_refused_unless_by_position(server, exported_repo, tmp_path):
    card = repository.read_card(exported_repo, "iris", 2)
    x = rows_for(exported_repo, "iris", 5, seed=23)
    renamed = tmp_path / "renamed.csv"  # as many columns as the model has features, none named like them
    renamed.write_text("a,b,c,d\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in x) + "\n")
    out = zoo("predict", "iris", "--input", str(renamed), "--url", server.address)
    msg = _one_line_error(out)
    assert "missing " + ", ".join(card.feature_names) in msg and "unexpected a, b, c, d" in msg and "--by-position" in msg
    out = zoo("predict", "iris", "--input", str(renamed), "--url", server.address, "--by-position", "--output", str(tmp_path / "o.json"))
    assert out.returncode == 0, out.stderr
    want = reference(exported_repo, "iris", 2, x)
    classes = card.class_names
    assert [r["label"] for r in json.loads((tmp_path / "o.json").read_text())] == [classes[k] for k in want["label"]]
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in x) + "\n")
    out = zoo("predict", "iris", "--input", str(headerless), "--url", server.address)
    assert out.returncode == 0 and "read by position" in out.stderr and card.feature_names[0] in out.stderr
