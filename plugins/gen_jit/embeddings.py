"""JiT's patch embeddings (with the bottleneck); the timestep and label embedders are `gen.TimestepEmbedder`
and `gen.LabelEmbedder`."""

from __future__ import annotations

import torch
from torch import nn


class BottleneckPatchEmbed(nn.Module):
    """Patchify through a low-rank bottleneck: ``patch -> bottleneck (no bias) -> width``.

    Written as two convolutions (a patch-strided one and a 1x1 one), as published.
    """

    def __init__(self, patch_size: int, in_channels: int, bottleneck_dim: int, dim: int):
        super().__init__()
        self.proj1 = nn.Conv2d(
            in_channels, bottleneck_dim, kernel_size=patch_size, stride=patch_size, bias=False
        )
        self.proj2 = nn.Conv2d(bottleneck_dim, dim, kernel_size=1, stride=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, H/p * W/p, dim), tokens in row-major order."""
        return self.proj2(self.proj1(x)).flatten(2).transpose(1, 2)


class PatchEmbed(nn.Module):
    """Plain linear patch embedding (``bottleneck_dim = 0``), as in ViT and DiT."""

    def __init__(self, patch_size: int, in_channels: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, H/p * W/p, dim)."""
        return self.proj(x).flatten(2).transpose(1, 2)
