"""The network output a DDPM sampler uses at each step: classifier-free guidance as DiT applies it.

Classifier-free guidance (Ho & Salimans, 2022) as DiT's ``forward_with_cfg``: the conditional and the
null-label (``num_classes``) passes run as one batched forward, and
``ε = ε_u + s · (ε_c − ε_u)`` on the first ``cfg_channels`` channels of ε only (DiT guides 3 of its 4
latent channels, a choice kept for exact reproduction of its numbers); the remaining ε channels and all
variance channels come from the conditional pass.

Guidance interval: the step at original timestep t (of T) has time ``τ = 1 − (t + 1)/T`` in [0, 1)
(0 = noise, as the flow's t); it is guided with ``s = cfg`` where ``τ < high and (low == 0 or τ > low)``
and unguided (``s = 1``, the unconditional pass skipped) elsewhere, so the default (0, 1) guides every
step as DiT does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

import gen

__all__ = ["ModelFn", "guidance_scale_at", "guided_output", "step_time"]

#: ``model_fn(x_t, timestep) -> out``: x_t (B, C, ...), the original integer timestep, out (B, C_out, ...).
ModelFn = Callable[[Tensor, int], Tensor]


def step_time(timestep: int, num_timesteps: int) -> float:
    """τ = 1 − (t + 1)/T: the time in [0, 1) (0 = noise) of original step t, for guidance intervals."""
    return 1.0 - (timestep + 1) / num_timesteps


def guidance_scale_at(
    timestep: int, num_timesteps: int, cfg: float, cfg_interval: tuple[float, float]
) -> float:
    """`gen.guidance_scale` at τ = `step_time`: the flow's interval rule on the step's time."""
    return gen.guidance_scale(step_time(timestep, num_timesteps), cfg, cfg_interval)


def guided_output(
    net: Any,
    labels: Tensor | gen.Condition,
    *,
    cfg: float,
    cfg_interval: tuple[float, float],
    num_classes: int | None = None,
    num_timesteps: int,
    cfg_channels: int = 3,
) -> ModelFn:
    """The guided network output at (x_t, t).

    Args:
        net: The backbone ``net(z, t, y)``, t the integer timesteps as a float tensor (B,).
        labels: A `gen.Condition`, or (B,) int64 class ids with ``num_classes`` the null label.
        cfg: The guidance scale s (1 = none).
        cfg_interval: (low, high) in τ (see the module docstring).
        num_classes: With class ids: classes of the model; 0 = unconditional (no guidance).
        num_timesteps: T of the original process (for τ).
        cfg_channels: How many leading ε channels are guided; 0 = all of them.

    Returns:
        ``model_fn(x_t, timestep) -> out``: x_t (B, C, ...), out (B, C_out, ...) in x_t's dtype.
    """
    condition = labels if isinstance(labels, gen.Condition) else gen.ClassLabels(labels, num_classes)
    y, y_with_null = condition.y, condition.with_null() if condition.guidable else None  # (B,), (2B,)

    def model_fn(x: Tensor, timestep: int) -> Tensor:
        s = guidance_scale_at(timestep, num_timesteps, cfg, cfg_interval)
        if s == 1.0 or not condition.guidable:
            t = torch.full((x.shape[0],), float(timestep), device=x.device)  # (B,)
            return net(x, t, y).to(x.dtype)
        t = torch.full((2 * x.shape[0],), float(timestep), device=x.device)  # (2B,)
        out = net(torch.cat([x, x]), t, y_with_null).to(x.dtype)  # (2B, C_out, ...)
        cond, uncond = out.chunk(2)
        k = x.shape[1] if cfg_channels == 0 else min(cfg_channels, x.shape[1])
        guided = gen.extrapolate(uncond[:, :k], cond[:, :k], s)
        return torch.cat([guided, cond[:, k:]], dim=1)

    return model_fn
