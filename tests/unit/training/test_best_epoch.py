"""The best epoch is that of the lowest validation loss with or without early stopping; a rising loss earns a hint."""

import numpy as np
import pytest

from zoo.data.dataset import from_arrays
from zoo.training.loop import TrainConfig, fit, rising_hint
from zoo.training.optim import learning_rates


def noise():
    """Labels that have nothing to do with the features: validation loss rises once the net memorises."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    return from_arrays("noise", X, rng.integers(0, 2, 300), [f"f{i}" for i in range(8)], ["a", "b"], "binary")


def test_best_epoch_without_early_stopping_is_the_lowest_validation_loss():
    res = fit(noise(), TrainConfig(hidden=(128,), epochs=40, batch_size=16, lr=1e-2, val_fraction=0.2))
    best = min(res.history, key=lambda h: h["val_loss"])["epoch"]
    assert res.metrics["epochs_run"] == 40 and res.metrics["best_epoch"] == best < 40
    hint = rising_hint(res.history, res.metrics["best_epoch"], patience=0)
    assert hint is not None and f"lowest at epoch {best} " in hint and "--patience" in hint
    assert rising_hint(res.history, res.metrics["best_epoch"], patience=3) is None  # early stopping is on: nothing to hint


def test_no_hint_while_validation_loss_keeps_improving():
    history = [{"epoch": e, "val_loss": 1.0 / e} for e in range(1, 21)]
    assert rising_hint(history, 20, 0) is None
    assert rising_hint(history[:16] + [{"epoch": e, "val_loss": 1.0} for e in range(17, 21)], 16, 0) is None  # 4 epochs: not yet
    assert rising_hint(history[:10] + [{"epoch": e, "val_loss": 1.0} for e in range(11, 21)], 10, 0) is not None


def test_early_stopping_keeps_the_best_epochs_weights_and_reports_its_accuracy():
    res = fit(noise(), TrainConfig(hidden=(128,), epochs=60, batch_size=16, lr=1e-2, val_fraction=0.2, patience=4))
    best = res.metrics["best_epoch"]
    assert res.metrics["epochs_run"] == best + 4
    assert res.metrics["val_accuracy"] == res.history[best - 1]["val_accuracy"]


def test_one_cycle_warms_up_then_anneals():
    lr_at = learning_rates("onecycle", 1e-2, 100)
    rates = [lr_at(s) for s in range(100)]
    peak = int(np.argmax(rates))
    assert rates[0] == pytest.approx(1e-2 / 25) and peak == 30 and rates[peak] == pytest.approx(1e-2)
    assert all(a <= b for a, b in zip(rates[:peak], rates[1 : peak + 1])) and all(a >= b for a, b in zip(rates[peak:], rates[peak + 1 :]))
    assert rates[-1] < 1e-4 and learning_rates("constant", 1e-3, 10) is None
