"""Operating points on validation probabilities: each rule picks the threshold it states, and a split that cannot
support one is an error saying what to do."""

import numpy as np
import pytest

from zoo.training.operating_point import OperatingPointError, choose, scores


def _binary(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    s = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(scale=0.25, size=n), 0, 1).astype(np.float32)
    return np.stack([1 - s, s], 1), y


def test_binary_rules_pick_the_threshold_they_state():
    p, y = _binary()
    s = p[:, 1]
    grid = np.unique(s)
    prec = np.array([(y[s >= t] == 1).mean() for t in grid])
    rec = np.array([(s[y == 1] >= t).mean() for t in grid])
    f1 = 2 * prec * rec / (prec + rec)
    t, chosen_by, curve = choose(p, y, "binary", ["no", "yes"])
    assert t == pytest.approx(grid[np.argmax(f1)]) and chosen_by == "best F1"
    t, _, _ = choose(p, y, "binary", ["no", "yes"], target_precision=0.95)
    assert t == pytest.approx(grid[np.flatnonzero(prec >= 0.95)[0]])
    t, _, _ = choose(p, y, "binary", ["no", "yes"], target_recall=0.9)
    assert t == pytest.approx(grid[np.flatnonzero(rec >= 0.9)[-1]])
    assert scores(p, y, "binary", t, ["no", "yes"])["recall"] >= 0.9
    assert len(curve["threshold"]) <= 200 and set(curve) == {"threshold", "precision", "recall", "coverage"}


def test_multiclass_target_precision_abstains_below_the_threshold():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(600, 4)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    assert choose(p, y, "multiclass", list("abcd"))[0] == 0.0
    t, _, _ = choose(p, y, "multiclass", list("abcd"), target_precision=0.9)
    answered = p.max(1) >= t
    assert 0 < answered.mean() < 1 and (p.argmax(1)[answered] == y[answered]).mean() >= 0.9
    s = scores(p, y, "multiclass", t, list("abcd"))
    assert s["coverage"] == pytest.approx(answered.mean()) and s["precision"] >= 0.9


def test_unmeetable_targets_and_tiny_splits_say_what_to_do():
    p, y = _binary(40)
    with pytest.raises(OperatingPointError, match="--target-precision"):
        choose(p, y, "binary", ["no", "yes"], target_precision=1.01)
    few = np.zeros(40, dtype=int)
    few[:3] = 1
    with pytest.raises(OperatingPointError, match="--val-split"):
        choose(p, few, "binary", ["no", "yes"])
    with pytest.raises(OperatingPointError, match="binary and multilabel"):
        choose(p, y, "multiclass", ["no", "yes"], target_recall=0.9)
