"""Process-group set-up for ``torchrun``: NCCL on GPUs, Gloo on CPUs; one process is just rank 0 of 1."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

import attrs
import torch
import torch.distributed as dist


@attrs.frozen
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def local(cls, device: torch.device | str = "cpu") -> DistInfo:
        """One process on its own, even inside a process group (rank 0 sampling for the others)."""
        return cls(rank=0, world_size=1, local_rank=0, device=torch.device(device))


def setup() -> DistInfo:
    """Initialise the process group from torchrun's environment (or nothing, for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        # fp32 matrix products on tensor cores (TF32, 10-bit mantissa): what every fp32 GPU recipe of the
        # field assumes; bf16 autocast is unaffected.
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=device)


def teardown(synchronize: bool = False) -> None:
    """Destroy the process group (if any), then collect garbage while the interpreter is alive.

    ``synchronize`` first waits for every rank (use it only when every rank gets here, i.e. on success):
    a rank that destroys the group while another still works on its own (rank 0 drawing the final
    grid), or a group that outlives the interpreter's finalisation through reference cycles, can end
    a finished Gloo run in SIGABRT ("terminate called without an active exception").
    """
    if dist.is_initialized():
        if synchronize:
            dist.barrier()
        dist.destroy_process_group()
    gc.collect()


@contextlib.contextmanager
def process_group() -> Iterator[DistInfo]:
    """`setup` for one command, and `teardown` after it, unless the caller's process group
    was up already (it stays up: a script running several commands in one group)."""
    owned = not dist.is_initialized()
    info = setup()
    try:
        yield info
    finally:
        if owned:
            teardown()


def all_gather_objects(obj: object, info: DistInfo) -> list[object]:
    """Every rank's ``obj`` (used for small state such as RNG states)."""
    if not info.enabled:
        return [obj]
    out: list[object] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def any_true(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is true on any rank (a signal, a NaN)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
