"""MeanFlow's sampler: the multi-step rule of the average velocity (one evaluation a step)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

__all__ = ["mean_flow_steps"]


def mean_flow_steps(u: Callable[[Tensor, Tensor, Tensor], Tensor], z0: Tensor, timesteps: Tensor) -> Tensor:
    """``z_{i+1} = z_i + (t_{i+1} - t_i) U(z_i, t_i, t_{i+1})`` from t_0 = 0 to t_N = 1.

    MeanFlow (Geng et al., 2025, Alg. 2 and eq. 12; ``sample_one_step`` of the MF, iMF and pMF code,
    there ``z_r = z_t - (t - r) u`` in the papers' reversed time). One step is ``z_1 = z_0 + U(z_0, 0, 1)``.

    Args:
        u: The average velocity ``U(z, t, t_end)``: z (B, ...), t and t_end (B,) -> (B, ...).
        z0: (B, ...) start noise at t = 0.
        timesteps: (N + 1,) increasing times from 0 to 1 (on the CPU; read as numbers).

    Returns:
        (B, ...) the samples at t = 1.
    """
    z = z0
    n = z.shape[0]
    for i in range(len(timesteps) - 1):
        t = timesteps[i].to(z.device).expand(n)  # (B,)
        t_end = timesteps[i + 1].to(z.device).expand(n)  # (B,)
        z = z + (timesteps[i + 1] - timesteps[i]) * u(z, t, t_end)
    return z
