"""How a global batch is split over processes and gradient-accumulation steps."""

from __future__ import annotations

import attrs

from gen.errors import GenError


@attrs.frozen
class BatchPlan:
    """``global_batch = world_size * accum * micro_batch``: the recipe's batch, whatever the processes.

    Attributes:
        global_batch: Images per optimizer step across all processes.
        world_size: Processes.
        micro_batch: Images per forward pass per process.
        accum: Forward/backward passes per optimizer step on each process.
    """

    global_batch: int
    world_size: int
    micro_batch: int
    accum: int

    @classmethod
    def make(cls, global_batch: int, world_size: int, micro_batch: int | None) -> BatchPlan:
        """The plan of a ``[train]`` section on ``world_size`` processes; a split that does not divide
        is a `gen.GenError`, never a silent change of batch size."""
        if global_batch % world_size:
            raise GenError(
                f"train.global_batch = {global_batch} does not split over {world_size} processes; "
                f"use a multiple of {world_size}"
            )
        per_rank = global_batch // world_size
        micro = micro_batch or per_rank
        if per_rank % micro:
            raise GenError(
                f"train.micro_batch = {micro} does not divide the per-process batch {per_rank} "
                f"(global_batch {global_batch} / {world_size} processes); choose a divisor of {per_rank}"
            )
        return cls(global_batch, world_size, micro, per_rank // micro)


__all__ = ["BatchPlan"]
