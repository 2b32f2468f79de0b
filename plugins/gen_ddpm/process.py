"""The ``ddpm`` process: DiT's discrete Gaussian diffusion as a `gen.protocols.Process`.

Training (DiT's ``train.py`` with ``create_diffusion(timestep_respacing="")``): integer steps t drawn
uniformly from 0..T−1, ``x_t = √ᾱ_t x + √(1 − ᾱ_t) ε``, ``out = net(x_t, t, y)`` with the integer t given
to the backbone as a float, and the per-sample hybrid loss ``mse + vb`` of
`gen_ddpm.diffusion.GaussianDiffusion.training_losses`. Sampling runs one of the process's samplers
(``ddpm``, ``ddim``) over the diffusion respaced to ``[sample] steps`` steps.

Recipe::

    [objective]
    prediction = "eps"
    loss = "eps"
    label_drop = 0.1
    process = { name = "ddpm", learn_sigma = true }
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import numpy as np
import torch
from attrs import validators as v
from torch import Tensor

import gen
from gen_ddpm.betas import BETA_SCHEDULES, named_betas
from gen_ddpm.diffusion import GaussianDiffusion
from gen_ddpm.guidance import guided_output
from gen_ddpm.respacing import respace
from gen_ddpm.samplers import DDPMSampler

__all__ = ["DDPMConfig", "DDPMProcess"]

#: The ``[objective]`` keys of the linear flow that the ddpm process does not use.
_FLOW_KEYS: tuple[str, ...] = ("noise_scale", "t_eps", "multiscale", "schedule")


@attrs.frozen(kw_only=True)
class DDPMConfig:
    """Options of the ``ddpm`` process (``[objective.process]``); the defaults are DiT's."""

    num_timesteps: int = gen.field(1000, doc="T, the steps of the diffusion (DiT: 1000).", validator=v.ge(1))
    beta_schedule: Literal["linear", "cosine"] = gen.field(
        "linear",
        doc="The betas: linear (DDPM, scaled by 1000/T; DiT) or cosine (improved DDPM).",
        validator=v.in_(BETA_SCHEDULES),
    )
    beta_start: float = gen.field(
        1e-4, doc="First beta of the linear schedule at T = 1000.", validator=v.gt(0)
    )
    beta_end: float = gen.field(0.02, doc="Last beta of the linear schedule at T = 1000.", validator=v.gt(0))
    learn_sigma: bool = gen.field(
        True,
        doc="Learn the variance (improved DDPM's learned range, hybrid loss; the backbone outputs 2C "
        "channels) as DiT does; false: a fixed variance.",
    )
    fixed_variance: Literal["large", "small"] = gen.field(
        "large",
        doc="The variance when learn_sigma = false: large (beta_t; DiT's and ADM's default) or small "
        "(the posterior variance).",
        validator=v.in_(("large", "small")),
    )

    def __attrs_post_init__(self) -> None:
        betas = self.betas()
        if not (betas > 0).all() or not (betas <= 1).all():
            raise ValueError(
                f"the {self.beta_schedule} betas for num_timesteps = {self.num_timesteps} leave (0, 1] "
                f"(largest {float(betas.max()):.4g}); raise num_timesteps or lower beta_end"
            )

    def betas(self) -> np.ndarray:
        """The (T,) float64 betas this config names."""
        return named_betas(
            self.beta_schedule, self.num_timesteps, beta_start=self.beta_start, beta_end=self.beta_end
        )


def _toml(value: Any) -> str:
    """A value as a recipe would write it (a component by its name)."""
    if isinstance(value, gen.ComponentSpec):
        value = value.name
    if isinstance(value, str):
        return f'"{value}"'
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


