"""The contract of a loss term (a registered ``loss_term``): an extra term of the training loss.

A recipe adds any number of terms (``[[loss_terms]]``: a registered ``name``, a ``weight``, the
``t_range`` where it applies, and the term's own options). The engine builds each term once, calls its
`LossTerm.setup` with the backbone before training (a term builds what depends on the model there,
and returns its trainable parts, which the engine trains beside the backbone), then, at every training
forward, hands it a `TermView` of the batch and adds ``weight × value`` to the process's per-sample
loss where ``t`` lies in ``t_range``. `gen_losses` ships ``repa``, ``lpips`` and ``convnext_perceptual``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import attrs
import torch
from torch import Tensor, nn


@attrs.frozen(kw_only=True)
class TermView:
    """What a loss term sees of one training micro-batch.

    Attributes:
        x: (B, ...) the clean samples, in the model's space (pixels in [-1, 1], or latents).
        z: (B, ...) the noisy input the backbone was given.
        t: (B,) each sample's time in [0, 1], 0 = noise, 1 = data (the process's ``stats["t"]``).
        x_hat: (B, ...) the process's prediction of ``x`` (with grad: a term on it trains the backbone).
        condition: The batch's condition (`gen.Condition`, after label dropping).
        hidden: Backbone submodule name (``blocks.3``) -> its output in this forward, with grad, for the
            names the terms ask for (`LossTerm.layers`); (B, T, D) tokens for JiT's and DiT's blocks.
    """

    x: Tensor
    z: Tensor
    t: Tensor
    x_hat: Tensor
    condition: Any
    hidden: Mapping[str, Tensor] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class TermSetup:
    """What a loss term is told before training (`LossTerm.setup`).

    Attributes:
        backbone: The backbone (unwrapped): a term reads the shapes it needs from it (JiT's and DiT's
            ``config.hidden_size`` and ``patch_size``), and must not change it.
        shape: The shape of one sample in the model's space, (C, H, W) or (D,).
        device: Where training runs: frozen networks go there.
        key: The recipe key of the term's table (``loss_terms.0``), for error lines.
    """

    backbone: nn.Module
    shape: tuple[int, ...]
    device: torch.device
    key: str = "loss_terms"


@runtime_checkable
class LossTerm(Protocol):
    """A loss term: ``factory(config)`` returns one.

    Attributes:
        layers: Names of backbone submodules (``blocks.3``) whose outputs the term reads from
            `TermView.hidden`; ``()`` for none. Only asked-for layers are recorded: no cost otherwise.
    """

    layers: tuple[str, ...]

    def setup(self, setup: TermSetup) -> nn.Module | None:
        """Build what depends on the model and load frozen networks (on ``setup.device``, eval mode,
        ``requires_grad_(False)``); return the term's trainable parts (a projector), or None.

        The trainable parts are trained with the backbone (same optimizer, learning rate and clipping),
        saved in checkpoints apart from its weights (``loss_terms.safetensors``) and resumed exactly;
        they are not in the EMAs nor in what ``gen sample`` and ``gen export`` read. Frozen networks
        must not be among them. A missing or damaged file is one `gen.GenError` line naming it.
        """
        ...

    def __call__(self, view: TermView) -> Tensor:
        """The term's value per sample, (B,), with grad through ``view.x_hat`` or ``view.hidden``."""
        ...


__all__ = ["LossTerm", "TermSetup", "TermView"]
