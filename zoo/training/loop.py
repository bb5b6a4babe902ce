"""The training loop: `fit(dataset, config)` trains an MLP with autograd and returns it with its history."""

from __future__ import annotations

import copy
import itertools
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler
from torch.utils.data import Dataset as TorchDataset

from zoo.data.dataset import Dataset, stratified_split
from zoo.training import distributed
from zoo.training.augment import make_augment
from zoo.training.model import MLP, MLPSpec, count_parameters, fit_normalization, functional_forward
from zoo.training.optim import learning_rates, make_optimizer


@dataclass
class TrainConfig:
    """Hyperparameters of one training run; the defaults are overridden by a recipe, then by flags."""

    hidden: tuple[int, ...] = (100,)  # hidden layer widths
    activation: str = "relu"  # relu | tanh | sigmoid
    dropout: float = 0.0
    optimizer: str = "adam"  # adam | sgd (momentum 0.9)
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 20
    weight_decay: float = 0.0
    seed: int = 0  # same seed, same data, same device -> bit-identical weights on CPU
    val_fraction: float = 0.1  # held out of the training split for curves and early stopping
    patience: int = 0  # early stopping: epochs without a better validation loss (0 = off)
    schedule: str = "constant"  # constant | onecycle (warm up to lr over 30% of the steps, then cosine down)
    augment: str = "none"  # none | flip (a random half of each batch of square images mirrored)
    normalize: str = "feature"  # feature | global | none
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # CPU threads; 0 = auto: 1 for small steps (overhead-bound), all cores for big ones

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


TRAIN_ACCURACY_ROWS = 2048  # training rows scored after each epoch for the curve and the progress bar
RISING_EPOCHS = 5  # validation loss without a new best for this many epochs (and a quarter of the run): hint at --patience


@dataclass
class TrainResult:
    """A trained model with the numbers that describe the run."""

    model: MLP
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)


class InMemoryRows(TorchDataset):
    """A torch Dataset indexed by a whole batch of row indices at once: no per-sample Python."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor):
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, idx: torch.Tensor):
        return self.X[idx], self.y[idx]


class ShuffledBatches(Sampler):
    """Yields index tensors of one batch each, from a seeded permutation per epoch."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device):
        self.n, self.batch_size, self.generator, self.device = n, batch_size, generator, device

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        perm = torch.randperm(self.n, generator=self.generator).to(self.device)
        return iter(perm.split(self.batch_size))


def _keep(batch):
    """Collate that keeps the (X, y) batch as it is: the dataset already batched it."""
    return batch


def make_loader(X: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator) -> DataLoader:
    """A DataLoader over in-memory tensors that gathers each batch with one indexing op."""
    sampler = ShuffledBatches(len(X), batch_size, generator, X.device)
    return DataLoader(InMemoryRows(X, y), sampler=sampler, batch_size=None, collate_fn=_keep)


class InMemoryBatches:
    """What make_loader's DataLoader yields, without its per-batch bookkeeping (a profiler range, worker
    and pin-memory checks): ~30 µs of a ~450 µs step on small models. Same Dataset, same Sampler."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator):
        self.dataset = InMemoryRows(X, y)
        self.sampler = ShuffledBatches(len(X), batch_size, generator, X.device)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        dataset = self.dataset
        return (dataset[idx] for idx in self.sampler)


def auto_threads(spec: MLPSpec, batch_size: int) -> int:
    """CPU threads for a training step: 1 while per-op overhead dominates, every core once the matmuls are big."""
    widths = [spec.num_features, *spec.hidden, spec.num_logits]
    flops = 6 * batch_size * sum(a * b for a, b in itertools.pairwise(widths))  # forward + backward
    # Measured here (2 cores): digits 64-100-10 @32 (1.4 MFLOP/step) runs faster on 1 thread,
    # mnist 784-100-10 @64 (30 MFLOP/step) 20% faster on 2.
    return 1 if flops < 8e6 else len(os.sched_getaffinity(0))


def resolve_device(name: str) -> torch.device:
    """'auto' means CUDA when present; asking for CUDA without one is an error, not a silent fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA device")
    return torch.device(name)


