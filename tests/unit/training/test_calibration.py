"""Temperature scaling: fitted on validation rows, it keeps or improves calibration and never changes a decision's order."""

import numpy as np
import pytest
import torch

from zoo.data import get_recipe
from zoo.training.calibration import calibrate_run, fit_temperature, logits_to_probabilities, run_logits
from zoo.training.checkpoint import load_run, save_run
from zoo.training.loop import TrainConfig, fit


def test_fit_temperature_recovers_a_known_overconfidence():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(4000, 5))
    p = torch.softmax(torch.as_tensor(logits), 1).numpy()
    y = np.array([rng.choice(5, p=row) for row in p])  # labels drawn from the logits' own probabilities: T = 1
    assert fit_temperature(logits * 3.0, y, "multiclass") == pytest.approx(3.0, rel=0.1)
    yb = (rng.random(4000) < 1 / (1 + np.exp(-logits[:, 0]))).astype(int)
    assert fit_temperature(logits[:, :1] * 0.5, yb, "binary") == pytest.approx(0.5, rel=0.1)


@pytest.mark.parametrize("name", ["iris", "wine", "breast-cancer", "digits"])
def test_calibration_keeps_or_improves_the_recipes_and_never_changes_an_argmax(tmp_path, name):
    r = get_recipe(name)
    data = r.load()
    cfg = TrainConfig(**r.defaults)
    res = fit(data, cfg)
    run = load_run(save_run(tmp_path, name, res.model, data, cfg.to_dict(), res.metrics, res.history))
    temperature, rec = calibrate_run(run, "temperature")
    assert rec["method"] == "temperature" and rec["temperature"] == temperature > 0
    # The test splits are small (30 to 360 rows, 15 bins): "keeps" allows the noise of a few rows.
    assert rec["test_ece_after"] <= rec["test_ece_before"] + 0.03, rec
    assert rec["test_nll_after"] <= rec["test_nll_before"] + 0.01, rec
    X = np.concatenate([run.holdout()[0], data.X_train])
    z = run_logits(run, X)
    before, after = logits_to_probabilities(z, data.task), logits_to_probabilities(z, data.task, temperature)
    assert np.array_equal(before.argmax(1), after.argmax(1))
    if data.task == "binary":  # a sigmoid keeps 0.5 where it was
        assert np.array_equal(before[:, 1] >= 0.5, after[:, 1] >= 0.5)


def test_the_run_keeps_the_validation_rows_training_held_out(tmp_path):
    r = get_recipe("digits")  # a model short of perfect on hundreds of rows: another split would score otherwise
    data = r.load()
    cfg = TrainConfig(**{**r.defaults, "epochs": 2, "seed": 3, "val_fraction": 0.2})
    res = fit(data, cfg)
    run = load_run(save_run(tmp_path, "digits", res.model, data, cfg.to_dict(), res.metrics, res.history))
    X_val, y_val = run.validation()
    assert abs(len(X_val) - 0.2 * len(data.X_train)) <= 10
    # the model is the best epoch's, and training scored that epoch's validation accuracy on exactly these rows
    assert float((run_logits(run, X_val).argmax(1) == y_val).mean()) == pytest.approx(res.metrics["val_accuracy"], abs=1e-6)
    train_rows = {row.tobytes() for row in data.X_train}
    assert all(row.tobytes() in train_rows for row in X_val)  # never a test row


def test_a_run_without_validation_rows_exports_uncalibrated_saying_why_and_cannot_choose_a_threshold(tmp_path):
    from zoo.training.export import export_run
    from zoo.training.operating_point import OperatingPointError

    r = get_recipe("iris")
    data = r.load()
    cfg = TrainConfig(**{**r.defaults, "epochs": 5, "val_fraction": 0.0})  # --val-split 0
    res = fit(data, cfg)
    run = load_run(save_run(tmp_path / "runs", "iris", res.model, data, cfg.to_dict(), res.metrics, res.history))
    assert len(run.validation()[0]) == 0
    result = export_run(run, tmp_path / "models", name="iris")
    cal = result.metadata["calibration"]
    assert cal["method"] == "none" and cal["temperature"] == 1.0 and "retrain" in cal["reason"]
    with pytest.raises(OperatingPointError, match="--val-split"):
        export_run(run, tmp_path / "models", name="iris", threshold="auto")
