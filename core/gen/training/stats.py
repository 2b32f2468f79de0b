"""The statistics of training steps, kept on the device so that a step never waits for the host.

- `StepStats`: loss sums, overall, per quarter of t and per reported term, as a named record;
- `UpdateGuard`: skips the update of a step whose loss or gradient is not finite, on the device,
  and says so (stopping the run) the next time the host looks;
- `TrainingWindow`: the steps since the last metrics line, and their wall time without the time
  spent on grids, scores and checkpoints.

The host reads these only every ``log_every`` steps (and at checkpoints): one synchronisation there,
none in the step.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Iterator
from typing import Any

import attrs
import torch
from torch import Tensor

from gen.distributed import DistInfo
from gen.errors import GenError
from gen.training.flops import mfu

T_BINS = 4  # the loss is also logged per quarter of t in [0, 1]


def _zeros(n: int = 1, device: torch.device | str | None = None) -> Tensor:
    return torch.zeros(n, dtype=torch.float64, device=device)


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

    @classmethod
    def on(cls, device: torch.device | str) -> StepStats:
        """Empty sums on ``device`` (where the losses are: nothing is copied to the host)."""
        return cls(_zeros(1, device), _zeros(1, device), _zeros(T_BINS, device), _zeros(T_BINS, device))

    def add(self, stats: dict[str, Tensor]) -> None:
        """Add a micro-batch's stats from the objective: ``loss`` (b,) per sample at times ``t`` (b,), and
        any other (b,) per-sample terms of the loss. Device operations only: no host synchronisation."""
        device = self.loss_sum.device
        per = stats["loss"].detach().to(device, torch.float64)  # (b,)
        bins = (stats["t"].detach().to(device, torch.float64) * T_BINS).long().clamp(0, T_BINS - 1)  # (b,)
        self.loss_sum += per.sum()
        self.count += per.numel()
        self.loss_by_t_sum.index_add_(0, bins, per)
        self.count_by_t.index_add_(0, bins, torch.ones_like(per))  # bincount would ask the host for a size
        for name in sorted(set(stats) - {"loss", "t"}):
            value = stats[name].detach().to(device, torch.float64).sum()
            self.terms_sum[name] = self.terms_sum.get(name, _zeros(1, device)) + value

    def reduce(self, dist: DistInfo) -> StepStats:
        """The sums over every rank, and the stop flag of any rank: one all-reduce (every rank calls it).
        The result stays on the device; reading it (`loss`) is the host synchronisation."""
        names = sorted(self.terms_sum)  # the same objective on every rank: the same names
        device = self.loss_sum.device
        packed = torch.cat(
            [
                self.loss_sum,
                self.count,
                self.loss_by_t_sum,
                self.count_by_t,
                *(self.terms_sum[n] for n in names),
                torch.full((1,), float(self.stop), dtype=torch.float64, device=device),
            ]
        ).to(dist.device)
        if dist.enabled:
            torch.distributed.all_reduce(packed)
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
            self.terms_sum[name] = self.terms_sum.get(name, _zeros(1, value.device)) + value
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


class UpdateGuard:
    """Skips, on the device, the update of a step whose loss or gradient norm is not finite, and stops the
    run the next time the host looks (`raise_if_skipped`, at a metrics line or a checkpoint).

    The decision is a device tensor handed to the fused optimizer as ``found_inf`` (the mechanism of
    ``torch.amp.GradScaler``: the kernel leaves weights, moments and step count untouched) and to the EMA
    as a zero weight, so a bad step changes nothing and no step waits for the host. Every rank takes the
    same decision: the gradient norm is global, and so is the loss it is given.

    Args:
        device: Where the losses and gradients are.
    """

    def __init__(self, device: torch.device | str):
        self.skipped = torch.zeros((), dtype=torch.float64, device=device)
        #: (step, loss, grad norm) of the first skipped step (nan until one is).
        self.first = torch.full((3,), float("nan"), dtype=torch.float64, device=device)

    def keep(self, loss: Tensor, grad_norm: Tensor, step: int, dist: DistInfo | None = None) -> Tensor:
        """0-dim float32: 1 where step ``step``'s update may be applied, 0 where it must be skipped.

        ``loss`` is this rank's loss sum; with ``dist`` it is summed over the ranks first (an all-reduce
        queued on the device, not awaited), so that every rank decides alike.
        """
        if dist is not None and dist.enabled:
            loss = loss.clone()
            torch.distributed.all_reduce(loss)
        ok = torch.isfinite(loss).all() & torch.isfinite(grad_norm).all()
        record = torch.stack(
            [torch.full_like(self.skipped, step), loss.double().sum(), grad_norm.double().sum()]
        )
        self.first = torch.where((self.skipped == 0) & ~ok, record, self.first)
        self.skipped += (~ok).double()
        return ok.float()

    def raise_if_skipped(self, at_step: int, latest_checkpoint: object) -> None:
        """Raise `gen.GenError` (one line: the first bad step, its numbers, what is intact) when a
        step was skipped. A host synchronisation: call it where the host waits anyway."""
        if float(self.skipped) == 0:
            return
        step, loss, norm = (float(v) for v in self.first.tolist())
        n = int(self.skipped)
        when = "before the update" if int(step) == at_step else f"at step {at_step} ({n} update(s) skipped)"
        kept = (
            f"the last good checkpoint, {latest_checkpoint}, is intact"
            if latest_checkpoint
            else "no checkpoint was written"
        )
        raise GenError(
            f"loss is {loss} (grad norm {norm}) at step {int(step)}; training stopped {when} and {kept}. "
            "Lower train.blr/lr, set train.grad_clip, or check the data"
        )


class TrainingWindow:
    """The steps since the last metrics line: their stats (on the device), the last gradient norm, and
    their wall time without the time spent in `paused` blocks (grids, scores, checkpoints)."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self.stats = StepStats.on(device)
        self.steps = 0
        self.grad_norm: Tensor | None = None
        self.start = time.perf_counter()
        self.excluded = 0.0
        self.stop = False  # set from every rank's stop flag when the window is reduced

    def add(self, stats: StepStats, grad_norm: Tensor) -> None:
        self.stats += stats
        self.grad_norm = grad_norm
        self.steps += 1

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Time inside is not training time (images/s and MFU leave it out)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.excluded += time.perf_counter() - start

    def steps_per_s(self) -> float:
        """Steps per second of training time (call after the host synchronised, at a metrics line)."""
        return self.steps / max(time.perf_counter() - self.start - self.excluded, 1e-9)

    def metrics_line(
        self, stats: StepStats, *, step: int, lr: float, global_batch: int, flops: tuple[float, float | None]
    ) -> dict[str, Any]:
        """The line of ``metrics.jsonl`` of this window, from its reduced ``stats`` (the host reads them
        here): ``flops`` is (model FLOPs per image, the device's peak FLOP/s or None) for the MFU."""
        images_per_s = self.steps_per_s() * global_batch
        return {
            "step": step,
            "time": time.time(),
            "loss": stats.loss,
            "loss_by_t": stats.loss_by_t(),
            **stats.term_means(),
            "grad_norm": float(self.grad_norm),
            "lr": lr,
            "images_per_s": images_per_s,
            "mfu": mfu(images_per_s, *flops),
            "peak_memory_mb": peak_memory_mb(self.device),
        }


__all__ = ["T_BINS", "StepStats", "TrainingWindow", "UpdateGuard", "peak_memory_mb"]
