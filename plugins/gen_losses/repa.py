"""``repa``: representation alignment (REPA, Yu et al., 2024, arXiv 2410.06940; code ``sihyun-yu/REPA``).

The backbone's hidden tokens after its first ``layer`` blocks, h (B, N, D), go through a trained projector
MLP ``D → 2048 → 2048 → E`` with SiLU (REPA's ``build_mlp``), and are pulled towards a frozen encoder's
patch features y* (B, N, E) of the clean image x by a negative cosine similarity averaged over tokens
(REPA's ``proj_loss``)::

    repa(x) = - 1/N Σ_n  <h_φ(h_n), y*_n> / (‖h_φ(h_n)‖ ‖y*_n‖)        per sample, in [-1, 1]

The encoder is DINOv2 (any size: S, B, L/14) from a local weights file with DINOv2's parameter names,
fed as REPA does: x from [-1, 1] to [0, 1], ImageNet's normalisation, a bicubic resize to
``encoder_size`` (224 at 256 px: 16 × 16 patches). Its patch grid is resized (bilinear, antialiased)
to the backbone's token grid when they differ. The backbone's image tokens are its last
``(H / patch)·(W / patch)`` tokens (JiT's in-context tokens come first); its width and patch size are
read from JiT's and DiT's ``config.hidden_size`` and ``patch_size``.
"""

from __future__ import annotations

import math
from pathlib import Path

import attrs
import torch
import torch.nn.functional as F
from attrs import validators as v
from torch import Tensor, nn

import gen


@attrs.frozen(kw_only=True)
class RepaConfig:
    """Options of the ``repa`` loss term."""

    encoder_path: str | None = gen.field(
        None,
        doc="The frozen encoder: a local DINOv2 weights file (.pth or .safetensors, DINOv2's names; REPA: "
        "dinov2_vitb14_pretrain.pth).",
    )
    layer: int = gen.field(
        8,
        doc="Align the tokens after this many blocks (the output of blocks.{layer-1}; REPA's encoder_depth).",
        validator=v.ge(1),
    )
    encoder_size: int = gen.field(
        224, doc="The side images are resized to for the encoder (REPA: 224 per 256 px).", validator=v.ge(1)
    )
    projector_dim: int = gen.field(
        2048, doc="Hidden width of the projector MLP (REPA: 2048).", validator=v.ge(1)
    )

    def __attrs_post_init__(self):
        if self.encoder_path is None:
            raise ValueError("repa needs encoder_path: a local DINOv2 weights file (nothing is downloaded)")


class Projector(nn.Sequential):
    """REPA's projector: ``Linear(D, H), SiLU, Linear(H, H), SiLU, Linear(H, E)``, Xavier-uniform weights
    and zero biases (SiT's ``_basic_init``, which REPA's model applies to its projectors too)."""

    def __init__(self, width: int, hidden: int, out: int):
        super().__init__(
            nn.Linear(width, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, out)
        )
        for layer in self:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)


def negative_cosine(projected: Tensor, target: Tensor) -> Tensor:
    """REPA's ``proj_loss`` per sample: minus the cosine similarity of each token pair, averaged over tokens.

    Args:
        projected: (B, N, E) the projector's output.
        target: (B, N, E) the encoder's features (no gradient is taken through them).

    Returns:
        (B,) in [-1, 1], float32.
    """
    a = F.normalize(projected.float(), dim=-1)
    b = F.normalize(target.float(), dim=-1)
    return -(a * b).sum(-1).mean(-1)


def _resize_grid(tokens: Tensor, rows: int, cols: int) -> Tensor:
    """(B, M, E) tokens of a square grid -> (B, rows·cols, E), bilinear (antialiased) when it differs."""
    m = math.isqrt(tokens.shape[1])
    if (m, m) == (rows, cols):
        return tokens
    grid = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, m, m)  # (B, E, m, m)
    grid = F.interpolate(grid.float(), size=(rows, cols), mode="bilinear", antialias=True)
    return grid.flatten(2).transpose(1, 2).to(tokens.dtype)


def _backbone_shape(backbone: nn.Module, key: str) -> tuple[int, int]:
    """The backbone's token width and patch size (JiT's and DiT's ``config.hidden_size``, ``patch_size``)."""
    width = getattr(getattr(backbone, "config", None), "hidden_size", None)
    patch = getattr(backbone, "patch_size", None)
    if not isinstance(width, int) or not isinstance(patch, int):
        raise gen.GenError(
            f"{key}: repa reads the backbone's config.hidden_size and patch_size (JiT and DiT have them); "
            f"{type(backbone).__name__} lacks them"
        )
    return width, patch


class RepaTerm:
    """The ``repa`` loss term (`gen.LossTerm`); its trainable part is the projector."""

    def __init__(self, config: RepaConfig):
        self.config = config
        self.layers = (f"blocks.{config.layer - 1}",)
        self.encoder: gen.DINOv2ViT | None = None
        self.projector: Projector | None = None
        self.grid = (0, 0)

    def setup(self, setup: gen.TermSetup) -> nn.Module:
        """Load the frozen encoder (eval mode, no gradients) and build the projector for this backbone."""
        if len(setup.shape) != 3 or setup.shape[0] != 3:
            raise gen.GenError(
                f"{setup.key}: repa encodes RGB images, the model's samples are {tuple(setup.shape)}; latent "
                "models are not supported yet"
            )
        width, patch = _backbone_shape(setup.backbone, setup.key)
        try:
            encoder = gen.load_dinov2_encoder(Path(self.config.encoder_path), setup.device)
        except gen.GenError as e:
            raise gen.GenError(f"{setup.key}.encoder_path: {e}") from None
        self.encoder = encoder.requires_grad_(False).eval()
        self.grid = (setup.shape[1] // patch, setup.shape[2] // patch)
        self.projector = Projector(width, self.config.projector_dim, encoder.num_features)
        return self.projector

    def __call__(self, view: gen.TermView) -> Tensor:
        """(B,) negative cosine of the projected tokens to the encoder's patch features of ``view.x``."""
        hidden = view.hidden[self.layers[0]]  # (B, T, D), image tokens last
        rows, cols = self.grid
        tokens = hidden[:, hidden.shape[1] - rows * cols :]  # (B, N, D)
        with torch.no_grad():
            target = _resize_grid(self.encoder.patch_tokens(view.x, self.config.encoder_size), rows, cols)
        return negative_cosine(self.projector(tokens), target)


__all__ = ["Projector", "RepaConfig", "RepaTerm", "negative_cosine"]
