"""The statistics of training steps as a named record: loss sums, overall and per quarter of t."""

from __future__ import annotations

import resource

import attrs
import torch
from torch import Tensor

from gen.distributed import DistInfo

T_BINS = 4  # the loss is also logged per quarter of t in [0, 1]


def _zeros(n: int = 1) -> Tensor:
    return torch.zeros(n, dtype=torch.float64)


@attrs.define
class StepStats:
    """Sums over the samples of one or more steps (float64 on the CPU).

    Attributes:
        loss_sum: (1,) sum of per-sample losses.
        count: (1,) samples.
        loss_by_t_sum: (T_BINS,) the loss sum of the samples whose t falls in each bin.
        count_by_t: (T_BINS,) samples per bin.
        stop: Whether any rank was asked to stop (a signal) during the step.
    """

    loss_sum: Tensor = attrs.field(factory=_zeros)
    count: Tensor = attrs.field(factory=_zeros)
    loss_by_t_sum: Tensor = attrs.field(factory=lambda: _zeros(T_BINS))
    count_by_t: Tensor = attrs.field(factory=lambda: _zeros(T_BINS))
    stop: bool = False

    def add(self, per_sample_loss: Tensor, t: Tensor) -> None:
        """Add a micro-batch: per-sample losses (b,) at times t (b,)."""
        per = per_sample_loss.double().cpu()  # (b,)
        bins = (t.double().cpu() * T_BINS).long().clamp(0, T_BINS - 1)  # (b,)
        self.loss_sum += per.sum()
        self.count += per.numel()
        self.loss_by_t_sum += _zeros(T_BINS).index_add_(0, bins, per)
        self.count_by_t += torch.bincount(bins, minlength=T_BINS).double()

    def reduce(self, dist: DistInfo) -> StepStats:
        """The sums over every rank, and the stop flag of any rank: one all-reduce (every rank calls it)."""
        packed = torch.cat(
            [self.loss_sum, self.count, self.loss_by_t_sum, self.count_by_t, _zeros() + float(self.stop)]
        ).to(dist.device)
        if dist.enabled:
            torch.distributed.all_reduce(packed)
        packed = packed.cpu()
        b = 2 + T_BINS
        return StepStats(packed[0:1], packed[1:2], packed[2:b], packed[b : b + T_BINS], bool(packed[-1] > 0))

    def __iadd__(self, other: StepStats) -> StepStats:
        self.loss_sum += other.loss_sum
        self.count += other.count
        self.loss_by_t_sum += other.loss_by_t_sum
        self.count_by_t += other.count_by_t
        self.stop = self.stop or other.stop
        return self

    @property
    def loss(self) -> float:
        """The mean per-sample loss (nan before any sample)."""
        return float(self.loss_sum[0] / self.count[0])

    def loss_by_t(self) -> list[float | None]:
        """The mean loss in each t-bin (None for a bin without samples)."""
        return [
            float(self.loss_by_t_sum[i] / self.count_by_t[i]) if self.count_by_t[i] > 0 else None
            for i in range(T_BINS)
        ]


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: CUDA allocations on a GPU, else the resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


__all__ = ["T_BINS", "StepStats", "peak_memory_mb"]
