"""Sampling time grids: where the solver's steps fall between t = 0 (noise) and t = 1 (data).

Each is a callable ``grid(steps) -> t`` with ``t`` the (steps + 1,) float64 times, ``t_0 = 0``,
``t_N = 1``, strictly increasing. On the linear path ``z_t = t x + (1 - t) eps`` the signal-to-noise
ratio is ``SNR(t) = t^2 / (1 - t)^2`` (``logit t = log(t / (1 - t))`` is half the log-SNR).
"""

from __future__ import annotations

import math

import attrs
import torch
from attrs import validators as v
from torch import Tensor

import gen

__all__ = [
    "DensityGrid",
    "DensityGridConfig",
    "EDMGrid",
    "EDMGridConfig",
    "ListGrid",
    "ListGridConfig",
    "ShiftedGrid",
    "ShiftedGridConfig",
    "linear",
    "shift_time",
]


def linear(steps: int) -> Tensor:
    """t_i = i / N: the grid of published JiT."""
    return torch.arange(steps + 1, dtype=torch.float64) / steps


def shift_time(t: Tensor, shift: float) -> Tensor:
    """The SNR shift of SD3 (Esser et al., 2024, eq. 23) and Simple Diffusion (Hoogeboom et al., 2023):
    ``t' = t / (t + shift (1 - t))``.

    In noise level sigma = 1 - t this is SD3's ``sigma' = shift sigma / (1 + (shift - 1) sigma)``, and it
    divides the SNR by ``shift^2``: ``logit t' = logit t - log shift``. ``shift > 1`` moves every time
    toward the noise end (larger images need more noise for the same difficulty); 0 and 1 stay put.
    """
    return t / (t + shift * (1 - t))


@attrs.frozen(kw_only=True)
class ShiftedGridConfig:
    """Options of the ``shifted`` grid."""

    shift: float = gen.field(
        3.0, doc="SNR divided by shift^2 at every step (> 1: more steps at high noise).", validator=v.gt(0)
    )


class ShiftedGrid:
    """The linear grid through `shift_time`: ``t_i = u / (u + shift (1 - u))`` with ``u = i / N``."""

    def __init__(self, config: ShiftedGridConfig):
        self.shift = config.shift

    def __call__(self, steps: int) -> Tensor:
        return shift_time(linear(steps), self.shift)

    def __repr__(self) -> str:
        return f"ShiftedGrid(shift={self.shift})"


@attrs.frozen(kw_only=True)
class EDMGridConfig:
    """Options of the ``edm`` grid."""

    rho: float = gen.field(7.0, doc="EDM's rho: larger puts more steps near the data end.", validator=v.gt(0))
    sigma_min: float = gen.field(
        0.002, doc="Smallest noise-to-signal ratio (1 - t) / t before t = 1.", validator=v.gt(0)
    )
    sigma_max: float = gen.field(80.0, doc="Largest noise-to-signal ratio after t = 0.", validator=v.gt(0))

    def __attrs_post_init__(self):
        if self.sigma_min >= self.sigma_max:
            raise ValueError(f"sigma_min ({self.sigma_min}) must be below sigma_max ({self.sigma_max})")


class EDMGrid:
    """EDM's rho-spacing (Karras et al., 2022, eq. 5) on the linear path.

    EDM spaces its noise level ``sigma`` as ``sigma_i = (sigma_max^(1/rho) + i / (N - 1) (sigma_min^(1/rho)
    - sigma_max^(1/rho)))^rho``. On the linear path the same quantity is the noise-to-signal ratio
    ``sigma = (1 - t) / t``, so ``t = 1 / (1 + sigma)``. The N - 1 interior points of our grid take EDM's
    N - 1 spacing from sigma_max to sigma_min; the ends are pinned at t = 0 and t = 1 (sigma = inf, 0).
    """

    def __init__(self, config: EDMGridConfig):
        self.rho, self.sigma_min, self.sigma_max = config.rho, config.sigma_min, config.sigma_max

    def __call__(self, steps: int) -> Tensor:
        if steps == 1:
            return linear(1)
        u = torch.arange(steps - 1, dtype=torch.float64) / max(steps - 2, 1)  # (N - 1,) in [0, 1]
        a, b = self.sigma_max ** (1 / self.rho), self.sigma_min ** (1 / self.rho)
        sigma = (a + u * (b - a)) ** self.rho  # (N - 1,) from sigma_max down to sigma_min
        inner = 1 / (1 + sigma)
        return torch.cat([torch.zeros(1, dtype=torch.float64), inner, torch.ones(1, dtype=torch.float64)])

    def __repr__(self) -> str:
        return f"EDMGrid(rho={self.rho}, sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"


