"""DiT's input embeddings: patches, the fixed 2-D sin-cos position table, timesteps and class labels.

Module and parameter names are the published ones (``x_embedder.proj``, ``t_embedder.mlp.0``,
``y_embedder.embedding_table``), so released DiT state dicts load directly.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sincos_pos_embed_2d(dim: int, grid: int) -> torch.Tensor:
    """DiT's fixed 2-D sin-cos position embedding (``get_2d_sincos_pos_embed``), bit for bit.

    The first half of the channels encodes the column coordinate, the second half the row; each half
    is ``[sin(pos * omega), cos(pos * omega)]`` with ``omega_k = 10000^(-k / (dim/4))``, computed in
    float64 as the reference does with numpy.

    Args:
        dim: Embedding width, divisible by 4.
        grid: Tokens per side.

    Returns:
        (grid*grid, dim) float32 table, tokens in row-major order.
    """
    if dim % 4:
        raise ValueError(f"the 2-D sin-cos position embedding needs a width divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)  # (D/4,)
    coords = torch.arange(grid, dtype=torch.float32).to(torch.float64)  # (G,)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")  # (G, G) each

    def embed_1d(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega  # (G*G, D/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (G*G, D/2)

    return torch.cat([embed_1d(cols), embed_1d(rows)], dim=1).float()  # (G*G, D)


class PatchEmbed(nn.Module):
    """Non-overlapping p x p patches, linearly embedded (timm ``PatchEmbed``: a stride-p convolution).

    Args:
        patch_size: p.
        in_channels: C.
        hidden_size: D.
    """

    def __init__(self, patch_size: int, in_channels: int, hidden_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, hidden_size, kernel_size=patch_size, stride=patch_size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, H/p * W/p, D), tokens in row-major order."""
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, N, D)


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of t followed by a 2-layer SiLU MLP.

    ``t`` enters the sinusoid exactly as given (here in [0, 1]; the published DiT passed integer steps
    0..999). Features are ``[cos(t * f), sin(t * f)]`` with ``f_k = 10000^(-k / (F/2))``, k < F/2.

    Args:
        hidden_size: D.
        frequency_embedding_size: F, the number of sinusoidal features (256 in DiT).
    """

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size, bias=True),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size, bias=True),
        )

    @staticmethod
    def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        """(B,) -> (B, dim) float32 sinusoidal features (zero-padded to ``dim`` when it is odd)."""
        half = dim // 2
        freqs = torch.exp(
            -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
        )  # (F/2,)
        args = t[:, None].float() * freqs[None]  # (B, F/2)
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, 2*(F/2))
        if dim % 2:
            embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)  # (B, F)
        return embedding

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) float -> (B, D)."""
        return self.mlp(self.timestep_embedding(t, self.frequency_embedding_size))  # (B, D)


class LabelEmbedder(nn.Module):
    """A table of class embeddings with one extra row, the null label (id ``num_classes``).

    DiT drops labels inside this module; here the objective does it (by passing the null id), so the
    module is a plain lookup. The null row is kept so that classifier-free guidance has something to use.

    Args:
        num_classes: K; the table has K + 1 rows.
        hidden_size: D.
    """

    def __init__(self, num_classes: int, hidden_size: int):
        super().__init__()
        self.num_classes = num_classes
        self.embedding_table = nn.Embedding(num_classes + 1, hidden_size)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """(B,) int64 in [0, K] -> (B, D)."""
        return self.embedding_table(y)  # (B, D)
