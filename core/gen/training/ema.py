"""Moving averages of the weights, updated with foreach kernels: exponential EMAs (a fixed decay each)
and power-function EMAs (EDM2; a length σ_rel each, whose decay depends on the step).

A power EMA of exponent γ (`gen.power_ema.exponent_of`) takes the decay ``(1 − 1/t)^(γ + 1)`` at
update t, so its value depends on how many updates were made: `EMA.steps` counts them, and a
resume sets it to the checkpoint's step (`gen.training.checkpointing.TrainingState`).

Under FSDP the averages are sharded like the parameters they follow (each rank averages its shard);
`EMA.state_dict` gathers them whole.
"""

from __future__ import annotations

import torch
from torch import nn

from gen.power_ema import EmaKey, EmaLength, exponent_of, power_beta
from gen.training.sharding import gather_state, shard_like


class EMA:
    """Keeps ``ema <- beta * ema + (1 - beta) * param`` for each EMA, over the trainable parameters.

    ``beta`` is the decay of an exponential EMA, and ``(1 − 1/t)^(γ + 1)`` at update t for a power EMA.

    Args:
        model: The (unwrapped) model whose parameters are averaged.
        decays: Exponential EMA decays, e.g. (0.9999, 0.9996) as in JiT.
        lengths: Power EMA lengths σ_rel, e.g. (0.05, 0.10) as in EDM2.
    """

    def __init__(self, model: nn.Module, decays: tuple[float, ...], lengths: tuple[float, ...] = ()):
        self.decays = tuple(float(d) for d in decays)
        self.lengths = tuple(float(s) for s in lengths)
        self.exponents = tuple(exponent_of(s) for s in self.lengths)
        #: Every EMA by what names its weights: the decays, then the power EMAs (``shadows`` in this order).
        self.keys: tuple[EmaKey, ...] = (*self.decays, *(EmaLength(s) for s in self.lengths))
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        params = [p for p in model.parameters() if p.requires_grad]
        self.shadows: list[list[torch.Tensor]] = [[p.detach().clone() for p in params] for _ in self.keys]
        #: Updates made so far: the time of the power EMAs' profiles.
        self.steps = 0

    @torch.no_grad()
    def update(self, model: nn.Module, keep: torch.Tensor | None = None) -> None:
        """One EMA step toward the model's parameters; ``keep`` (a 0-dim device tensor, 0 or 1) skips it
        on the device where the step's update was skipped (no host synchronisation)."""
        params = [p.detach() for p in model.parameters() if p.requires_grad]
        self.steps += 1
        betas = [*self.decays, *(power_beta(self.steps, g) for g in self.exponents)]
        for beta, shadow in zip(betas, self.shadows, strict=True):
            # lerp(ema, p, 1 - beta) = ema + (1 - beta) * (p - ema) = beta * ema + (1 - beta) * p
            torch._foreach_lerp_(shadow, params, (1.0 - beta) if keep is None else keep * (1.0 - beta))

    def index(self, key: EmaKey) -> int:
        """The position of the EMA named ``key`` in `keys`."""
        return self.keys.index(key)

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
