"""Every recipe reaches its documented test accuracy at the default seed with its default settings."""

import pytest

from tests.conftest import in_ci
from zoo.data import builtin, get_recipe
from zoo.training.loop import TrainConfig, fit

TARGETS = {"iris": 0.93, "wine": 0.94, "breast-cancer": 0.95, "digits": 0.95, "mnist": 0.92, "fashion-mnist": 0.90, "xor": 0.98}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(TARGETS) - {"fashion-mnist"}))  # fashion-mnist: trained once, below
def test_recipe_accuracy(name):
    if name == "fashion-mnist" and not builtin.Path(builtin.FASHION_MNIST_DIR).is_dir() and not in_ci():
        pytest.skip("dataset-fashion-mnist not installed (CI installs it)")
    r = get_recipe(name)
    res = fit(r.load(), TrainConfig(**r.defaults))
    if name == "mnist":
        assert res.metrics["parameters"] == 79510
    assert res.metrics["test_accuracy"] >= TARGETS[name], res.metrics


@pytest.mark.slow
def test_fashion_mnist_recipe_passes_the_export_gate(tmp_path):
    """The shipped Fashion-MNIST recipe (seed 0) reaches its target and exports behind the parity and batch-invariance gate."""
    if not builtin.Path(builtin.FASHION_MNIST_DIR).is_dir() and not in_ci():
        pytest.skip("dataset-fashion-mnist not installed (CI installs it)")
    from zoo.data import origin
    from zoo.training.checkpoint import load_run, save_run
    from zoo.training.export import export_run

    r = get_recipe("fashion-mnist")
    data = origin.load(origin.of_recipe("fashion-mnist"))
    res = fit(data, TrainConfig(**r.defaults))
    assert res.metrics["test_accuracy"] >= TARGETS["fashion-mnist"], res.metrics
    run = save_run(tmp_path / "runs", "fashion-mnist", res.model, data, TrainConfig(**r.defaults).to_dict(), res.metrics, res.history)
    exported = export_run(load_run(run), tmp_path / "models", name="fashion-mnist")  # raises if a gate fails
    assert exported.parity["rows"] > 0 and exported.parity["max_abs_diff_probabilities"] <= exported.parity["tolerance"]
