"""What the objective and the sampling driver expect of registered predictions, schedules and solvers.

All three work on the linear path ``z_t = t * x + (1 - t) * eps`` (t = 0 noise, t = 1 data), whose
velocity is ``v = x - eps``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

#: The three quantities a prediction can produce, and so the three loss spaces.
Space = Literal["x", "eps", "v"]
SPACES: tuple[str, ...] = ("x", "eps", "v")

#: ``velocity_fn(z, t) -> v``: ``z`` of shape (B, ...), ``t`` a float or a 0-dim tensor, ``v`` shaped like z.
VelocityFn = Callable[[Tensor, "Tensor | float"], Tensor]

#: A registered sampler: ``solver(velocity_fn, z0, timesteps) -> z1`` where ``timesteps`` is the 1-D
#: grid from 0 (noise, ``z0``) to 1 (data, the returned ``z1``).
Solver = Callable[[VelocityFn, Tensor, Tensor], Tensor]


@runtime_checkable
class Prediction(Protocol):
    """A parameterization of the network output (a registered ``prediction``: x, eps, v, ...).

    Each method maps the network output ``out`` at ``(z, t)`` to one quantity of the path. ``out`` and
    ``z`` have shape (B, ...); ``t`` is broadcastable to them: a float or a tensor of shape
    (B, 1, ..., 1). Divisions by ``1 - t`` or ``t`` are clamped at ``t_eps``.
    """

    def to_x(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        """x̂: the clean sample."""
        ...

    def to_eps(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        """ε̂: the noise."""
        ...

    def to_v(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        """v̂: the velocity dz/dt."""
        ...

    def target(self, x: Tensor, eps: Tensor) -> Tensor:
        """What a perfect network outputs for the pair (x, eps): x, eps or x - eps."""
        ...


def convert(
    prediction: Prediction, space: str, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float
) -> Tensor:
    """``prediction.to_<space>(out, z, t, t_eps=t_eps)`` for ``space`` in x, eps, v."""
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}; expected one of {', '.join(SPACES)}")
    return getattr(prediction, f"to_{space}")(out, z, t, t_eps=t_eps)


@runtime_checkable
class Schedule(Protocol):
    """How training draws t (a registered ``schedule``)."""

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """``n`` times in (0, 1), shape (n,), float32 on ``device``; all randomness from ``generator``."""
        ...


__all__ = ["SPACES", "Prediction", "Schedule", "Solver", "Space", "VelocityFn", "convert"]
