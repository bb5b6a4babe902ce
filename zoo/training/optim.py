"""Lean optimizers over one flat parameter buffer: a handful of tensor ops per step whatever the depth.

Small MLP steps are dominated by fixed per-op and per-call overhead, not arithmetic. torch.optim pays a
Python loop and bookkeeping per parameter tensor per step; here every parameter and its gradient are
views into two flat buffers, so zeroing the gradients is one op and Adam is seven. The arithmetic is
torch.optim.Adam's / SGD's exactly (tests compare both, step by step).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FlatParameters:
    """Rebinds a model's parameters and gradients to views of two contiguous buffers."""

    def __init__(self, params):
        params = [p for p in params if p.requires_grad]
        total = sum(p.numel() for p in params)
        first = params[0]
        self.data = torch.empty(total, dtype=first.dtype, device=first.device)
        self.grad = torch.zeros(total, dtype=first.dtype, device=first.device)
        offset = 0
        for p in params:
            k = p.numel()
            self.data[offset : offset + k].copy_(p.detach().reshape(-1))
            p.data = self.data[offset : offset + k].view_as(p)
            # A defined .grad makes autograd accumulate in place, i.e. straight into the flat buffer.
            p.grad = self.grad[offset : offset + k].view_as(p)
            offset += k

    def zero_grad(self) -> None:
        """One op instead of one per tensor."""
        self.grad.zero_()


class FlatAdam:
    """Adam (L2 weight decay as torch.optim.Adam) on a FlatParameters buffer."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.flat = FlatParameters(params)
        self.lr, (self.b1, self.b2), self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.exp_avg = torch.zeros_like(self.flat.data)
        self.exp_avg_sq = torch.zeros_like(self.flat.data)
        self.steps = 0

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Zero the flat gradient (never None: autograd must keep writing into the buffer)."""
        self.flat.zero_grad()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update, the single-tensor formula of torch.optim.Adam."""
        self.steps += 1
        p, g = self.flat.data, self.flat.grad
        if self.weight_decay:
            g = g.add(p, alpha=self.weight_decay)
        self.exp_avg.lerp_(g, 1 - self.b1)
        self.exp_avg_sq.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
        bias1 = 1 - self.b1**self.steps
        bias2_sqrt = math.sqrt(1 - self.b2**self.steps)
        denom = (self.exp_avg_sq.sqrt() / bias2_sqrt).add_(self.eps)
        p.addcdiv_(self.exp_avg, denom, value=-self.lr / bias1)


class FlatSGD:
    """SGD with momentum (dampening 0, as torch.optim.SGD) on a FlatParameters buffer."""

    def __init__(self, params, lr=1e-2, momentum=0.9, weight_decay=0.0):
        self.flat = FlatParameters(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.buf: torch.Tensor | None = None

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Zero the flat gradient."""
        self.flat.zero_grad()

    @torch.no_grad()
    def step(self) -> None:
        """One SGD update."""
        p, g = self.flat.data, self.flat.grad
        if self.weight_decay:
            g = g.add(p, alpha=self.weight_decay)
        if self.momentum:
            if self.buf is None:
                self.buf = g.clone()
            else:
                self.buf.mul_(self.momentum).add_(g)
            g = self.buf
        p.add_(g, alpha=-self.lr)


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float = 0.0):
    """The optimizer called `name` (adam | sgd) over the model's parameters."""
    if name == "adam":
        return FlatAdam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return FlatSGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected adam or sgd")


def learning_rates(schedule: str, lr: float, total_steps: int):
    """Step -> learning rate for a schedule (None: constant, the optimizer's own lr).

    onecycle: a linear warm-up from lr/25 to lr over 30% of the steps, then cosine down to lr/25e4 (the shape and
    factors of torch's OneCycleLR, without its momentum cycling).
    """
    if schedule == "constant":
        return None
    if schedule != "onecycle":
        raise ValueError(f"unknown schedule {schedule!r}; expected constant or onecycle")
    total = max(1, total_steps)
    warm = max(1, int(0.3 * total))
    low, final = lr / 25, lr / 25e4

    def lr_at(step: int) -> float:
        if step < warm:
            return low + (lr - low) * step / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return final + (lr - final) * 0.5 * (1 + math.cos(math.pi * t))

    return lr_at
