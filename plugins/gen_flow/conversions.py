"""Plain conversions between the three views of the linear path (flow-matching style names).

The path joins noise (t = 0) to data (t = 1)::

    z_t = t * x + (1 - t) * eps        v = dz_t/dt = x - eps

so any one of x, eps, v determines the other two given (z_t, t). Two of the six conversions divide: by
``1 - t`` (which vanishes at the data end) and by ``t`` (which vanishes at the noise end). Those divisors
are clamped at ``t_eps`` exactly as the published JiT code does (``(1 - t).clamp_min(t_eps)``), so that
the velocity of an x-prediction stays finite near t = 1.

Every function takes ``t`` broadcastable to ``z``: a float, or a tensor of shape (B, 1, ..., 1).
"""

from __future__ import annotations

from torch import Tensor

__all__ = [
    "interpolate",
    "velocity",
    "x_from_eps",
    "x_from_v",
    "eps_from_x",
    "eps_from_v",
    "v_from_x",
    "v_from_eps",
]


def _clamp(s: Tensor | float, t_eps: float) -> Tensor | float:
    """max(s, t_eps) for a tensor or a float."""
    return s.clamp_min(t_eps) if isinstance(s, Tensor) else max(s, t_eps)


def interpolate(x: Tensor, eps: Tensor, t: Tensor | float) -> Tensor:
    """z_t = t * x + (1 - t) * eps: the point of the path at time t (0 = noise, 1 = data)."""
    return t * x + (1 - t) * eps


def velocity(x: Tensor, eps: Tensor) -> Tensor:
    """v = x - eps: the time derivative of the path (the same at every t)."""
    return x - eps


def x_from_eps(eps: Tensor, z: Tensor, t: Tensor | float, t_eps: float = 0.05) -> Tensor:
    """x = (z - (1 - t) * eps) / max(t, t_eps)."""
    return (z - (1 - t) * eps) / _clamp(t, t_eps)


def x_from_v(v: Tensor, z: Tensor, t: Tensor | float) -> Tensor:
    """x = z + (1 - t) * v (no division)."""
    return z + (1 - t) * v


def eps_from_x(x: Tensor, z: Tensor, t: Tensor | float, t_eps: float = 0.05) -> Tensor:
    """eps = (z - t * x) / max(1 - t, t_eps)."""
    return (z - t * x) / _clamp(1 - t, t_eps)


def eps_from_v(v: Tensor, z: Tensor, t: Tensor | float) -> Tensor:
    """eps = z - t * v (no division)."""
    return z - t * v


def v_from_x(x: Tensor, z: Tensor, t: Tensor | float, t_eps: float = 0.05) -> Tensor:
    """v = (x - z) / max(1 - t, t_eps): JiT's velocity of an x-prediction."""
    return (x - z) / _clamp(1 - t, t_eps)


def v_from_eps(eps: Tensor, z: Tensor, t: Tensor | float, t_eps: float = 0.05) -> Tensor:
    """v = (z - eps) / max(t, t_eps)  (since z - eps = t * (x - eps))."""
    return (z - eps) / _clamp(t, t_eps)
