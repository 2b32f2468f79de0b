"""The ``[objective]`` section and the engine's view of a model's training loss.

The loss belongs to the model's process (a registered ``process``: the linear flow of JiT and SiT in
`gen_flow`, DDPM in `gen_ddpm`, a third party's). `Objective` is what the training engine holds: the
process set up for ``[objective]``, the dropping of labels for classifier-free guidance, and the keyed
draws of each position of the global batch. It holds no process's math.

``[objective]`` keeps the keys every recipe has had: ``prediction``, ``loss``, ``schedule``,
``noise_scale``, ``t_eps`` and ``multiscale`` configure the flow (the default process); another process
refuses the ones it does not use (`gen.Process.with_objective`) and takes its own options from
``[objective.process]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import torch
from attrs import validators as v
from torch import Tensor, nn

from gen.components import ComponentSpec, build_component, registered
from gen.condition import ClassLabels
from gen.config import component_field, field
from gen.plugins import get_registry
from gen.process import Process


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
        self.build_process()  # a key the process cannot honour is a ValueError naming it

    def is_default(self, key: str) -> bool:
        """Whether ``key`` holds its default value. A component (``schedule``) compares by name and
        options, not by which keys were written: a resolved recipe (``gen recipe show``, a checkpoint's
        copy) spells out the default schedule's options and must read as the default. For a process
        that refuses the keys it does not use."""
        default = getattr(attrs.fields(type(self)), key).default
        value = getattr(self, key)
        if isinstance(value, ComponentSpec):
            return (
                value.name == default
                and value.config == get_registry(value.kind).get(value.name).make_config()
            )
        return value == default

    def build_process(self) -> Process:
        """The process this section names, set up for the section (`gen.Process.with_objective`)."""
        process = build_component("process", self.process)
        return process.with_objective(self)


def _device_of(generator: torch.Generator | None, fallback: torch.device) -> torch.device:
    # Draw where the generator lives (a CPU generator can drive CUDA training), then move.
    return generator.device if generator is not None else fallback


class Objective:
    """The training loss of a model as the engine computes it: the process's, on dropped labels.

    Args:
        config: The ``[objective]`` section.
        num_classes: Classes of the data; 0 = unconditional (every label is the null label 0).
        weighting: Optional ``weighting(t) -> w`` with ``t`` (the draws' ``t``) and ``w`` of shape (B,):
            the per-sample loss is multiplied by ``w`` before the batch mean (``stats["loss"]`` stays
            unweighted).

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
        #: The model's process, set up for ``[objective]``: it owns the loss.
        self.process: Process = config.build_process()
        self.weighting = weighting

    @property
    def null_label(self) -> int:
        """The label id of the unconditional prediction (``num_classes``)."""
        return self.num_classes

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise `gen.GenError` when the process cannot train on samples of ``shape``."""
        self.process.check_shape(tuple(shape))

    # -- randomness ---------------------------------------------------------------------------------
    def drop_labels(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Replace each label by the null label with probability ``label_drop``. y: (B,) int64."""
        if self.config.label_drop == 0 or self.num_classes == 0:
            return y  # an unconditional model sees the null label already
        u = torch.rand(y.shape[0], generator=generator, device=_device_of(generator, y.device))  # (B,)
        drop = self.arrange_drops(u < self.config.label_drop).to(y.device)
        return torch.where(drop, torch.full_like(y, self.null_label), y)

    def arrange_drops(self, drop: Tensor) -> Tensor:
        """(G,) bool positions whose label is dropped: ``drop`` as drawn, or as the process arranges it
        (its optional ``arrange_drops``, `gen.Process.draw`)."""
        arrange = getattr(self.process, "arrange_drops", None)
        return drop if arrange is None else arrange(drop)

    def draw(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The process's draws (``t``, ...) of ``n`` positions, each (n, ...) (`gen.Process.draw`)."""
        return self.process.draw(n, generator)

    def sample_noise(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """eps ~ noise_scale * N(0, I), shaped like x."""
        eps = torch.randn(x.shape, generator=generator, device=_device_of(generator, x.device), dtype=x.dtype)
        return eps.to(x.device) * self.process.noise_scale

    # -- the loss -----------------------------------------------------------------------------------
    def loss(
        self, net: nn.Module, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The training loss on a batch, drawing labels to drop, the process's draws and noise (in that
        order).

        Args:
            net: The backbone, ``net(z, t, y) -> out`` shaped like z.
            x: (B, ...) clean samples ((B, C, H, W) images or (B, D) vectors).
            y: (B,) int64 class ids (all 0 for an unconditional model).
            generator: The source of all randomness (None: torch's global generator).

        Returns:
            The scalar loss and stats: ``loss`` (B,) per-sample loss (unweighted, detached), ``t`` (B,).
        """
        y = self.drop_labels(y, generator)
        draws = {  # each (B, ...); times in the samples' precision
            k: d.to(x.device, x.dtype if d.is_floating_point() else d.dtype)
            for k, d in self.draw(x.shape[0], generator).items()
        }
        eps = self.sample_noise(x, generator)  # (B, ...)
        return self.loss_at(net, x, y, draws, eps)

    def loss_at(
        self,
        net: nn.Module,
        x: Tensor,
        y: Tensor,
        draws: Mapping[str, Tensor] | Tensor,
        eps: Tensor,
        *,
        terms: Any = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss for given labels (not dropped again), draws (a dict of (B, ...); a tensor is the
        times ``t`` alone) and noise eps (B, ...) of std ``noise_scale``.

        ``terms``: the run's loss terms (the engine's `gen.training.loss_terms.LossTerms`), which run the
        process's loss and add theirs per sample (``terms.add_to(process, net, x, condition, draws, eps)``);
        None: the process's loss alone."""
        draws = {"t": draws} if isinstance(draws, Tensor) else dict(draws)
        self.check_shape(tuple(x.shape[1:]))
        condition = ClassLabels(y, self.num_classes)
        if terms is None:
            per_sample, stats = self.process.loss(net, x, condition, draws, eps)
        else:
            per_sample, stats = terms.add_to(self.process, net, x, condition, draws, eps)
        if self.weighting is not None:
            return (self.weighting(draws["t"]) * per_sample).mean(), stats
        return per_sample.mean(), stats

    def __repr__(self) -> str:
        return f"Objective(process={self.process!r}, label_drop={self.config.label_drop}, num_classes={self.num_classes})"


__all__ = ["Objective", "ObjectiveConfig"]
