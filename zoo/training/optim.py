"""Lean optimizers: torch's own fused Adam and SGD kernels, called without torch.optim's per-step bookkeeping.

Small MLP steps are dominated by fixed per-op and per-call overhead, not arithmetic. torch.optim.Adam(fused=True)
runs one kernel per step but spends ~130 µs of Python around it (state dicts, checks, grouping) on a ~300 µs
step; here the same kernels (`torch._fused_adam_`, `torch._fused_sgd_`, what torch.optim's fused=True calls) are
called directly. Gradients are set to None before each backward so autograd hands its gradient over instead of
adding it into a zeroed buffer. The arithmetic is torch.optim.Adam's / SGD's (tests compare both, step by step).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _FusedOptimizer:
    """The trainable parameters, and zero_grad as the fused kernels want it."""

    def __init__(self, params):
        self.params = [p for p in params if p.requires_grad]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients: the next backward then stores its own instead of adding into zeros."""
        for p in self.params:
            p.grad = None


class FusedAdam(_FusedOptimizer):
    """Adam (L2 weight decay as torch.optim.Adam), one fused kernel call per step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.lr, (self.b1, self.b2), self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        # The kernel reads one step count per tensor; they always agree, so one tensor stands for all.
        self.step_count = torch.zeros((), dtype=torch.float32, device=self.params[0].device)
        self.state_steps = [self.step_count] * len(self.params)

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update."""
        self.step_count.add_(1)
        torch._fused_adam_(
            self.params,
            [p.grad for p in self.params],
            self.exp_avg,
            self.exp_avg_sq,
            [],
            self.state_steps,
            lr=self.lr,
            beta1=self.b1,
            beta2=self.b2,
            weight_decay=self.weight_decay,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )


class FusedSGD(_FusedOptimizer):
    """SGD with momentum (dampening 0, as torch.optim.SGD), one fused kernel call per step."""

    def __init__(self, params, lr=1e-2, momentum=0.9, weight_decay=0.0):
        super().__init__(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.buf = [torch.empty_like(p) for p in self.params] if momentum else []
        self.first = True

    @torch.no_grad()
    def step(self) -> None:
        """One SGD update; the first step starts the momentum buffer from the gradient, as torch.optim.SGD."""
        torch._fused_sgd_(
            self.params,
            [p.grad for p in self.params],
            self.buf,
            weight_decay=self.weight_decay,
            momentum=self.momentum,
            lr=self.lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
            is_first_step=self.first,
        )
        self.first = False


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float = 0.0):
    """The optimizer called `name` (adam | sgd) over the model's parameters."""
    if name == "adam":
        return FusedAdam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return FusedSGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
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
