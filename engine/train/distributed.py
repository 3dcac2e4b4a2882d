"""Training on several processes with PyTorch's own distributed engine (torch.distributed, started by torchrun).

Why explicit all-reduce and not DistributedDataParallel: DDP wraps an nn.Module whose parameters keep
their shapes, registers its gradient hooks once and buckets them by size. The Gaussians are a dict of
parameters that densification replaces by longer or shorter ones every few hundred steps, and the
densification statistics are not gradients at all. So a step sums, in ONE flat all_reduce, every
optimizer parameter's gradient, the step's densification-statistic increments and its loss sums; every
rank then holds the same numbers, takes the same Adam step and the same densify/prune decisions (the
random draws come from the trainer's generator, seeded alike on every rank), and its tensors keep the
same shapes as every other rank's. This is what DDP does for fixed modules (broadcast rank 0's state
once, then trust identical optimizer steps); `check_in_sync` verifies it at each densification.

One seed scheme: config.seed seeds the trainer's generator on every rank; it draws the step's frames
(the same list everywhere), initial positions and split offsets. Rank r renders frames r, r+W, r+2W...
of the step's frames_per_step, so a step is the same work whatever W is, and a checkpoint resumes the
same curve on any number of ranks. Rank 0 alone writes files (engine.train.run).

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT; the process
group joins through env:// with gloo on the CPU and NCCL on CUDA (device cuda:LOCAL_RANK).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the training processes (SINGLE: alone)."""

    rank: int = 0  # global rank, 0 .. world - 1
    world: int = 1  # number of processes in the run
    local_rank: int = 0  # rank on this machine (picks the GPU)
    local_world: int = 1  # processes on this machine (share its CPU cores)

    @property
    def main(self) -> bool:
        """Rank 0: the one that evaluates and writes checkpoints, metrics and the avatar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def share(self, items: Sequence[T]) -> list[T]:
        """This rank's share of a step's items: items[rank], items[rank + world], ..."""
        return list(items[self.rank :: self.world])

    def sum_(self, flat: Tensor) -> None:
        """Sum `flat` over ranks, in place (nothing alone)."""
        if self.distributed:
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)

    def any(self, flag: bool, device: torch.device | str = "cpu") -> bool:
        """True on every rank when `flag` is True on any rank (a stop every rank takes at the same step)."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def broadcast_(self, tensors: Sequence[Tensor]) -> None:
        """Overwrite every rank's tensors with rank 0's, in place."""
        if self.distributed:
            for t in tensors:
                dist.broadcast(t.data, src=0)

    def broadcast_object(self, obj: T) -> T:
        """Rank 0's picklable object on every rank (a checkpoint state dict, for instance)."""
        if not self.distributed:
            return obj
        box: list[Any] = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]


SINGLE = Ranks()


@dataclass(frozen=True)
class RankStep:
    """What one process did of a training step (the step's loss itself is the same on every rank)."""

    rank: int  # global rank
    frames: int  # frames it rendered
    loss: float  # their mean loss (nan when it rendered none)
    compute_s: float  # seconds rendering and backpropagating them
    sync_s: float  # seconds in the step's all_reduce (waiting for slower ranks included)