class DDPMProcess:
    """DiT's discrete Gaussian diffusion (see the module docstring): a `gen.Process`.

    Attributes:
        config: The `DDPMConfig`.
        diffusion: The T-step `GaussianDiffusion` (float64 tables).
        noise_scale: 1: the diffusion's noise is N(0, I).
    """

    noise_scale = 1.0

    def __init__(self, config: DDPMConfig):
        self.config = config
        variance = "learned_range" if config.learn_sigma else f"fixed_{config.fixed_variance}"
        self.diffusion = GaussianDiffusion(config.betas(), variance=variance)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"DDPMProcess(num_timesteps={c.num_timesteps}, beta_schedule={c.beta_schedule!r}, "
            f"learn_sigma={c.learn_sigma})"
        )

    # -- checks --------------------------------------------------------------------------------------
    def with_objective(self, objective: Any) -> DDPMProcess:
        """This process, once ``[objective]`` is one it can train (`check_objective`)."""
        self.check_objective(objective)
        return self

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Any sample shape: the diffusion is elementwise."""

    def check_objective(self, objective: Any) -> None:
        """Raise ``ValueError`` unless ``[objective]`` predicts and regresses eps and sets no flow key."""
        for key in ("prediction", "loss"):
            value = getattr(objective, key)
            if value != "eps":
                raise ValueError(
                    f'{key} = "{value}": the ddpm process predicts and regresses eps as DiT does; set '
                    f'{key} = "eps" (process "ddpm")'
                )
        for key in _FLOW_KEYS:
            if not objective.is_default(key):
                value = getattr(objective, key)
                raise ValueError(
                    f'{key} = {_toml(value)} applies to the flow process only; remove it (process "ddpm")'
                )

    def check_sample(self, sample: Any) -> None:
        """Raise ``ValueError`` naming the ``[sample]`` key this process cannot honour: a sampler that is
        not ``ddpm`` or ``ddim``, steps its spacing cannot take, a time grid, autoguidance or a split
        interval (the flow's)."""
        if sample.guidance == "auto":
            raise ValueError(
                "guidance = 'auto' (autoguidance) guides the flow's velocity; the ddpm process of this model "
                "samples with classifier-free guidance only: set guidance = 'cfg'"
            )
        if sample.split_interval:
            raise ValueError(
                "split_interval cuts the flow's ODE where guidance switches; the ddpm process of this model "
                "samples itself: set split_interval = false"
            )
        sampler = sample.sampler.build() if isinstance(sample.sampler, gen.ComponentSpec) else sample.sampler
        self.check_sampler(sampler)
        self.kept_steps(sampler, sample.steps)
        grid = sample.grid.name if isinstance(sample.grid, gen.ComponentSpec) else sample.grid
        if grid != "linear":
            raise ValueError(
                f"grid = {grid!r} places the flow's solver steps; the ddpm process's samplers take the steps "
                "of sampler.spacing: remove grid"
            )

    def check_sampler(self, sampler: Any) -> None:
        """Raise ``ValueError`` unless ``sampler`` is one of this process's samplers (``ddpm``, ``ddim``)."""
        if not isinstance(sampler, DDPMSampler):
            name = getattr(sampler, "__name__", None) or type(sampler).__name__
            raise ValueError(
                f"sampler {name!r} does not sample the ddpm process of this model; choose ddpm "
                "(ancestral, DiT's default) or ddim"
            )

    def kept_steps(self, sampler: DDPMSampler, steps: int) -> list[int]:
        """The original steps the sampler takes for ``steps`` sampling steps (``ValueError`` naming
        ``steps`` when its spacing cannot take exactly that many of the T)."""
        T = self.config.num_timesteps
        try:
            return sampler.timesteps(T, steps)
        except ValueError as e:
            raise ValueError(
                f"steps = {steps} with spacing {sampler.config.spacing!r} of the ddpm process's {T} steps: {e}; "
                "choose other steps or sample.sampler.spacing"
            ) from None

    def backbone_fields(self, spec: gen.DataSpec) -> dict[str, Any]:
        """``out_channels = 2 C`` (ε and the variance) for a learned variance, else nothing."""
        return {"out_channels": 2 * spec.shape[0]} if self.config.learn_sigma else {}

    # -- training ------------------------------------------------------------------------------------
    def draw(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``t`` (n,): integer steps uniform in 0..T−1 (`sample_time`)."""
        return {"t": self.sample_time(n, generator=generator)}

    def sample_time(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """(n,) float32 integer steps uniform in 0..T−1, drawn where ``generator`` lives, on ``device``."""
        where = generator.device if generator is not None else device
        t = torch.randint(0, self.config.num_timesteps, (n,), generator=generator, device=where)
        return t.to(device=device if device is not None else t.device, dtype=torch.float32)

    def loss(
        self, net: Any, x: Tensor, condition: gen.Condition, draws: dict[str, Tensor], eps: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The per-sample hybrid loss (`loss_at`) at the steps ``draws["t"]``."""
        return self.loss_at(net, x, condition.y, draws["t"], eps)

    def loss_at(
        self, net: Any, x: Tensor, y: Tensor, t: Tensor, eps: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The per-sample hybrid loss at integer steps ``t``.

        Args:
            net: The backbone ``net(x_t, t, y)``; its output has 2C channels (``learn_sigma``) or C.
            x: (B, C, ...) clean samples; y: (B,) labels (already dropped); eps: (B, C, ...) noise ~ N(0, I).
            t: (B,) integer steps 0..T−1 (any dtype holding integers).

        Returns:
            The loss (B,) with grad and stats ``loss``, ``mse``, ``vb`` (B,) detached and ``t`` (B,)
            ``1 − (t + 0.5)/T`` in [0, 1] (0 = noise).
        """
        steps = t.round().long() if t.is_floating_point() else t.long()  # (B,)
        x_t = self.diffusion.q_sample(x, steps, eps)  # (B, C, ...)
        out = net(x_t, steps.to(torch.float32), y).to(x.dtype)  # (B, C_out, ...)
        terms = self.diffusion.training_losses(out, x, x_t, steps, eps)
        T = self.config.num_timesteps
        stats = {k: terms[k].detach() for k in ("loss", "mse", "vb")}
        stats["t"] = (1.0 - (steps.to(torch.float32) + 0.5) / T).to(x.device)
        return terms["loss"], stats

    # -- sampling ------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        net: Any,
        noise: Tensor,
        condition: gen.Condition,
        sample: Any,
        *,
        guide: Any = None,
        on_step: Any = None,
    ) -> Tensor:
        """Samples (B, C, ...) with ``[sample]``'s sampler (ddpm or ddim), steps and classifier-free
        guidance (`run_sampler`); ``on_step`` hears of all the steps when the chain ends."""
        if guide is not None or sample.guidance != "cfg":
            raise gen.GenError("[sample] the ddpm process samples with classifier-free guidance only")
        sampler = sample.sampler.build() if isinstance(sample.sampler, gen.ComponentSpec) else sample.sampler
        out = self.run_sampler(
            torch.compile(net) if sample.compile else net,
            noise,
            condition,
            sampler=sampler,
            steps=sample.steps,
            cfg=sample.cfg,
            cfg_interval=sample.cfg_interval,
        )
        if on_step is not None:
            gen.StepCounter(torch.zeros(sample.steps + 1), on_step).finish()
        return out

    @torch.no_grad()
    def run_sampler(
        self,
        net: Any,
        noise: Tensor,
        labels: Tensor | gen.Condition,
        *,
        sampler: Any,
        steps: int,
        cfg: float,
        cfg_interval: tuple[float, float],
        num_classes: int | None = None,
    ) -> Tensor:
        """Samples (B, C, ...) from start noise (B, C, ...) ~ N(0, I) with ``steps`` respaced steps.

        ``labels``: a `gen.Condition`, or (B,) class ids with ``num_classes`` the null label; guidance as
        `gen_ddpm.guidance` says.

        Raises:
            gen.GenError: when the sampler's spacing cannot take ``steps`` of the T steps.
        """
        self.check_sampler(sampler)
        T = self.config.num_timesteps
        try:
            keep = self.kept_steps(sampler, steps)
        except ValueError as e:
            raise gen.GenError(f"[sample] {e}") from None
        model_fn = guided_output(
            net,
            labels,
            cfg=cfg,
            cfg_interval=cfg_interval,
            num_classes=num_classes,
            num_timesteps=T,
            cfg_channels=sampler.config.cfg_channels,
        )
        return sampler.run(respace(self.diffusion, keep), model_fn, noise)
