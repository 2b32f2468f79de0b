"""Exponential moving averages of the weights, any number of decays, updated with foreach kernels."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """Keeps ``ema <- decay * ema + (1 - decay) * param`` for each decay, over the trainable parameters.

    Args:
        model: The (unwrapped) model whose parameters are averaged.
        decays: EMA decays, e.g. (0.9999, 0.9996) as in JiT.
    """

    def __init__(self, model: nn.Module, decays: tuple[float, ...]):
        self.decays = tuple(float(d) for d in decays)
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        params = [p for p in model.parameters() if p.requires_grad]
        self.shadows: list[list[torch.Tensor]] = [[p.detach().clone() for p in params] for _ in self.decays]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        params = [p.detach() for p in model.parameters() if p.requires_grad]
        for decay, shadow in zip(self.decays, self.shadows, strict=True):
            # lerp(ema, p, 1 - decay) = ema + (1 - decay) * (p - ema) = decay * ema + (1 - decay) * p
            torch._foreach_lerp_(shadow, params, 1.0 - decay)

    def state_dict(self, index: int, model: nn.Module) -> dict[str, torch.Tensor]:
        """A full state dict of ``model`` with EMA ``index``'s parameters (buffers from the model)."""
        state = {k: v.detach() for k, v in model.state_dict().items()}
        state.update(dict(zip(self.names, self.shadows[index], strict=True)))
        return state

    def load(self, index: int, state: dict[str, torch.Tensor]) -> None:
        for name, shadow in zip(self.names, self.shadows[index], strict=True):
            shadow.copy_(state[name])

    def name(self, index: int) -> str:
        return f"ema_{self.decays[index]}"
