"""Training-time schedules: how t is drawn for each training sample."""

from __future__ import annotations

import attrs
import torch
from attrs import validators as v
from torch import Tensor

import gen

__all__ = ["LogitNormalConfig", "LogitNormal", "Uniform"]


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


class LogitNormal:
    """t = sigmoid(mean + std * n), n ~ N(0, 1) (Esser et al., 2024; JiT uses mean -0.8, std 0.8).

    A negative mean puts more training on the noisy end (small t).
    """

    def __init__(self, config: LogitNormalConfig):
        self.mean = config.mean
        self.std = config.std

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """(n,) times in (0, 1)."""
        return torch.sigmoid(_draw("randn", n, generator, device) * self.std + self.mean)  # (n,)

    def __repr__(self) -> str:
        return f"LogitNormal(mean={self.mean}, std={self.std})"


class Uniform:
    """t ~ U(0, 1) (the rectified-flow default)."""

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """(n,) times in [0, 1)."""
        return _draw("rand", n, generator, device)  # (n,)

    def __repr__(self) -> str:
        return "Uniform()"
