"""Time grids as sampling uses them: a registered grid's times, checked.

A registered ``time_grid`` is ``grid(steps) -> t``, the (steps + 1,) float64 times from 0 (noise) to 1
(data), strictly increasing (`gen.TimeGrid`); the processes decide what they integrate over them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gen.components import ComponentSpec, build_component
from gen.protocols import TimeGrid


def check_grid(t: Tensor, steps: int) -> Tensor:
    """``t`` when it is a valid grid of ``steps`` steps: (steps + 1,), from 0 to 1, strictly increasing."""
    if t.ndim != 1 or t.shape[0] != steps + 1:
        raise ValueError(f"the grid has {t.shape[0] - 1 if t.ndim == 1 else t.shape} steps, not {steps}")
    if float(t[0]) != 0.0 or float(t[-1]) != 1.0:
        raise ValueError(f"a grid runs from 0 to 1, this one from {float(t[0])} to {float(t[-1])}")
    if not bool((t[1:] > t[:-1]).all()):
        raise ValueError("the grid's times must increase strictly")
    return t


def grid_times(grid: TimeGrid | str | ComponentSpec, steps: int) -> Tensor:
    """The (steps + 1,) float64 times of ``grid`` (a callable, a registered name or a ComponentSpec),
    checked (`check_grid`)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    fn = grid if callable(grid) else build_component("time_grid", grid)
    return check_grid(torch.as_tensor(fn(steps), dtype=torch.float64), steps)


def time_grid(steps: int, *, device: Any = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """(steps + 1,) linear grid t_i = i / steps from 0 (noise) to 1 (data)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return (torch.arange(steps + 1, dtype=torch.float64) / steps).to(device=device, dtype=dtype)


__all__ = ["check_grid", "grid_times", "time_grid"]
