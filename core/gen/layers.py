"""Layers shared by the transformer backbones (DiT, JiT): timestep, label and named-scalar embedders,
adaLN-Zero.

Both published backbones condition on ``c = t_embedder(t) + y_embedder(y)`` of shape (B, D) and
modulate their blocks with it (adaptive LayerNorm, adaLN); the pieces here are those of DiT's
``models.py``, which JiT's ``model_jit.py`` copies. Module and parameter names are the published ones
(``t_embedder.mlp.0``, ``y_embedder.embedding_table``, ``blocks.N.adaLN_modulation.1``), so a backbone
built from them loads released state dicts as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of t, DiT's ``TimestepEmbedder.timestep_embedding`` bit for bit.

    Features are ``[cos(t * f_0), ..., cos(t * f_{h-1}), sin(t * f_0), ..., sin(t * f_{h-1})]`` with
    ``h = dim // 2`` and ``f_k = max_period^(-k / h)``, computed in float32 (float64 for float64 t).

    Args:
        t: (B,) times, used as given (no rescaling: the backbones here pass t in [0, 1], the published
            DiT passed integer steps 0..999).
        dim: F, the number of features; an odd F gets one zero column at the end.
        max_period: Sets the lowest frequency, ``max_period^(-(h-1)/h)``, about ``1 / max_period``.

    Returns:
        (B, F) float32 features (float64 for float64 times).
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )  # (F/2,)
    # float32 as published; float64 times stay float64 (the backbones' float64 JVP checks).
    args = t[:, None].to(torch.promote_types(t.dtype, torch.float32)) * freqs[None]  # (B, F/2)
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, 2*(F/2))
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)  # (B, F)
    return embedding


class TimestepEmbedder(nn.Module):
    """`timestep_embedding` features of t followed by a two-layer SiLU MLP: (B,) -> (B, D).

    Args:
        dim: D, the output width.
        frequency_dim: F, the number of sinusoidal features (256 in DiT and JiT).
        max_period: The `timestep_embedding` period.

    Attributes:
        mlp: ``Linear(F, D), SiLU, Linear(D, D)`` (state dict keys ``mlp.0.*`` and ``mlp.2.*``).
    """

    def __init__(self, dim: int, frequency_dim: int = 256, max_period: float = 10000.0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.frequency_dim = frequency_dim
        self.max_period = max_period

    def init_weights(self, std: float = 0.02) -> None:
        """DiT's initialisation of the MLP: weights drawn from N(0, std²), first ``mlp.0`` then
        ``mlp.2``; the biases are left as they are (the backbones zero them first)."""
        nn.init.normal_(self.mlp[0].weight, std=std)
        nn.init.normal_(self.mlp[2].weight, std=std)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) times -> (B, D)."""
        return self.mlp(timestep_embedding(t, self.frequency_dim, self.max_period))  # (B, D)


class LabelEmbedder(nn.Module):
    """A table of class embeddings with one extra row for the null label: (B,) int64 -> (B, D).

    The null label, id ``num_classes``, is the "no class" input of classifier-free guidance. Labels
    are not dropped here (DiT's embedder dropped them itself in training): the objective passes the
    null label where it drops one, so the module is a plain lookup in training and sampling alike.

    Args:
        num_classes: K; the table has K + 1 rows (one row, the null label, for K = 0: unconditional).
        dim: D, the embedding width.

    Attributes:
        embedding_table: The (K + 1, D) ``nn.Embedding``.
    """

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)
        self.num_classes = num_classes

    @property
    def null_label(self) -> int:
        """The id of the null (unconditional) label: ``num_classes``, the table's last row."""
        return self.num_classes

    def init_weights(self, std: float = 0.02) -> None:
        """DiT's initialisation of the table: N(0, std²), the null row included."""
        nn.init.normal_(self.embedding_table.weight, std=std)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """(B,) int64 ids in [0, K] (K the null label) -> (B, D)."""
        return self.embedding_table(y)  # (B, D)


class ScalarEmbedders(nn.Module):
    """One `TimestepEmbedder` per named per-sample scalar the backbone takes besides t: (B,) each ->
    (B, D) each.

    A MeanFlow's network also sees the length ``h`` of the interval it jumps (Geng et al., 2025, embed
    (t, t - r) and add the embeddings: ``c = t_emb + h_emb + y_emb``); improved MeanFlow adds the
    guidance scale and interval it was trained to apply. The names are the backbone's
    ``scalar_inputs``; with none, the module holds nothing and the backbone is the published one.

    Args:
        names: The scalars, in order (state dict keys ``scalar_embedders.<name>.mlp.*``).
        dim: D.
    """

    def __init__(self, names: Iterable[str], dim: int):
        super().__init__()
        self.names = tuple(names)
        self.embedders = nn.ModuleDict({name: TimestepEmbedder(dim) for name in self.names})

    def init_weights(self, std: float = 0.02) -> None:
        """N(0, std²) MLP weights, as the backbones' own timestep embedder (in the order of ``names``)."""
        for name in self.names:
            self.embedders[name].init_weights(std=std)

    def forward(self, scalars: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The (B, D) embedding of each scalar of ``names``, in order; ``ValueError`` when the inputs
        are not exactly ``names``."""
        if set(scalars) != set(self.names):
            raise ValueError(
                f"the backbone takes the scalar inputs {list(self.names) or 'none'} besides (z, t, y), got "
                f"{sorted(scalars) or 'none'}; its scalar_inputs are set by the process it was built for"
            )
        return [self.embedders[name](scalars[name]) for name in self.names]  # each (B, D)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN's modulation ``x * (1 + scale) + shift``, per sample.

    Args:
        x: (B, N, D) normalised tokens.
        shift: (B, D).
        scale: (B, D); 0 leaves ``x`` unscaled.

    Returns:
        (B, N, D).
    """
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)  # (B, N, D)


def init_adaln_zero(blocks: Iterable[nn.Module], final_layer: nn.Module) -> None:
    """adaLN-Zero's initialisation (DiT): every block starts as the identity, the output as zero.

    Zeroes the weight and bias of the last layer of ``adaLN_modulation`` (the linear map from the
    condition to shifts, scales and gates) of each block and of the final layer, and of the final
    layer's output ``linear``. With every gate 0, a block ``x + gate * branch(x)`` returns ``x``; with
    shift and scale 0 and a zero ``linear``, the final layer returns 0. Draws no random numbers.

    Args:
        blocks: Modules with an ``adaLN_modulation`` sequence ending in an ``nn.Linear``.
        final_layer: A module with such an ``adaLN_modulation`` and an output ``linear``.
    """
    layers = [*(block.adaLN_modulation[-1] for block in blocks), final_layer.adaLN_modulation[-1]]
    for layer in [*layers, final_layer.linear]:
        nn.init.zeros_(layer.weight)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


__all__ = [
    "LabelEmbedder",
    "ScalarEmbedders",
    "TimestepEmbedder",
    "init_adaln_zero",
    "modulate",
    "timestep_embedding",
]
