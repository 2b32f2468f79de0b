"""AdamW with JiT's parameter groups, and the learning-rate schedule (warm-up, then constant or cosine)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from gen.train_config import TrainConfig


class TrainedParameters:
    """The parameters one optimizer trains: the backbone's under their own names, and the loss terms'
    trainable parts (`gen.training.loss_terms`) under ``loss_terms.``, after them, so that the optimizer's
    state in a checkpoint stays keyed by name. Not a module: the backbone's state dict is untouched.

    Args:
        backbone: The backbone.
        terms: The terms' trainable parts (an ``nn.ModuleDict`` by term name).
    """

    PREFIX = "loss_terms"

    def __init__(self, backbone: nn.Module, terms: nn.Module):
        self.backbone, self.terms = backbone, terms

    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        yield from self.backbone.named_parameters()
        yield from self.terms.named_parameters(prefix=self.PREFIX)

    def parameters(self) -> Iterator[nn.Parameter]:
        for _, p in self.named_parameters():
            yield p


def param_groups(model: nn.Module | TrainedParameters, weight_decay: float) -> list[dict]:
    """Two groups: weights that decay, and biases, norms and embeddings-of-one-dim that never do.

    As in the published JiT/MAE code, every parameter with fewer than two dimensions (biases, norm
    scales) is excluded from weight decay.
    """
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module | TrainedParameters, config: TrainConfig, lr: float) -> torch.optim.AdamW:
    # Fused (CUDA and CPU): one kernel per group, and it honours `found_inf`, which is how the engine
    # skips a non-finite step on the device instead of asking the host (training/stats.py UpdateGuard).
    return torch.optim.AdamW(param_groups(model, config.weight_decay), lr=lr, betas=config.betas, fused=True)


def peak_lr(config: TrainConfig) -> float:
    """``lr`` if set, else ``blr * global_batch / 256`` (the linear scaling rule of the JiT code)."""
    return config.lr if config.lr is not None else config.blr * config.global_batch / 256


def lr_at(step: int, *, peak: float, warmup: int, total: int, schedule: str, min_lr: float = 0.0) -> float:
    """The learning rate of optimizer step ``step`` (0-based).

    Linear warm-up from ``peak / warmup`` at step 0 to ``peak`` at step ``warmup - 1``, then constant or
    a half-cosine from ``peak`` down to ``min_lr`` at ``total``.
    """
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + (peak - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