def from_env(environ: Mapping[str, str] = os.environ) -> Ranks | None:
    """The Ranks torchrun describes in the environment, None when it does not (no WORLD_SIZE)."""
    if "WORLD_SIZE" not in environ:
        return None
    try:
        world = int(environ["WORLD_SIZE"])
        rank = int(environ.get("RANK", "0"))
        local_rank = int(environ.get("LOCAL_RANK", "0"))
        local_world = int(environ.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError as exc:
        raise ValueError(f"torchrun's environment is not readable ({exc}): RANK, WORLD_SIZE, LOCAL_RANK") from None
    if not (world >= 1 and 0 <= rank < world and 0 <= local_rank < local_world):
        raise ValueError(f"inconsistent torchrun environment: RANK={rank} WORLD_SIZE={world} "
                         f"LOCAL_RANK={local_rank} LOCAL_WORLD_SIZE={local_world}")
    return Ranks(rank, world, local_rank, local_world)


def rank_device(device: str, ranks: Ranks) -> str:
    """The device this rank trains on: the CPU stays the CPU; any CUDA device means cuda:LOCAL_RANK
    when several processes run (one GPU each, as torchrun expects)."""
    if ranks.distributed and torch.device(device).type == "cuda":
        return f"cuda:{ranks.local_rank}"
    return device


def share_cores(ranks: Ranks) -> int:
    """Split this machine's cores between its ranks (torch and numba threads); returns threads per rank."""
    threads = max(1, (os.cpu_count() or 1) // max(1, ranks.local_world))
    if ranks.local_world > 1:
        torch.set_num_threads(min(torch.get_num_threads(), threads))
        if "numba" in sys.modules:
            import numba

            numba.set_num_threads(min(numba.get_num_threads(), threads))
        else:
            os.environ.setdefault("NUMBA_NUM_THREADS", str(threads))
    return threads


@contextlib.contextmanager
def process_group(device: str) -> Iterator[Ranks]:
    """Join the process group torchrun describes (env://; gloo on the CPU, NCCL on CUDA) for the
    duration, or yield SINGLE outside torchrun. A group someone else made is used and left open."""
    ranks = from_env()
    if ranks is None or ranks.world == 1:
        yield SINGLE if ranks is None else ranks
        return
    if dist.is_initialized():
        yield ranks
        return
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group(backend="nccl" if cuda else "gloo", init_method="env://")
    share_cores(ranks)
    try:
        yield ranks
    finally:
        dist.destroy_process_group()


def all_reduce_step(optimizer: torch.optim.Optimizer, extras: list[Tensor], ranks: Ranks) -> list[Tensor]:
    """Sum over ranks every optimizer parameter's gradient (a missing one counts as zeros) and each
    tensor of `extras` (1-D, the parameters' dtype), in one flat all_reduce. Gradients are replaced in
    place; the summed extras are returned. Alone, nothing is exchanged."""
    if not ranks.distributed:
        return extras
    params = [p for group in optimizer.param_groups for p in group["params"]]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([t.reshape(-1) for t in grads] + extras)
    ranks.sum_(flat)
    offset = 0
    for p in params:
        p.grad = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    out = []
    for t in extras:
        out.append(flat[offset : offset + t.numel()])
        offset += t.numel()
    return out


def check_in_sync(tensors: Mapping[str, Tensor], ranks: Ranks, rtol: float = 1e-6) -> None:
    """Raise RuntimeError when any rank's tensors differ from rank 0's in shape or (beyond rtol) in sum:
    the ranks must take identical steps, so a difference is a fault, not noise."""
    if not ranks.distributed:
        return
    names = sorted(tensors)
    first = tensors[names[0]]
    fingerprint = torch.tensor([float(tensors[n].shape[0]) for n in names]
                               + [float(tensors[n].detach().double().sum()) for n in names],
                               dtype=torch.float64, device=first.device)
    gathered = [torch.empty_like(fingerprint) for _ in range(ranks.world)]
    dist.all_gather(gathered, fingerprint)
    reference = gathered[0].cpu()
    for rank, other in enumerate(gathered[1:], start=1):
        other = other.cpu()
        for i, name in enumerate(names):
            rows, total = i, len(names) + i
            if other[rows] != reference[rows] or not torch.isclose(other[total], reference[total], rtol=rtol, atol=1e-9):
                raise RuntimeError(
                    f"training ranks out of step: rank {rank}'s {name} has {int(other[rows])} rows summing to "
                    f"{float(other[total]):.9g}, rank 0's {int(reference[rows])} rows summing to "
                    f"{float(reference[total]):.9g} (the ranks must run the same code, torch build and config)")
