"""``mode``: the "mode sampling with heavy tails" time schedule of Stable Diffusion 3 (Esser et al., 2024).

With u ~ U(0, 1), SD3 draws its noise level ``f(u) = 1 - u - s (cos²(π u / 2) - 1 + u)``; in gen's
convention (t = 1 is data) that is ``t = 1 - f(u)``. ``scale`` s = 0 is the uniform schedule, s > 0
puts more training at intermediate times and s < 0 more at both ends; s must lie in
[-1, 2 / (π - 2)] for the map to be monotone.
"""

from __future__ import annotations

import math

import attrs
import gen
import torch
from attrs import validators as v
from torch import Tensor

#: Times are kept in the open interval (0, 1): the objective divides by t and 1 - t.
T_MARGIN = 1e-5


# --8<-- [start:schedule]
@attrs.frozen(kw_only=True)
class ModeConfig:
    """Options of the ``mode`` schedule."""

    scale: float = gen.field(
        1.29,
        doc="Heavy-tail scale s (SD3 uses 1.29); 0 = uniform; within [-1, 2/(pi-2)].",
        validator=[v.ge(-1.0), v.le(2.0 / (math.pi - 2.0))],
    )


class ModeSchedule:
    """t = 1 - f(u), f(u) = 1 - u - scale (cos²(π u / 2) - 1 + u), u ~ U(0, 1)."""

    def __init__(self, config: ModeConfig):
        self.scale = config.scale

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """(n,) float32 times in (0, 1), all randomness from ``generator``.

        ``u`` is drawn where the generator lives, then moved to ``device`` (a CPU
        generator can drive training on a GPU and gives the same times on every device).
        """
        where = generator.device if generator is not None else device
        # (n,) each: u ~ U(0, 1), SD3's noise level f(u), and t = 1 - f(u)
        u = torch.rand(n, generator=generator, device=where, dtype=torch.float64)
        f = 1 - u - self.scale * (torch.cos(math.pi * u / 2) ** 2 - 1 + u)
        t = (1 - f).clamp(T_MARGIN, 1 - T_MARGIN)
        return t.to(device=device, dtype=torch.float32)

    def __repr__(self) -> str:
        return f"ModeSchedule(scale={self.scale})"


# --8<-- [end:schedule]


def build_mode(config: ModeConfig) -> ModeSchedule:
    """SD3's mode sampling with heavy tails: more training at intermediate times (scale > 0)."""
    return ModeSchedule(config)
