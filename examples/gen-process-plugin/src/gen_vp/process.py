"""The ``vp_cosine`` process: the variance-preserving cosine path as a `gen.Process`.

Training draws t uniform in [t_min, t_max) and the engine's noise eps ~ N(0, I), forms
z_t = alpha(t) x + sigma(t) eps (`gen_vp.path`) and regresses the network's output at
(z_t, t) on what it predicts, eps or v: ``[objective] prediction``, with ``loss`` the
same space. The other keys of ``[objective]`` configure the flow: refused when set.

Sampling runs the sampler ``vp_ddim`` (`gen_vp.ddim`) over the times of ``[sample]``'s
grid mapped into [t_min, t_max] (the times the network was trained at), then a last
step to t = 1. The start noise stands for z at t_min, whose std is
sqrt(alpha^2 var(x) + sigma^2) = 1 up to alpha(t_min)^2. Classifier-free guidance mixes
the conditional and the unconditional output, ``out_u + s (out_c - out_u)`` with
s = `gen.guidance_scale` at the step's time; x_hat and eps_hat are affine in the output,
so guiding eps, v or x_hat is the same.

Recipe::

    [objective]
    prediction = "eps"
    loss = "eps"
    process = { name = "vp_cosine", t_min = 0.02, t_max = 0.98 }

    [sample]
    sampler = "vp_ddim"
    steps = 20
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import gen
import torch
from attrs import validators as v
from torch import Tensor

from gen_vp.ddim import VPDDIM, Denoiser
from gen_vp.path import PREDICTIONS, alpha_sigma, target, to_x_eps

#: The ``[objective]`` keys of the linear flow that this process does not use.
FLOW_KEYS: tuple[str, ...] = ("noise_scale", "t_eps", "schedule", "multiscale")


# --8<-- [start:config]
@attrs.frozen(kw_only=True)
class VPCosineConfig:
    """Options of the ``vp_cosine`` process (``[objective.process]``)."""

    t_min: float = gen.field(
        0.02,
        doc="Earliest time trained and sampled: alpha(t_min) > 0 (eps divides by it).",
        validator=[v.ge(0), v.lt(1)],
    )
    t_max: float = gen.field(
        0.98,
        doc="Latest time trained at (sigma(t_max) > 0); sampling ends at t = 1.",
        validator=[v.gt(0), v.le(1)],
    )

    def __attrs_post_init__(self) -> None:
        if self.t_min >= self.t_max:
            raise ValueError(
                f"t_min = {self.t_min} must be below t_max = {self.t_max}; "
                "lower t_min or raise t_max"
            )


# --8<-- [end:config]


class VPCosineProcess:
    """The variance-preserving cosine path (see the module docstring): a `gen.Process`.

    Args:
        config: Its `VPCosineConfig`.
        prediction: What the network predicts, ``eps`` or ``v`` (``[objective]``'s).

    Attributes:
        noise_scale: 1: the noise of the path is N(0, I).
    """

    noise_scale = 1.0

    def __init__(self, config: VPCosineConfig, prediction: str = "eps"):
        self.config = config
        self.prediction = prediction

    def __repr__(self) -> str:
        c = self.config
        return (
            f"VPCosineProcess(prediction={self.prediction!r}, t_min={c.t_min}, "
            f"t_max={c.t_max})"
        )

    # -- checks ----------------------------------------------------------------------
    # --8<-- [start:with_objective]
    def with_objective(self, objective: Any) -> VPCosineProcess:
        """This process, predicting ``[objective]``'s prediction; ``ValueError``
        naming the key it cannot honour."""
        prediction = objective.prediction
        if prediction not in PREDICTIONS or objective.loss != prediction:
            raise ValueError(
                f'prediction = "{prediction}", loss = "{objective.loss}": the '
                "vp_cosine process regresses its prediction, eps or v; set "
                'prediction = "eps" and loss = "eps" (or both "v")'
            )
        for key in FLOW_KEYS:
            if not objective.is_default(key):
                value = getattr(objective, key)
                shown = value.name if isinstance(value, gen.ComponentSpec) else value
                raise ValueError(
                    f"{key} = {json.dumps(shown)} applies to the flow process only; "
                    'remove it (process "vp_cosine")'
                )
        if prediction == "eps" and self.config.t_min == 0:
            raise ValueError(
                'process.t_min = 0 with prediction = "eps": x_hat divides by '
                "alpha(t_min) = 0; raise t_min (0.02) or predict v"
            )
        return VPCosineProcess(self.config, prediction)

    # --8<-- [end:with_objective]

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Any shape: the path is elementwise."""

    # --8<-- [start:check_sample]
    def check_sample(self, sample: Any) -> None:
        """Raise ``ValueError`` naming the ``[sample]`` key it cannot honour."""
        if sample.guidance == "auto":
            raise ValueError(
                "guidance = 'auto' (autoguidance) guides the flow; the vp_cosine "
                "process samples with classifier-free guidance: set guidance = 'cfg'"
            )
        if sample.split_interval:
            raise ValueError(
                "split_interval cuts the flow's ODE where guidance switches; the "
                "vp_cosine process does not: set split_interval = false"
            )
        sampler = _build(sample.sampler, "sampler")
        if not isinstance(sampler, VPDDIM):
            name = getattr(sample.sampler, "name", sample.sampler)
            raise ValueError(
                f"sampler {name!r} does not sample the vp_cosine process; "
                "choose vp_ddim"
            )

    # --8<-- [end:check_sample]

    def backbone_fields(self, spec: gen.DataSpec) -> dict[str, Any]:
        """Nothing: the backbone's output is shaped like its input."""
        return {}

    # -- training --------------------------------------------------------------------
    # --8<-- [start:training]
    def draw(
        self, n: int, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``t`` (n,) float32 uniform in [t_min, t_max), all from ``generator``."""
        where = generator.device if generator is not None else "cpu"
        u = torch.rand(n, generator=generator, device=where, dtype=torch.float64)
        t = self.config.t_min + (self.config.t_max - self.config.t_min) * u
        return {"t": t.to("cpu", torch.float32)}

    def loss(
        self,
        net: Any,
        x: Tensor,
        condition: gen.Condition,
        draws: dict[str, Tensor],
        eps: Tensor,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Per-sample MSE (B,) of the output on eps or v at ``draws["t"]`` (B,)."""
        t = draws["t"]  # (B,)
        alpha, sigma = alpha_sigma(t.reshape(-1, *[1] * (x.ndim - 1)))  # (B, 1, ...)
        z = alpha * x + sigma * eps  # (B, ...) the point on the path
        out = net(z, t, condition.y).to(z.dtype)  # (B, ...)
        error = out - target(self.prediction, x, eps, alpha, sigma)
        per_sample = (error**2).flatten(1).mean(1)  # (B,)
        return per_sample, {"loss": per_sample.detach(), "t": t.detach()}

    # --8<-- [end:training]

    # -- sampling --------------------------------------------------------------------
    def chain_times(self, grid: Tensor) -> Tensor:
        """The sampler's times for a grid (N + 1,) of [0, 1]: the network's,
        t_min + (t_max - t_min) t_i for i < N, then 1."""
        c = self.config
        times = c.t_min + (c.t_max - c.t_min) * grid.to(torch.float64)
        times[-1] = 1.0
        return times

    # --8<-- [start:sample]
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
        """Samples (B, ...) from ``noise`` (B, ...) ~ N(0, I) with ``[sample]``'s
        sampler, steps, grid and classifier-free guidance."""
        if guide is not None:
            raise gen.GenError("the vp_cosine process guides without a guiding model")
        sampler = _build(sample.sampler, "sampler")
        grid = gen.grid_times(sample.grid, sample.steps)  # (N + 1,) float64, 0 to 1
        denoise = self.denoiser(
            torch.compile(net) if sample.compile else net,
            condition,
            cfg=sample.cfg,
            cfg_interval=sample.cfg_interval,
        )
        return sampler.run(denoise, noise, self.chain_times(grid), on_step=on_step)

    def denoiser(
        self,
        net: Any,
        condition: gen.Condition,
        *,
        cfg: float,
        cfg_interval: tuple[float, float],
    ) -> Denoiser:
        """``denoise(z, t) -> (x_hat, eps_hat)`` of the guided output at time t."""
        y = condition.y
        y_with_null = condition.with_null() if condition.guidable else None

        def denoise(z: Tensor, t: float) -> tuple[Tensor, Tensor]:
            s = gen.guidance_scale(
                torch.tensor(t, dtype=torch.float64), cfg, cfg_interval
            )
            if s == 1.0 or not condition.guidable:  # no unconditional pass
                time = torch.full((z.shape[0],), t, dtype=z.dtype, device=z.device)
                out = net(z, time, y).to(z.dtype)
            else:  # the conditional and the unconditional pass as one batch
                time = torch.full((2 * z.shape[0],), t, dtype=z.dtype, device=z.device)
                both = net(torch.cat([z, z]), time, y_with_null).to(z.dtype)
                cond, uncond = both.chunk(2)
                out = gen.extrapolate(uncond, cond, s)
            return to_x_eps(self.prediction, out, z, *alpha_sigma(t))

        return denoise

    # --8<-- [end:sample]


def _build(value: Any, kind: str) -> Any:
    """A component given as a name or a validated `gen.ComponentSpec`."""
    if isinstance(value, gen.ComponentSpec):
        return value.build()
    return gen.build(kind, value)


def build_vp_cosine(config: VPCosineConfig) -> VPCosineProcess:
    """The variance-preserving cosine path (alpha = sin, sigma = cos), eps or v."""
    return VPCosineProcess(config)
