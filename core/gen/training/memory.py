"""Activation checkpointing: trade compute for memory in the transformer blocks.

``train.activation_checkpointing = "blocks"`` keeps only each block's input during the forward pass and
recomputes the block in the backward pass (``torch.utils.checkpoint``, non-reentrant, the RNG state
replayed so dropout draws the same), so activation memory no longer grows with depth: a larger
micro-batch fits (JiT-G and DiT-XL). ``"attention"`` recomputes only the attention of each block (its
softmax-sized intermediates). The gradients are the same bit for bit; the cost is one more forward of
what is recomputed (about +33% step time for ``blocks``).

A backbone opts in by holding its blocks in an ``nn.ModuleList`` named ``blocks`` (JiT and DiT do),
each with an ``attn`` sub-module for ``"attention"``.
"""

from __future__ import annotations

from typing import Any, Literal

from torch import nn
from torch.utils.checkpoint import checkpoint

from gen.errors import GenError

Checkpointing = Literal["none", "blocks", "attention"]


def _recompute_in_backward(module: nn.Module) -> None:
    forward = module.forward

    def checkpointed(*args: Any, **kwargs: Any) -> Any:
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)

    module.forward = checkpointed  # an instance attribute: the state dict's names do not change


def checkpoint_activations(model: nn.Module, mode: str, *, backbone: str = "the backbone") -> int:
    """Checkpoint ``model``'s blocks (or their attention) as ``mode`` says; returns how many modules.

    Raises:
        GenError: when the backbone has no ``blocks`` (or, for ``attention``, no ``attn`` in them).
    """
    if mode == "none":
        return 0
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
        raise GenError(
            f"train.activation_checkpointing = {mode!r}: backbone {backbone} has no `blocks` (an "
            "nn.ModuleList of transformer blocks) to checkpoint; set it to 'none'"
        )
    targets = list(blocks) if mode == "blocks" else [getattr(b, "attn", None) for b in blocks]
    if any(t is None for t in targets):
        raise GenError(
            f"train.activation_checkpointing = 'attention': the blocks of backbone {backbone} have no "
            "`attn` module; use 'blocks' or 'none'"
        )
    for module in targets:
        _recompute_in_backward(module)
    return len(targets)


__all__ = ["Checkpointing", "checkpoint_activations"]
