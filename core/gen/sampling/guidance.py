"""Guidance shared by every process: the interval rule, the guidance formula and the guiding model.

- `guidance_scale`: the scale at time t of an interval, as the published JiT code decides it;
- `extrapolate`: ``weak + s (strong - weak)``, classifier-free guidance (weak = the unconditional pass;
  Ho & Salimans, 2022) and autoguidance (weak = a worse model of the same data; Karras et al., 2024);
- `Guidance`: the guiding model of autoguidance as ``[sample]`` names it (the ``guide_*`` keys);
- `Guide`: that model loaded, with its own process (which may predict another quantity).

How a process applies them (to a velocity, to DDPM's ε) is the process's own.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor


def guidance_scale(t: Tensor | float, cfg: float, cfg_interval: tuple[float, float]) -> float:
    """The guidance scale at time t (0 = noise, 1 = data): ``cfg`` when ``t < high and (low == 0 or
    t > low)``, else 1.

    A tensor ``t`` is compared in its own dtype, exactly as the reference code compares its float32 grid.
    """
    low, high = cfg_interval
    t = torch.as_tensor(t)
    inside = bool((t < high) & ((low == 0) | (t > low)))
    return float(cfg) if inside else 1.0


def extrapolate(weak: Tensor, strong: Tensor, scale: float) -> Tensor:
    """``weak + scale * (strong - weak)``: guidance away from ``weak`` (B, ...), past ``strong`` (B, ...)
    for ``scale > 1``; ``scale = 1`` is ``strong``."""
    return weak + scale * (strong - weak)


@attrs.frozen
class Guidance:
    """The guiding model of autoguidance, as ``[sample]`` names it (see `gen.SampleConfig`)."""

    step: int | None = None
    ema: str = "default"
    run: str | None = None

    def describe(self) -> str:
        """``step 1000, ema 0.995``, ``runs/small step 2000, ema default``, ``this checkpoint, ema 0.99``."""
        where = (
            f"step {self.step}"
            if self.step is not None
            else "this checkpoint"
            if self.run is None
            else "latest"
        )
        return f"{self.run + ' ' if self.run else ''}{where}, ema {self.ema}"


@attrs.frozen
class Guide:
    """A guiding model for autoguidance: a backbone and the process it was trained with.

    Attributes:
        net: The guiding backbone ``net(z, t, y)`` (in eval mode, on the device of sampling).
        process: Its own recipe's process (a `gen.Process`, set up for its ``[objective]``), which says
            how its output becomes what the main process guides.
    """

    net: Any = attrs.field(eq=False)
    process: Any = attrs.field(eq=False)


__all__ = ["Guidance", "Guide", "extrapolate", "guidance_scale"]
