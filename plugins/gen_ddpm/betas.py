"""Named beta schedules of the discrete Gaussian diffusion (ADM's ``get_named_beta_schedule``).

- ``linear``: Ho et al. (2020), *Denoising Diffusion Probabilistic Models*: ``beta_t`` evenly spaced from
  ``beta_start`` to ``beta_end`` over 1000 steps; for T steps both ends are scaled by ``1000 / T`` so that
  the schedule stays about the same process whatever T (Dhariwal & Nichol, 2021).
- ``cosine``: Nichol & Dhariwal (2021), *Improved Denoising Diffusion Probabilistic Models*, eq. 17:
  ``ᾱ(s) = cos²((s + 0.008) / 1.008 · π/2)`` for s in [0, 1], discretized as
  ``beta_t = min(1 − ᾱ((t + 1)/T) / ᾱ(t/T), 0.999)``.

Every schedule is computed in float64, as the published code does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["BETA_SCHEDULES", "betas_for_alpha_bar", "cosine_betas", "linear_betas", "named_betas"]

#: The schedule names a recipe may give (``[objective.process] beta_schedule``).
BETA_SCHEDULES: tuple[str, ...] = ("linear", "cosine")

#: The largest beta of a schedule made from ᾱ (improved DDPM: avoids a singularity at t = T).
MAX_BETA = 0.999


def linear_betas(num_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """(T,) float64 betas evenly spaced from ``scale · beta_start`` to ``scale · beta_end``,
    scale = 1000 / T."""
    scale = 1000 / num_timesteps
    return np.linspace(scale * beta_start, scale * beta_end, num_timesteps, dtype=np.float64)


def betas_for_alpha_bar(
    num_timesteps: int, alpha_bar: Callable[[float], float], max_beta: float = MAX_BETA
) -> np.ndarray:
    """(T,) float64 betas that discretize a continuous ``ᾱ(s)``, s in [0, 1]:
    ``beta_t = min(1 − ᾱ((t + 1)/T) / ᾱ(t/T), max_beta)``."""
    betas = [
        min(1 - alpha_bar((t + 1) / num_timesteps) / alpha_bar(t / num_timesteps), max_beta)
        for t in range(num_timesteps)
    ]
    return np.asarray(betas, dtype=np.float64)


def _cosine_alpha_bar(s: float) -> float:
    return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2


def cosine_betas(num_timesteps: int) -> np.ndarray:
    """(T,) float64 betas of improved DDPM's cosine ᾱ (largest beta 0.999)."""
    return betas_for_alpha_bar(num_timesteps, _cosine_alpha_bar)


def named_betas(
    name: str, num_timesteps: int, *, beta_start: float = 1e-4, beta_end: float = 0.02
) -> np.ndarray:
    """The (T,) float64 betas of the schedule ``name`` (``linear`` or ``cosine``).

    ``beta_start`` and ``beta_end`` are the 1000-step ends of the linear schedule; the cosine schedule
    ignores them.

    Raises:
        ValueError: for an unknown name or T < 1.
    """
    if num_timesteps < 1:
        raise ValueError(f"num_timesteps must be >= 1, got {num_timesteps}")
    if name == "linear":
        return linear_betas(num_timesteps, beta_start, beta_end)
    if name == "cosine":
        return cosine_betas(num_timesteps)
    raise ValueError(f"unknown beta schedule {name!r}; choose one of {', '.join(BETA_SCHEDULES)}")
