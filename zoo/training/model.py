"""The MLP classifier: input normalisation carried inside, hidden layers, a softmax or sigmoid head."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from zoo.core.contract import Task

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


@dataclass
class MLPSpec:
    """Everything needed to rebuild the network (saved as JSON beside the weights)."""

    num_features: int
    num_classes: int  # classes the user sees; a binary model has 2 and one output logit
    task: str = Task.MULTICLASS  # multiclass | binary | multilabel
    hidden: tuple[int, ...] = (100,)
    activation: str = "relu"
    dropout: float = 0.0
    mean: list[float] = field(default_factory=list)  # normalisation fitted on the training split
    std: list[float] = field(default_factory=list)

    @property
    def num_logits(self) -> int:
        """Width of the last layer: one logit for binary, one per class otherwise."""
        return 1 if self.task == Task.BINARY else self.num_classes

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MLPSpec:
        """Inverse of to_dict."""
        d = dict(d)
        d["hidden"] = tuple(d["hidden"])
        return cls(**d)


def fit_normalization(X: np.ndarray, kind: str = "feature") -> tuple[list[float], list[float]]:
    """Mean and std per feature ('feature'), one pair broadcast to all ('global'), or identity ('none')."""
    X = np.asarray(X)
    F = X.shape[1]
    if kind == "none":
        return [0.0] * F, [1.0] * F
    if kind not in ("global", "feature"):
        raise ValueError(f"unknown normalisation {kind!r}; expected feature, global or none")
    mean, var = column_mean_var(X)
    if kind == "global":  # every column has the same count, so the pooled figures follow from the columns'
        pooled = mean.mean()
        mean, var = np.full(F, pooled), np.full(F, (var + (mean - pooled) ** 2).mean())
    std = np.sqrt(var)
    std = np.where(std < 1e-8, 1.0, std)  # constant features: leave them centred, don't divide by ~0
    return mean.astype(np.float32).tolist(), std.astype(np.float32).tolist()


NORMALIZATION_BLOCK_ROWS = 4096


def column_mean_var(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and population variance in float64, two passes over blocks of rows.

    numpy's X.std() on float32 images makes float64 temporaries the size of X: for Fashion-MNIST's 60,000 rows
    two 376 MB arrays whose page faults took 1-3.5 s, more than the training itself. Blocks keep it at ~0.1 s.
    """
    n, blocks = len(X), range(0, len(X), NORMALIZATION_BLOCK_ROWS)
    total = np.zeros(X.shape[1])
    for start in blocks:
        total += X[start : start + NORMALIZATION_BLOCK_ROWS].sum(axis=0, dtype=np.float64)
    mean = total / n
    squares = np.zeros(X.shape[1])
    for start in blocks:
        d = X[start : start + NORMALIZATION_BLOCK_ROWS] - mean
        squares += np.einsum("ij,ij->j", d, d)
    return mean, squares / n


class MLP(nn.Module):
    """(x - mean) / std -> [Linear -> activation -> dropout] * k -> Linear (logits)."""

    def __init__(self, spec: MLPSpec):
        super().__init__()
        self.spec = spec
        if spec.task not in (Task.MULTICLASS, Task.BINARY, Task.MULTILABEL):
            raise ValueError(f"unknown task {spec.task!r}")
        if spec.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {spec.activation!r}; expected one of {', '.join(ACTIVATIONS)}")
        mean = spec.mean or [0.0] * spec.num_features
        std = spec.std or [1.0] * spec.num_features
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        layers: list[nn.Module] = []
        width = spec.num_features
        for h in spec.hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[spec.activation]()]
            if spec.dropout > 0:
                layers.append(nn.Dropout(spec.dropout))
            width = h
        layers.append(nn.Linear(width, spec.num_logits))
        self.layers = nn.Sequential(*layers)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw features -> the scale the layers were trained on."""
        mean, std = self.get_buffer("mean"), self.get_buffer("std")
        return (x - mean) / std

    def normalize_(self, x: torch.Tensor) -> torch.Tensor:
        """normalize() in place, bit for bit the same: no temporaries the size of the data set."""
        return x.sub_(self.get_buffer("mean")).div_(self.get_buffer("std"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for raw (un-normalised) features."""
        return self.layers(self.normalize(x))

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C] class probabilities; binary models give [1 - p, p]."""
        return logits_to_probabilities(self(x), self.spec.task)


def functional_forward(model: MLP):
    """The layers as one plain function of the same parameters: no nn.Module call overhead per layer.

    Training steps of small MLPs are bound by per-call overhead, so the loop uses this; it computes
    exactly what `model.layers` computes (a test checks) and respects dropout only in training mode.
    """
    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[model.spec.activation]
    linears = [m for m in model.layers if isinstance(m, nn.Linear)]
    hidden = [(m.weight, m.bias) for m in linears[:-1]]
    w_out, b_out = linears[-1].weight, linears[-1].bias
    p = model.spec.dropout
    linear, dropout = nn.functional.linear, nn.functional.dropout

    def forward(x: torch.Tensor) -> torch.Tensor:
        for w, b in hidden:
            x = act(linear(x, w, b))
            if p > 0:
                x = dropout(x, p, model.training)
        return linear(x, w_out, b_out)

    return forward


def logits_to_probabilities(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Softmax for multiclass, sigmoid for multilabel, [1 - p, p] for binary."""
    if task == Task.MULTICLASS:
        return torch.softmax(logits, dim=1)
    p = torch.sigmoid(logits)
    return torch.cat([1.0 - p, p], dim=1) if task == Task.BINARY else p


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (the lecture's 784-100-10 MLP has 79,510)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
