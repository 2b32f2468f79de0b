"""The samplers of the ``ddpm`` process: ancestral sampling (``ddpm``) and DDIM (``ddim``).

Neither is an ODE solver over a velocity: each is an object with ``process = "ddpm"`` that the ddpm
process runs over a respaced diffusion (`gen_ddpm.respacing`) with the guided network output of
`gen_ddpm.guidance`. They are not callable, so a flow model given one fails at recipe load.

- ``ddpm``: ancestral sampling (Ho et al., 2020, Algorithm 2) with the model's (learned or fixed)
  variance: ``x_{t−1} = μ_θ(x_t, t) + σ_t z``, no noise at the last step. DiT's default sampler, with
  ``steps = 250`` evenly spaced (ADM's section spacing ``"250"``).
- ``ddim``: DDIM (Song et al., 2021, eq. 12): ``x_{t−1} = √ᾱ_{t−1} x̂_0 + √(1 − ᾱ_{t−1} − σ²) ε̂ + σ z``
  with ``σ = η √((1 − ᾱ_{t−1})/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_{t−1})``; deterministic for η = 0. Its steps are
  the DDIM paper's stride spacing (``"ddimN"``) by default.

The noise ``z`` of sample i comes from a generator keyed by its start noise
(`gen.per_sample_generators`), so a sample does not depend on the batch it is drawn in.
"""

from __future__ import annotations

import abc
from typing import Literal

import attrs
import torch
from attrs import validators as v
from torch import Tensor

import gen
from gen_ddpm.diffusion import GaussianDiffusion
from gen_ddpm.guidance import ModelFn
from gen_ddpm.respacing import space_timesteps

__all__ = ["AncestralConfig", "AncestralSampler", "DDIMConfig", "DDIMSampler", "DDPMSampler", "step_noise"]

SPACINGS: tuple[str, ...] = ("even", "ddim")


def _spacing(default: str):  # noqa: ANN202
    return gen.field(
        default,
        doc="Which steps of the T are taken: \"even\" (ADM's section spacing of N = [sample] steps, DiT's "
        'default) or "ddim" (the DDIM paper\'s integer stride giving exactly N steps).',
        validator=v.in_(SPACINGS),
    )


def _cfg_channels():  # noqa: ANN202
    return gen.field(
        3,
        doc="Guidance applies to the first N channels of eps only (DiT guides 3 of its 4 latent "
        "channels; keep 3 to reproduce its numbers); 0 = all eps channels.",
        validator=v.ge(0),
    )


def _clip_denoised():  # noqa: ANN202
    return gen.field(False, doc="Clamp x̂_0 to [-1, 1] at each step (DiT samples without it).")


@attrs.frozen(kw_only=True)
class AncestralConfig:
    """Options of the ``ddpm`` sampler (ancestral sampling)."""

    spacing: Literal["even", "ddim"] = _spacing("even")
    cfg_channels: int = _cfg_channels()
    clip_denoised: bool = _clip_denoised()


@attrs.frozen(kw_only=True)
class DDIMConfig:
    """Options of the ``ddim`` sampler."""

    eta: float = gen.field(
        0.0, doc="DDIM's eta: 0 is deterministic, 1 the DDPM variance β̃_t.", validator=v.ge(0)
    )
    spacing: Literal["even", "ddim"] = _spacing("ddim")
    cfg_channels: int = _cfg_channels()
    clip_denoised: bool = _clip_denoised()


def step_noise(gens: list[torch.Generator], like: Tensor) -> Tensor:
    """(B, ...) standard normal noise shaped like ``like``, row i drawn from ``gens[i]`` (on the CPU)."""
    rows = [torch.randn(like.shape[1:], generator=g, dtype=torch.float32) for g in gens]
    return torch.stack(rows).to(device=like.device, dtype=like.dtype)


class DDPMSampler(abc.ABC):
    """What the two samplers share: the spacing of the steps and the loop from noise to data.

    Attributes:
        process: ``"ddpm"``, the process these samplers sample (read by the core's error for a flow model).
        name: The registered name.
    """

    process = "ddpm"
    name = "ddpm"

    def __init__(self, config: AncestralConfig | DDIMConfig):
        self.config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def timesteps(self, num_timesteps: int, steps: int) -> list[int]:
        """The kept steps of the T-step process for ``steps`` sampling steps, as the spacing says.

        Raises:
            ValueError: when the spacing cannot take exactly ``steps`` of the T steps.
        """
        counts = f"ddim{steps}" if self.config.spacing == "ddim" else str(steps)
        return space_timesteps(num_timesteps, counts)

    def run(self, diffusion: GaussianDiffusion, model_fn: ModelFn, noise: Tensor) -> Tensor:
        """Sample from ``noise`` (B, C, ...) ~ N(0, I) at the last step of the (respaced) ``diffusion``
        down to step 0. ``model_fn(x_t, timestep)`` gets the original timesteps. Returns (B, C, ...)."""
        gens = gen.per_sample_generators(noise)
        x = noise
        for i in reversed(range(diffusion.num_timesteps)):
            t = torch.full((x.shape[0],), i, dtype=torch.long, device=x.device)  # (B,) respaced index
            out = model_fn(x, int(diffusion.timestep_map[i]))
            eps, var_values = diffusion.split_output(out, x.shape[1])
            x = self.step(diffusion, eps, var_values, x, t, gens)
        return x

    @abc.abstractmethod
    def step(
        self,
        diffusion: GaussianDiffusion,
        eps: Tensor,
        var_values: Tensor | None,
        x: Tensor,
        t: Tensor,
        gens: list[torch.Generator],
    ) -> Tensor:
        """One step x_t -> x_{t−1}: the ancestral or the DDIM update."""


class AncestralSampler(DDPMSampler):
    """Ancestral sampling with the model's variance (the ``ddpm`` sampler; DiT's default)."""

    name = "ddpm"

    def step(self, diffusion, eps, var_values, x, t, gens):  # noqa: ANN001, ANN201
        """x_{t−1} = μ_θ + exp(½ log σ²) z, z = 0 at step 0."""
        out = diffusion.p_mean_variance(eps, var_values, x, t, clip_denoised=self.config.clip_denoised)
        if int(t[0]) == 0:
            return out.mean
        return out.mean + torch.exp(0.5 * out.log_variance) * step_noise(gens, x)


class DDIMSampler(DDPMSampler):
    """DDIM with ``eta`` (the ``ddim`` sampler); ε̂ is re-derived from the (possibly clipped) x̂_0."""

    name = "ddim"

    def step(self, diffusion, eps, var_values, x, t, gens):  # noqa: ANN001, ANN201
        """x_{t−1} = √ᾱ_{t−1} x̂_0 + √(1 − ᾱ_{t−1} − σ²) ε̂ + σ z, z = 0 at step 0 or for η = 0."""
        out = diffusion.p_mean_variance(eps, var_values, x, t, clip_denoised=self.config.clip_denoised)
        eps = diffusion.predict_eps(x, t, out.x0)
        abar = diffusion.at(diffusion.alphas_cumprod, t, x)
        abar_prev = diffusion.at(diffusion.alphas_cumprod_prev, t, x)
        eta = self.config.eta
        sigma = eta * torch.sqrt((1 - abar_prev) / (1 - abar)) * torch.sqrt(1 - abar / abar_prev)
        mean = out.x0 * torch.sqrt(abar_prev) + torch.sqrt(1 - abar_prev - sigma**2) * eps
        if eta == 0 or int(t[0]) == 0:
            return mean
        return mean + sigma * step_noise(gens, x)