def loss_function(task: str):
    """Cross-entropy for multiclass, binary cross-entropy on logits otherwise."""
    if task == "multiclass":
        return nn.functional.cross_entropy
    bce = nn.functional.binary_cross_entropy_with_logits
    if task == "binary":
        return lambda logits, y: bce(logits[:, 0], y)
    return bce


def _targets(y: np.ndarray, task: str, device) -> torch.Tensor:
    return torch.as_tensor(y, dtype=torch.int64 if task == "multiclass" else torch.float32, device=device)


@torch.no_grad()
def evaluate_logits(model: MLP, X: torch.Tensor, y: torch.Tensor, loss_fn, normalized=False) -> tuple[float, float]:
    """(loss, accuracy) on full tensors (raw features, or already normalised); multilabel: exact match."""
    was_training = model.training
    model.eval()
    logits = model.layers(X) if normalized else model(X)
    loss = float(loss_fn(logits, y))
    task = model.spec.task
    if task == "multiclass":
        correct = (logits.argmax(1) == y).float()
    elif task == "binary":
        correct = ((logits[:, 0] >= 0).float() == y).float()
    else:
        correct = ((logits >= 0).float() == y).all(1).float()
    model.train(was_training)
    return loss, float(correct.mean()) if len(correct) else float("nan")


