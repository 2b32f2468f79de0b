"""Exponential moving averages of the weights, any number of decays, updated with foreach kernels.

Under FSDP the averages are sharded like the parameters they follow (each rank averages its shard);
:meth:`EMA.state_dict` gathers them whole.
"""

from __future__ import annotations

import torch
from torch import nn

from gen.training.sharding import gather_state, shard_like


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
    def update(self, model: nn.Module, keep: torch.Tensor | None = None) -> None:
        """One EMA step toward the model's parameters; ``keep`` (a 0-dim device tensor, 0 or 1) skips it
        on the device where the step's update was skipped (no host synchronisation)."""
        params = [p.detach() for p in model.parameters() if p.requires_grad]
        for decay, shadow in zip(self.decays, self.shadows, strict=True):
            # lerp(ema, p, 1 - decay) = ema + (1 - decay) * (p - ema) = decay * ema + (1 - decay) * p
            weight = 1.0 - decay if keep is None else keep * (1.0 - decay)
            torch._foreach_lerp_(shadow, params, weight)

    def state_dict(self, index: int, model: nn.Module, keep: bool = True) -> dict[str, torch.Tensor]:
        """A full state dict of ``model`` on the CPU with EMA ``index``'s parameters (buffers from the model).

        A collective when the model is sharded (every rank calls it); ranks that do not ``keep`` get {}.
        """
        averaged = dict(zip(self.names, self.shadows[index], strict=True))
        state = {k: averaged.get(k, v) for k, v in model.state_dict().items()}
        return gather_state(state, keep)

    @torch.no_grad()
    def load(self, index: int, state: dict[str, torch.Tensor]) -> None:
        """Set EMA ``index`` from a full state dict (each rank takes its shard)."""
        for name, shadow in zip(self.names, self.shadows[index], strict=True):
            shadow.copy_(shard_like(state[name], shadow))
