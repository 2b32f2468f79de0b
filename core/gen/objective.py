"""The denoising objective: path, prediction space, loss space and time sampling.

Training draws ``t`` from the schedule and ``eps ~ noise_scale * N(0, I)``, forms the point
``z_t = t * x + (1 - t) * eps`` of the linear path (t = 0 noise, t = 1 data), asks the network for its
output at ``(z_t, t)`` and regresses, in the chosen loss space, the quantity the output implies on the
same quantity the truth implies. Both sides go through the same conversion (and so the same clamp of
``1 - t`` and ``t`` at ``t_eps``), as published JiT does: for x-prediction with the v-loss,
``v = (x - z) / max(1 - t, t_eps)`` and ``v̂ = (x̂ - z) / max(1 - t, t_eps)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs
import torch
import torch.nn.functional as F
from attrs import validators as v
from torch import Tensor, nn

from gen.components import build_component, registered
from gen.config import component_field, field
from gen.errors import GenError
from gen.protocols import Prediction, Process, Schedule, convert


class LinearFlow:
    """The process ``flow``: the linear path ``z_t = t x + (1 - t) eps`` this module trains on, configured
    by ``[objective]``'s own keys (prediction, loss, schedule, noise_scale, t_eps, multiscale)."""

    def __repr__(self) -> str:
        return "LinearFlow()"


def _multiscale(instance, attribute, value):  # noqa: ANN001, ARG001
    for factor in value:
        if not isinstance(factor, int) or factor < 2:
            raise ValueError(f"pooling factors must be integers >= 2, got {list(value)}")


@attrs.frozen(kw_only=True)
class ObjectiveConfig:
    """The ``[objective]`` section of a recipe."""

    prediction: str = field(
        "x",
        doc="What the network predicts: a registered prediction (x, eps, v).",
        validator=registered("prediction"),
    )
    loss: Literal["x", "eps", "v"] = field("v", doc="The space the regression loss is computed in.")
    noise_scale: float = field(
        1.0, doc="Std of the noise eps; JiT: 1.0 at 256 px, 2.0 at 512 px.", validator=v.gt(0)
    )
    t_eps: float = field(0.05, doc="Clamp of 1-t (and t) in divisions by it.", validator=[v.gt(0), v.lt(1)])
    label_drop: float = field(
        0.1, doc="Probability that a label becomes the null label (for CFG).", validator=[v.ge(0), v.le(1)]
    )
    schedule = component_field("schedule", "logit_normal", doc="How training draws t.")
    multiscale: tuple[int, ...] = field(
        (),
        doc="Also take the loss avg-pooled by these factors (images only; Simple Diffusion).",
        validator=_multiscale,
    )
    process = component_field(
        "process",
        "flow",
        doc="The noising process: flow (the linear path of the keys above; JiT, SiT) or ddpm (DiT).",
    )

    def __attrs_post_init__(self):
        process = self.build_process()
        if isinstance(process, Process):
            process.check_objective(self)

    def build_process(self) -> LinearFlow | Process:
        """The process object (``LinearFlow`` for ``flow``)."""
        if isinstance(self.process, str):
            return build_component("process", self.process)
        return self.process.build()


def _device_of(generator: torch.Generator | None, fallback: torch.device) -> torch.device:
    # Draw where the generator lives (a CPU generator can drive CUDA training), then move.
    return generator.device if generator is not None else fallback


def broadcast_time(t: Tensor, like: Tensor) -> Tensor:
    """(B,) -> (B, 1, ..., 1) with as many dims as ``like``."""
    return t.reshape(-1, *([1] * (like.ndim - 1)))


