"""DiT's input embeddings: patches and the fixed 2-D sin-cos position table.

Module and parameter names are the published ones (``x_embedder.proj``), so released DiT state dicts
load directly. The timestep and label embedders are `gen.TimestepEmbedder` and `gen.LabelEmbedder`.
"""

from __future__ import annotations

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