def fit(data: Dataset, cfg: TrainConfig, *, on_epoch=None, deadline: float | None = None) -> TrainResult:
    """Train an MLP on `data` as `cfg` says; returns the model (best validation loss when early stopping).

    `deadline` (a time.monotonic() value) cuts the run at the first batch past it: that epoch is scored as it
    stands and is the last (metrics["cut"]).
    """
    device = resolve_device(cfg.device)
    ctx = distributed.from_env()
    if ctx is not None:
        device = distributed.device_for(ctx, device)
        distributed.init(ctx, device)
    torch.manual_seed(cfg.seed)
    # Validation rows come out of the training split only; the test split is never seen here.
    X_all, y_all = data.X_train, data.y_train
    if cfg.val_fraction > 0 and len(X_all) >= 10:
        tr, va = stratified_split(y_all, cfg.val_fraction, cfg.seed)
    else:
        tr, va = np.arange(len(X_all)), np.arange(0)
    X_rows = np.ascontiguousarray(X_all[tr], dtype=np.float32)  # a fresh copy of the training rows, made once
    mean, std = fit_normalization(X_rows, cfg.normalize)
    spec = MLPSpec(data.num_features, data.num_classes, data.task, tuple(cfg.hidden), cfg.activation, cfg.dropout, mean, std)
    model = MLP(spec).to(device)
    threads = cfg.threads or auto_threads(spec, cfg.batch_size)
    if device.type == "cpu":
        torch.set_num_threads(threads)
    # Normalise the training rows once; the loop then runs the layers alone (two ops fewer per step). X_rows is
    # our own copy, so it is normalised in place: temporaries the size of Fashion-MNIST cost ~0.7 s each in page
    # faults here.
    Xtr = model.normalize_(torch.from_numpy(X_rows).to(device))
    ytr = _targets(y_all[tr], data.task, device)
    Xva = model.normalize_(torch.as_tensor(X_all[va], dtype=torch.float32, device=device))
    yva = _targets(y_all[va], data.task, device)
    loss_fn = loss_function(data.task)
    opt = make_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay)
    loader = InMemoryBatches(Xtr, ytr, cfg.batch_size, torch.Generator().manual_seed(cfg.seed))
    augment = make_augment(cfg.augment, data.num_features, cfg.normalize, torch.Generator().manual_seed(cfg.seed + 1))
    lr_at = learning_rates(cfg.schedule, cfg.lr, cfg.epochs * len(loader))
    net = functional_forward(model)
    if ctx is not None:
        net = distributed.wrap(model.layers, device)  # DDP hooks all-reduce each step's gradients

    history: list[dict] = []
    best_loss, best_state, best_epoch, stale = float("inf"), None, 0, 0
    t0 = time.perf_counter()
    model.train()
    # Training accuracy per epoch on a fixed sample of rows: a full forward pass over every training row
    # each epoch cost ~20% of mnist's training time (bench/train_bench.py).
    probe = slice(0, min(len(Xtr), TRAIN_ACCURACY_ROWS))
    loss_sum = torch.zeros((), device=device)
    step, cut = 0, False
    for epoch in range(1, cfg.epochs + 1):
        loss_sum.zero_()
        batches = 0
        for batch in loader:
            if deadline is not None and time.monotonic() > deadline:
                cut = True
                break
            if lr_at is not None:
                opt.lr = lr_at(step)
                step += 1
            xb, yb = batch if ctx is None else distributed.shard(batch, ctx)
            if augment is not None:
                xb = augment(xb)
            loss = loss_fn(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum.add_(loss.detach())  # one op; read once per epoch, so no sync per step on CUDA
            batches += 1
        row = {"epoch": epoch, "train_loss": float(loss_sum) / max(1, batches)}  # mean of the epoch's batch losses
        row["train_accuracy"] = evaluate_logits(model, Xtr[probe], ytr[probe], loss_fn, normalized=True)[1]
        if len(va):
            row["val_loss"], row["val_accuracy"] = evaluate_logits(model, Xva, yva, loss_fn, normalized=True)
        history.append(row)
        if len(va):  # the best epoch is that of the lowest validation loss, early stopping or not
            if row["val_loss"] < best_loss - 1e-7:
                best_loss, best_epoch, stale = row["val_loss"], epoch, 0
                if cfg.patience:
                    best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
        if on_epoch:
            on_epoch(row)
        if cut or (cfg.patience and stale >= cfg.patience):
            break
    seconds = time.perf_counter() - t0
    # Hand back a plain CPU model with parameters of its own (the best epoch's under early stopping).
    state = best_state if best_state is not None else model.state_dict()
    model = MLP(spec)
    model.load_state_dict({k: v.detach().cpu().clone() for k, v in state.items()})
    model.eval()
    tested = score_test(model, data) if len(data.X_test) else {"test_accuracy": None, "test_loss": None}
    # The training rows are already normalised: score them as they are (the same numbers as from raw rows).
    train_acc = evaluate_logits(model, Xtr.cpu(), ytr.cpu(), loss_fn, normalized=True)[1]
    metrics = {
        **tested,
        "train_accuracy": train_acc,  # the whole training split, once, at the end
        # of the model handed back: the best epoch's under early stopping, else the last's
        "val_accuracy": history[(best_epoch if best_state is not None else len(history)) - 1].get("val_accuracy"),
        "epochs_run": len(history),
        "best_epoch": best_epoch or len(history),
        "train_seconds": seconds,
        "parameters": count_parameters(model),
        "device": str(device),
        "threads": threads if device.type == "cpu" else None,
        "world_size": ctx.world_size if ctx is not None else 1,
        **({"cut": True} if cut else {}),
    }
    return TrainResult(model, history, metrics)


def score_test(model: MLP, data: Dataset) -> dict:
    """Test accuracy and loss of a trained (CPU) model on the dataset's test split."""
    Xte = torch.as_tensor(data.X_test, dtype=torch.float32)
    loss, acc = evaluate_logits(model, Xte, _targets(data.y_test, data.task, "cpu"), loss_function(data.task))
    return {"test_accuracy": acc, "test_loss": loss}


def rising_hint(history: list[dict], best_epoch: int, patience: int) -> str | None:
    """A hint when validation loss has not improved on its best for a while and nothing stopped the run."""
    if patience or not best_epoch or "val_loss" not in history[-1]:
        return None
    since = len(history) - best_epoch
    if since < max(RISING_EPOCHS, len(history) // 4):
        return None
    return (
        f"validation loss was lowest at epoch {best_epoch} and has not improved in the {since} epochs since "
        f"(overfitting?): --patience {RISING_EPOCHS} stops early and keeps the best epoch"
    )
