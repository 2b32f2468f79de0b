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
        terms_sum: name -> (1,) sum of a per-sample term of the loss the objective reports beside it
            (DDPM's ``mse`` and ``vb``); logged as ``loss_<name>``.
    """

    loss_sum: Tensor = attrs.field(factory=_zeros)
    count: Tensor = attrs.field(factory=_zeros)
    loss_by_t_sum: Tensor = attrs.field(factory=lambda: _zeros(T_BINS))
    count_by_t: Tensor = attrs.field(factory=lambda: _zeros(T_BINS))
    stop: bool = False
    terms_sum: dict[str, Tensor] = attrs.field(factory=dict)

    def add(self, stats: dict[str, Tensor]) -> None:
        """Add a micro-batch's stats from the objective: ``loss`` (b,) per sample at times ``t`` (b,), and
        any other (b,) per-sample terms of the loss."""
        per = stats["loss"].double().cpu()  # (b,)
        bins = (stats["t"].double().cpu() * T_BINS).long().clamp(0, T_BINS - 1)  # (b,)
        self.loss_sum += per.sum()
        self.count += per.numel()
        self.loss_by_t_sum += _zeros(T_BINS).index_add_(0, bins, per)
        self.count_by_t += torch.bincount(bins, minlength=T_BINS).double()
        for name in sorted(set(stats) - {"loss", "t"}):
            self.terms_sum[name] = self.terms_sum.get(name, _zeros()) + stats[name].double().cpu().sum()

    def reduce(self, dist: DistInfo) -> StepStats:
        """The sums over every rank, and the stop flag of any rank: one all-reduce (every rank calls it)."""
        names = sorted(self.terms_sum)  # the same objective on every rank: the same names
        packed = torch.cat(
            [
                self.loss_sum,
                self.count,
                self.loss_by_t_sum,
                self.count_by_t,
                *(self.terms_sum[n] for n in names),
                _zeros() + float(self.stop),
            ]
        ).to(dist.device)
        if dist.enabled:
            torch.distributed.all_reduce(packed)
        packed = packed.cpu()
        b, k = 2 + T_BINS, 2 + 2 * T_BINS
        terms = {n: packed[k + i : k + i + 1] for i, n in enumerate(names)}
        bins = packed[b : b + T_BINS]
        return StepStats(packed[0:1], packed[1:2], packed[2:b], bins, bool(packed[-1] > 0), terms)

    def __iadd__(self, other: StepStats) -> StepStats:
        self.loss_sum += other.loss_sum
        self.count += other.count
        self.loss_by_t_sum += other.loss_by_t_sum
        self.count_by_t += other.count_by_t
        self.stop = self.stop or other.stop
        for name, value in other.terms_sum.items():
            self.terms_sum[name] = self.terms_sum.get(name, _zeros()) + value
        return self

    def term_means(self) -> dict[str, float]:
        """``loss_<name>``: the mean of each reported term of the loss (DDPM: ``loss_mse``, ``loss_vb``)."""
        return {f"loss_{n}": float(v[0] / self.count[0]) for n, v in sorted(self.terms_sum.items())}

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
