"""Training: seeded runs are bit-identical on CPU, the lecture's MLP has 79,510 parameters, early stopping stops."""

import numpy as np
import pytest
import torch

from zoo.data import get_recipe
from zoo.data.dataset import from_arrays
from zoo.training.model import MLP, MLPSpec, count_parameters
from zoo.training.loop import TrainConfig, fit


def small_cfg(**kw):
    return TrainConfig(**{**dict(hidden=(16,), epochs=5, batch_size=16, lr=1e-2), **kw})


def test_seeded_training_is_bit_reproducible():
    data = get_recipe("wine").load()
    a, b = fit(data, small_cfg(seed=7)), fit(data, small_cfg(seed=7))
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert a.history == b.history
    c = fit(data, small_cfg(seed=8))
    assert not torch.equal(c.model.layers[0].weight, a.model.layers[0].weight)


def test_lecture_mlp_has_79510_parameters():
    assert count_parameters(MLP(MLPSpec(784, 10, hidden=(100,)))) == 79510


def test_training_learns_and_reports():
    data = get_recipe("iris").load()
    res = fit(data, small_cfg(epochs=30))
    assert res.metrics["test_accuracy"] >= 0.8
    assert res.metrics["epochs_run"] == 30 and len(res.history) == 30
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert res.model.training is False


def test_early_stopping_stops_and_keeps_the_best_epoch():
    data = get_recipe("wine").load()
    res = fit(data, small_cfg(epochs=200, lr=5e-2, patience=3))
    assert res.metrics["epochs_run"] < 200
    best = min(res.history, key=lambda h: h["val_loss"])
    assert res.metrics["best_epoch"] == best["epoch"]


def test_model_takes_raw_features():
    """Normalisation lives inside the model: raw rows in, the same answer as normalising by hand."""
    data = get_recipe("wine").load()
    m = fit(data, small_cfg()).model
    X = torch.as_tensor(data.X_test)
    manual = m.layers((X - torch.tensor(m.spec.mean)) / torch.tensor(m.spec.std))
    torch.testing.assert_close(m(X), manual)


@pytest.mark.parametrize("task, y", [
    ("binary", np.array([0, 1] * 50)),
    ("multilabel", np.stack([np.arange(100) % 2, (np.arange(100) // 2) % 2], 1)),
])
def test_sigmoid_heads(task, y):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3)).astype(np.float32) + (y.reshape(100, -1)[:, :1] * 2)
    classes = ["a", "b"]
    data = from_arrays("t", X, y, ["u", "v", "w"], classes, task)
    res = fit(data, small_cfg(epochs=3))
    p = res.model.probabilities(torch.as_tensor(data.X_test)).detach()
    assert p.shape == (len(data.X_test), 2)
    if task == "binary":
        assert res.model.layers[-1].out_features == 1
        torch.testing.assert_close(p.sum(1), torch.ones(len(p)))


def test_asking_for_cuda_without_one_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        fit(get_recipe("iris").load(), small_cfg(device="cuda"))


@pytest.mark.parametrize("activation, dropout", [("relu", 0.0), ("tanh", 0.0), ("sigmoid", 0.3)])
def test_functional_forward_equals_the_layers(activation, dropout):
    from zoo.training.model import functional_forward

    torch.manual_seed(0)
    m = MLP(MLPSpec(6, 4, hidden=(9, 5), activation=activation, dropout=dropout)).eval()
    x = torch.randn(11, 6)
    torch.testing.assert_close(functional_forward(m)(x), m.layers(x), rtol=0, atol=0)
    if dropout:
        m.train()
        torch.manual_seed(1)
        a = functional_forward(m)(x)
        torch.manual_seed(1)
        torch.testing.assert_close(a, m.layers(x), rtol=0, atol=0)


def test_auto_threads_follow_step_size():
    import os

    from zoo.training.loop import auto_threads

    assert auto_threads(MLPSpec(64, 10, hidden=(100,)), 32) == 1
    assert auto_threads(MLPSpec(784, 10, hidden=(100,)), 64) == len(os.sched_getaffinity(0))


def test_in_memory_batches_cover_every_row_once_per_epoch():
    from zoo.training.loop import InMemoryBatches

    X = torch.arange(50, dtype=torch.float32).reshape(25, 2)
    y = torch.arange(25)
    loader = InMemoryBatches(X, y, 8, torch.Generator().manual_seed(0))
    assert len(loader) == 4
    for _ in range(2):
        batches = list(loader)
        assert [len(b[1]) for b in batches] == [8, 8, 8, 1]
        seen = torch.cat([b[1] for b in batches])
        assert sorted(seen.tolist()) == list(range(25))
        assert all(torch.equal(xb[:, 0], yb.float() * 2) for xb, yb in batches)  # rows stay whole


def test_dataloader_and_lean_iteration_yield_the_same_batches():
    """The training loop skips DataLoader's bookkeeping; a DataLoader over the same Dataset and Sampler agrees."""
    from zoo.training.loop import InMemoryBatches, make_loader

    X = torch.randn(37, 3)
    y = torch.arange(37)
    lean = list(InMemoryBatches(X, y, 8, torch.Generator().manual_seed(5)))
    loader = list(make_loader(X, y, 8, torch.Generator().manual_seed(5)))
    assert len(lean) == len(loader) == 5
    for (xa, ya), (xb, yb) in zip(lean, loader):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