def _points(instance, attribute, value):  # noqa: ANN001, ARG001
    if len(value) < 2 or value[0] != 0.0 or value[-1] != 1.0:
        raise ValueError(f"must start at 0 and end at 1, got {list(value)}")
    if any(b <= a for a, b in zip(value, value[1:], strict=False)):
        raise ValueError(f"must increase strictly, got {list(value)}")
    if any(not math.isfinite(p) for p in value):
        raise ValueError(f"must be finite, got {list(value)}")


@attrs.frozen(kw_only=True)
class ListGridConfig:
    """Options of the ``list`` grid."""

    points: tuple[float, ...] = gen.field(
        (0.0, 1.0),
        doc="The times, from 0 to 1, strictly increasing; steps must be len(points) - 1.",
        validator=_points,
    )


class ListGrid:
    """A grid given as a list of times (e.g. one found by a search); it has exactly ``len - 1`` steps."""

    def __init__(self, config: ListGridConfig):
        self.points = torch.tensor(config.points, dtype=torch.float64)

    def __call__(self, steps: int) -> Tensor:
        if steps != len(self.points) - 1:
            raise ValueError(f"the list has {len(self.points) - 1} steps; set steps = {len(self.points) - 1}")
        return self.points.clone()

    def __repr__(self) -> str:
        return f"ListGrid(points={self.points.tolist()})"


def _positive(instance, attribute, value):  # noqa: ANN001, ARG001
    if not value or any(not (math.isfinite(d) and d > 0) for d in value):
        raise ValueError(f"must be positive and finite, got {list(value)}")


@attrs.frozen(kw_only=True)
class DensityGridConfig:
    """Options of the ``density`` grid."""

    edges: tuple[float, ...] = gen.field(
        (0.0, 1.0), doc="Bin edges in t, from 0 to 1, strictly increasing.", validator=_points
    )
    density: tuple[float, ...] = gen.field(
        (1.0,),
        doc="Relative density of steps in each bin (len(edges) - 1 positive numbers).",
        validator=_positive,
    )

    def __attrs_post_init__(self):
        if len(self.density) != len(self.edges) - 1:
            raise ValueError(
                f"density has {len(self.density)} values for {len(self.edges) - 1} bins of edges; give one per bin"
            )


class DensityGrid:
    """Steps spread with a piecewise-constant density: ``t_i = F^-1(i / N)``, F the piecewise-linear
    CDF with ``F'(t) ∝ density[k]`` on ``[edges[k], edges[k + 1])``.

    One description for every number of steps (unlike a ``list``), as "Align Your Steps" (Sabour et al.,
    2024) carries an optimised schedule to other step counts by interpolation; ``benchmarks/sampling.py
    RUN --search N`` fits the densities to a trained model. Uniform densities give the linear grid.
    """

    def __init__(self, config: DensityGridConfig):
        edges = torch.tensor(config.edges, dtype=torch.float64)
        mass = torch.tensor(config.density, dtype=torch.float64) * edges.diff()  # (K,)
        self.edges, self.cdf = (
            edges,
            torch.cat([torch.zeros(1, dtype=torch.float64), mass.cumsum(0) / mass.sum()]),
        )

    def __call__(self, steps: int) -> Tensor:
        u = linear(steps)  # (N + 1,) quantiles
        k = torch.searchsorted(self.cdf, u, right=True).clamp(1, len(self.edges) - 1) - 1  # (N + 1,) bin
        frac = (u - self.cdf[k]) / (self.cdf[k + 1] - self.cdf[k])
        t = self.edges[k] + frac * (self.edges[k + 1] - self.edges[k])
        t[0], t[-1] = 0.0, 1.0  # exact ends, whatever the rounding of the CDF
        return t

    def __repr__(self) -> str:
        return f"DensityGrid(edges={self.edges.tolist()}, cdf={self.cdf.tolist()})"
