"""Normalisation statistics: the blockwise mean and std equal numpy's on a float64 copy, constant columns stay put."""

import numpy as np
import pytest
import torch

from zoo.training.model import NORMALIZATION_BLOCK_ROWS, MLP, MLPSpec, fit_normalization


def rows():
    """More rows than one block (the sums cross block boundaries), columns on different scales, one constant."""
    rng = np.random.default_rng(0)
    X = rng.normal([0.0, 3.0, -50.0, 1e3], [1.0, 0.5, 20.0, 1e2], (2 * NORMALIZATION_BLOCK_ROWS + 17, 4))
    X[:, 0] = 7.0
    return X.astype(np.float32)


@pytest.mark.parametrize("kind", ["feature", "global"])
def test_blockwise_statistics_equal_numpy_float64(kind):
    X = rows()
    mean, std = fit_normalization(X, kind)
    X64 = X.astype(np.float64)
    if kind == "feature":
        want_mean, want_std = X64.mean(axis=0), X64.std(axis=0)
        want_std[0] = 1.0  # the constant column is centred, not divided by ~0
    else:
        want_mean, want_std = np.full(4, X64.mean()), np.full(4, X64.std())
    np.testing.assert_allclose(mean, want_mean.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(std, want_std.astype(np.float32), rtol=1e-6)


def test_in_place_normalisation_is_the_same_numbers():
    X = rows()
    mean, std = fit_normalization(X, "feature")
    model = MLP(MLPSpec(4, 3, "multiclass", (5,), "relu", 0.0, mean, std))
    expected = model.normalize(torch.from_numpy(X))
    assert torch.equal(model.normalize_(torch.from_numpy(X.copy())), expected)
