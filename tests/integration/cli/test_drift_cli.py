"""`zoo drift` on a payload log: the shifted feature stands out, and true labels give accuracy over time."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from tests.conftest import zoo_executable

from zoo.core import decision, repository
from zoo.core.onnx_session import open_session
from zoo.data import get_recipe
from zoo.server.payload_log import PayloadLog, PayloadRecord


def zoo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([zoo_executable(), *args], capture_output=True, text=True, timeout=120)


def _log(folder, repo, x: np.ndarray, rows_per_request: int = 3) -> np.ndarray:
    """Write what a server answering x with iris v1 would log; the labels it answered."""
    card = repository.read_card(repo, "iris", 1)
    session = open_session(str(repository.verify_model_file(repo, card)), threads=1, gpu=False).session
    p = session.run(["probabilities"], {"input": x.astype(np.float32)})[0]
    labels = decision.labels(p, card.task, card.default_threshold)
    plog = PayloadLog(folder)
    for start in range(0, len(x), rows_per_request):
        part = slice(start, start + rows_per_request)
        t = 1_764_000_000_000_000_000 + start * 1_000_000_000
        plog.put(PayloadRecord("iris", 1, f"r{start}", t, x[part], None, {"probabilities": p[part], "label": labels[part]}, 1.0))
    plog.close()
    return labels


def test_a_shifted_feature_stands_out_and_labels_give_accuracy_over_time(exported_repo, tmp_path):
    data = get_recipe("iris").load()
    # the training rows themselves (so the unshifted features match their reference exactly: a few dozen
    # fresh rows would move a ten-bin PSI by sampling noise alone), one feature shifted
    x = data.X_train.astype(np.float64).copy()
    x[:, 2] += 3.0  # petal length moves far outside what training saw
    answered = _log(tmp_path / "log", exported_repo, x)
    truth = tmp_path / "truth.csv"
    truth.write_text("species\n" + "\n".join(data.class_names[int(c)] for c in data.y_train) + "\n")
    out = zoo("drift", "iris", "--log", str(tmp_path / "log"), "--repository", str(exported_repo), "--labels", str(truth),
              "--target", "species", "--plot", str(tmp_path / "drift.png"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"iris v1: {len(x)} rows in {len(range(0, len(x), 3))} requests")
    table = [line.split() for line in lines[2:6]]
    assert table[0][0] == "petal_length_cm" and table[0][-1] == "shifted" and float(table[0][1]) > 1.0
    assert all(float(row[1]) < 0.01 for row in table[1:])  # the others have not moved
    accuracy = np.mean(answered == data.y_train)
    buckets = [line for line in lines if line.strip().startswith("from ")]
    assert len(buckets) == 10 and f"accuracy over time ({len(x)} labelled rows)" in out.stdout
    assert _overall(buckets) == pytest.approx(100 * accuracy, abs=0.06)
    assert (tmp_path / "drift.png").read_bytes()[:4] == b"\x89PNG"


def test_labels_join_on_the_request_id(exported_repo, tmp_path):
    data = get_recipe("iris").load()
    x = data.X_test[:6].astype(np.float64)
    answered = _log(tmp_path / "log", exported_repo, x, rows_per_request=2)
    # the label file lists requests out of order: the id puts each back in place
    rows = [(f"r{start}", int(data.y_test[start + k])) for start in (4, 0, 2) for k in range(2)]
    truth = tmp_path / "truth.csv"
    truth.write_text("id,label\n" + "\n".join(f"{rid},{c}" for rid, c in rows) + "\n")
    out = zoo("drift", "iris", "--log", str(tmp_path / "log"), "--repository", str(exported_repo), "--labels", str(truth), "--target", "label")
    assert out.returncode == 0, out.stderr
    expected = 100 * np.mean(answered == data.y_test[:6])
    assert _overall([line for line in out.stdout.splitlines() if line.strip().startswith("from ")]) == pytest.approx(expected, abs=0.06)


def _overall(buckets: list[str]) -> float:
    """The accuracy of all rows from the printed buckets ("from TIME  ACC%  (N rows)"), weighted by their rows."""
    acc = np.array([float(b.split()[2].rstrip("%")) for b in buckets])
    rows = np.array([int(b.split("(")[1].split()[0]) for b in buckets])
    return float((acc * rows).sum() / rows.sum())


def test_a_log_without_the_model_or_files_says_what_to_do(exported_repo, tmp_path):
    (tmp_path / "empty").mkdir()
    out = zoo("drift", "iris", "--log", str(tmp_path / "empty"), "--repository", str(exported_repo))
    assert out.returncode == 1 and "no payload log files" in out.stderr and "--payload-log" in out.stderr
