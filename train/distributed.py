"""Multi-process training under `torchrun`: process group, device per rank, DDP, small collectives.

Outside torchrun (no WORLD_SIZE in the environment) everything here is a
no-op and `setup()` reports a world of one. Under torchrun each process
trains on its own shard of every epoch (see `netspec.train.data.Loader`), DDP
averages gradients, and only rank 0 logs, evaluates and writes files. With
`strategy: fsdp` the model is sharded instead of wrapped (fsdp.py).

    torchrun --standalone --nproc_per_node 4 -m netspec train spec.nn ...
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..dsl.errors import NetspecError


class DeviceError(NetspecError):
    """The device asked for does not exist on this machine."""


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0  # global rank
    world: int = 1  # number of processes
    local_rank: int = 0  # rank on this node: picks the GPU
    device: torch.device = torch.device("cpu")
    enabled: bool = False  # a process group is up (we started it, or someone else did)
    owned: bool = False  # we started it, so we tear it down

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' prefers CUDA, then Apple MPS, then CPU; explicit names are checked to exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("device cuda requested but CUDA is not available")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise DeviceError("device mps requested but MPS is not available")
        return torch.device("mps")
    return torch.device("cpu")


def in_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun (nccl on CUDA, gloo otherwise)."""
    if not in_torchrun() and not (dist.is_available() and dist.is_initialized()):
        return DistInfo(device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank, device=dev,
                    enabled=True, owned=owned)


def cleanup(info: DistInfo) -> None:
    if info.owned and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """DistributedDataParallel around the model when running multi-process."""
    if not info.enabled or info.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DDP(model, device_ids=ids)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a tensor over ranks (for logged losses)."""
    if info.enabled and info.world > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= info.world
    return values


def reduce_min(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The elementwise minimum of a tensor over ranks (the first bad step, a finite flag)."""
    if info.enabled and info.world > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.MIN)
    return values


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank (for per-rank RNG states)."""
    if not info.enabled or info.world == 1:
        return [obj]
    out: list[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank when any rank says so (to stop together)."""
    if not info.enabled or info.world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
