"""Training-time schedules: how t is drawn for each training sample."""

from __future__ import annotations

import attrs
import torch
from attrs import validators as v
from torch import Tensor

import gen
from gen_flow.grids import shift_time

__all__ = ["LogitNormal", "LogitNormalConfig", "Uniform", "UniformConfig"]

SHIFT_DOC = (
    "Divide the SNR of every drawn t by shift^2: t -> t / (t + shift (1 - t)) (SD3, Simple Diffusion); "
    "1 = off. See docs/sampling.md for how it relates to objective.noise_scale."
)


def _draw(draw: str, n: int, generator: torch.Generator | None, device: torch.device | str | None) -> Tensor:
    """``torch.randn``/``torch.rand`` of shape (n,) on the generator's device, then moved to ``device``.

    Drawing where the generator lives lets a CPU generator drive CUDA training (and gives the same
    numbers on every device).
    """
    where = generator.device if generator is not None else device
    fn = torch.randn if draw == "randn" else torch.rand
    return fn(n, generator=generator, device=where).to(device)


@attrs.frozen(kw_only=True)
class LogitNormalConfig:
    """Options of the ``logit_normal`` schedule."""

    mean: float = gen.field(-0.8, doc="Mean of the normal before the sigmoid (JiT: -0.8).")
    std: float = gen.field(0.8, doc="Std of the normal before the sigmoid (JiT: 0.8).", validator=v.gt(0))
    shift: float = gen.field(1.0, doc=SHIFT_DOC, validator=v.gt(0))


class LogitNormal:
    """t = sigmoid(mean + std * n), n ~ N(0, 1) (Esser et al., 2024; JiT uses mean -0.8, std 0.8).

    A negative mean puts more training on the noisy end (small t). A ``shift`` s moves every t by
    `gen_flow.grids.shift_time`, which subtracts log s from logit t: logit-normal (mean, std) with
    shift s is logit-normal (mean - log s, std).
    """

    def __init__(self, config: LogitNormalConfig):
        self.mean = config.mean
        self.std = config.std
        self.shift = config.shift

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """(n,) times in (0, 1)."""
        t = torch.sigmoid(_draw("randn", n, generator, device) * self.std + self.mean)  # (n,)
        return t if self.shift == 1.0 else shift_time(t, self.shift)

    def __repr__(self) -> str:
        return f"LogitNormal(mean={self.mean}, std={self.std}, shift={self.shift})"


@attrs.frozen(kw_only=True)
class UniformConfig:
    """Options of the ``uniform`` schedule."""

    shift: float = gen.field(1.0, doc=SHIFT_DOC, validator=v.gt(0))


class Uniform:
    """t ~ U(0, 1) (the rectified-flow default), then shifted by ``shift`` when it is not 1: the density
    of t' is ``s / (t' + s (1 - t'))^2`` on (0, 1)."""

    def __init__(self, config: UniformConfig | None = None):
        self.shift = config.shift if config is not None else 1.0

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """(n,) times in [0, 1)."""
        t = _draw("rand", n, generator, device)  # (n,)
        return t if self.shift == 1.0 else shift_time(t, self.shift)

    def __repr__(self) -> str:
        return f"Uniform(shift={self.shift})"
