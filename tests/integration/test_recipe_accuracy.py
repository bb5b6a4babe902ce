"""Every recipe reaches its documented test accuracy at the default seed with its default settings."""

import pytest

from tests.conftest import in_ci
from zoo.data import builtin, get_recipe
from zoo.training.loop import TrainConfig, fit

TARGETS = {"iris": 0.93, "wine": 0.94, "breast-cancer": 0.95, "digits": 0.95, "mnist": 0.92, "fashion-mnist": 0.85, "xor": 0.98}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_recipe_accuracy(name):
    if name == "fashion-mnist" and not builtin.Path(builtin.FASHION_MNIST_DIR).is_dir() and not in_ci():
        pytest.skip("dataset-fashion-mnist not installed (CI installs it)")
    r = get_recipe(name)
    res = fit(r.load(), TrainConfig(**r.defaults))
    if name == "fashion-mnist":
        assert res.metrics["epochs_run"] == 5
    if name == "mnist":
        assert res.metrics["parameters"] == 79510
    assert res.metrics["test_accuracy"] >= TARGETS[name], res.metrics
