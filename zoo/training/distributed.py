"""Data-parallel training under torchrun: the process group, this rank's share of each batch, DDP wrapping.

`torchrun --nproc_per_node N -m zoo train RECIPE` starts N processes; each takes every N-th row of each
global batch (so --batch-size keeps its meaning), DistributedDataParallel averages the gradients, and
rank 0 alone writes the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a torchrun job."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        """Rank 0 writes files and prints."""
        return self.rank == 0


def from_env(environ=os.environ) -> DistContext | None:
    """The torchrun job this process belongs to, or None when it runs alone."""
    world = int(environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return DistContext(int(environ["RANK"]), world, int(environ.get("LOCAL_RANK", "0")))


def device_for(ctx: DistContext, requested: torch.device) -> torch.device:
    """One GPU per local rank on CUDA; the CPU is shared."""
    if requested.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return requested


def init(ctx: DistContext, device: torch.device) -> None:
    """Join the process group (NCCL on CUDA, Gloo on the CPU) unless already joined."""
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ctx.rank, world_size=ctx.world_size)


def wrap(layers: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around the layers: it broadcasts rank 0's weights and all-reduces gradients."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(layers, device_ids=[device.index] if device.type == "cuda" else None)


def shard(batch: tuple[torch.Tensor, torch.Tensor], ctx: DistContext) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's rows of a global batch: every world_size-th row, starting at its rank."""
    xb, yb = batch
    return xb[ctx.rank :: ctx.world_size], yb[ctx.rank :: ctx.world_size]


def shutdown() -> None:
    """Leave the process group."""
    if dist.is_initialized():
        dist.destroy_process_group()
