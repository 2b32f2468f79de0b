"""Input embeddings of JiT: patches (with the bottleneck), timesteps and class labels."""

from __future__ import annotations

import math

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


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of t (256 channels, ``[cos, sin]``) followed by a two-layer SiLU MLP."""

    def __init__(self, dim: int, frequency_dim: int = 256, max_period: float = 10000.0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.frequency_dim = frequency_dim
        self.max_period = max_period

    def sinusoid(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) float -> (B, frequency_dim) float32 features; t is used as given (here in [0, 1])."""
        half = self.frequency_dim // 2
        exponents = torch.arange(half, dtype=torch.float32, device=t.device) / half  # (half,)
        freqs = torch.exp(-math.log(self.max_period) * exponents)  # (half,)
        args = t[:, None].float() * freqs[None]  # (B, half)
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, 2*half)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) -> (B, dim)."""
        return self.mlp(self.sinusoid(t))


class LabelEmbedder(nn.Module):
    """Class embedding table with one extra row: id ``num_classes`` is the null (unconditional) label."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)
        self.num_classes = num_classes

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """(B,) int64 -> (B, dim)."""
        return self.embedding_table(y)