class Objective:
    """The training loss of a denoising model on the linear path (JiT's ``Denoiser.forward``).

    Args:
        config: The ``[objective]`` section.
        num_classes: Classes of the data; 0 = unconditional (every label is the null label 0).
        weighting: Optional ``weighting(t) -> w`` with ``t`` and ``w`` of shape (B,): the per-sample loss
            is multiplied by ``w`` before the batch mean (``stats["loss"]`` stays unweighted).

    Example:
        >>> objective = Objective(ObjectiveConfig(prediction="x", loss="v"), num_classes=10)
        >>> loss, stats = objective.loss(net, x, y, generator=torch.Generator().manual_seed(0))
    """

    def __init__(
        self,
        config: ObjectiveConfig,
        num_classes: int,
        *,
        weighting: Callable[[Tensor], Tensor] | None = None,
    ):
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.config = config
        self.num_classes = num_classes
        self.prediction: Prediction = build_component("prediction", config.prediction)
        self.schedule: Schedule = build_component("schedule", config.schedule)
        built = config.build_process()
        #: The process that owns the loss when it is not the linear flow (DDPM), else None.
        self.process: Process | None = built if isinstance(built, Process) else None
        self.weighting = weighting

    @property
    def null_label(self) -> int:
        """The label id of the unconditional prediction (``num_classes``)."""
        return self.num_classes

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise `gen.GenError` when the options cannot work on samples of ``shape``."""
        factors = self.config.multiscale
        if not factors:
            return
        if len(shape) != 3:
            raise GenError(
                f"objective.multiscale = {list(factors)} needs image samples (C, H, W), got shape "
                f"{tuple(shape)}; set objective.multiscale = []"
            )
        _, h, w = shape
        bad = [f for f in factors if h % f or w % f]
        if bad:
            raise GenError(
                f"objective.multiscale factors {bad} do not divide the image size {h}x{w}; "
                "use factors that divide it"
            )

    # -- randomness ---------------------------------------------------------------------------------
    def drop_labels(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Replace each label by the null label with probability ``label_drop``. y: (B,) int64."""
        if self.config.label_drop == 0 or self.num_classes == 0:
            return y  # an unconditional model sees the null label already
        u = torch.rand(y.shape[0], generator=generator, device=_device_of(generator, y.device))  # (B,)
        drop = (u < self.config.label_drop).to(y.device)
        return torch.where(drop, torch.full_like(y, self.null_label), y)

    def sample_time(self, n: int, generator: torch.Generator | None = None, device: Any = None) -> Tensor:
        """(n,) training times from the schedule (or from the process: DDPM's integer steps)."""
        if self.process is not None:
            return self.process.sample_time(n, generator=generator, device=device)
        return self.schedule.sample(n, generator=generator, device=device)

    def sample_noise(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """eps ~ noise_scale * N(0, I), shaped like x."""
        eps = torch.randn(x.shape, generator=generator, device=_device_of(generator, x.device), dtype=x.dtype)
        return eps.to(x.device) * self.config.noise_scale

    # -- the loss -----------------------------------------------------------------------------------
    def loss(
        self, net: nn.Module, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The training loss on a batch, drawing labels to drop, times and noise (in that order).

        Args:
            net: The backbone, ``net(z, t, y) -> out`` shaped like z.
            x: (B, ...) clean samples ((B, C, H, W) images or (B, D) vectors).
            y: (B,) int64 class ids (all 0 for an unconditional model).
            generator: The source of all randomness (None: torch's global generator).

        Returns:
            The scalar loss and stats: ``loss`` (B,) per-sample loss (unweighted, detached), ``t`` (B,).
        """
        y = self.drop_labels(y, generator)
        t = self.sample_time(x.shape[0], generator, device=x.device).to(x.dtype)  # (B,)
        eps = self.sample_noise(x, generator)  # (B, ...)
        return self.loss_at(net, x, y, t, eps)

    def loss_at(
        self, net: nn.Module, x: Tensor, y: Tensor, t: Tensor, eps: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss for given labels (not dropped again), times t (B,) and noise eps (B, ...)."""
        self.check_shape(tuple(x.shape[1:]))
        if self.process is not None:
            per_sample, stats = self.process.loss_at(net, x, y, t, eps)
            return self._weighted_mean(per_sample, t), stats
        cfg = self.config
        tb = broadcast_time(t, x)  # (B, 1, ..., 1)
        z = tb * x + (1 - tb) * eps  # (B, ...) the point on the path
        out = net(z, t, y).to(z.dtype)  # (B, ...) in the prediction's space
        pred = convert(self.prediction, cfg.loss, out, z, tb, t_eps=cfg.t_eps)  # (B, ...) in the loss space
        # The truth goes through the same conversion (and clamp) as the prediction, as in published JiT.
        true_out = self.prediction.target(x, eps)
        target = convert(self.prediction, cfg.loss, true_out, z, tb, t_eps=cfg.t_eps)
        per_sample = self.per_sample_loss(pred, target)  # (B,)
        return self._weighted_mean(per_sample, t), {"loss": per_sample.detach(), "t": t.detach()}

    def _weighted_mean(self, per_sample: Tensor, t: Tensor) -> Tensor:
        if self.weighting is not None:
            return (self.weighting(t) * per_sample).mean()
        return per_sample.mean()

    def per_sample_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        """Mean squared error over all but the batch dim, averaged with the pooled versions. -> (B,)."""
        mse = ((pred - target) ** 2).flatten(1).mean(1)  # (B,)
        factors = self.config.multiscale
        if not factors:
            return mse
        terms = [mse]
        for f in factors:
            pooled = (F.avg_pool2d(pred, f) - F.avg_pool2d(target, f)) ** 2  # (B, C, H/f, W/f)
            terms.append(pooled.flatten(1).mean(1))
        return torch.stack(terms).mean(0)  # (B,)

    def __repr__(self) -> str:
        return (
            f"Objective(prediction={self.config.prediction!r}, loss={self.config.loss!r}, "
            f"schedule={self.schedule!r}, noise_scale={self.config.noise_scale}, t_eps={self.config.t_eps}, "
            f"num_classes={self.num_classes}, multiscale={self.config.multiscale}, "
            f"process={self.process or LinearFlow()!r})"
        )


__all__ = ["LinearFlow", "Objective", "ObjectiveConfig", "broadcast_time"]
