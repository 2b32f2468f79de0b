"""``patch_mixer``: an MLP-Mixer on pixel patches, conditioned on time and class by adaLN-Zero.

MLP-Mixer (Tolstikhin et al., 2021) replaces attention with two MLPs per block: one mixes the tokens
(patches) of each channel, one mixes the channels of each token. Like JiT it reads raw pixel patches
and, by default, predicts the clean image; it is small and fast on a CPU, which makes it a good
first backbone to write and a baseline on the ``shapes`` dataset.
"""

from __future__ import annotations

import math

import attrs
import gen
import torch
from attrs import validators as v
from einops import rearrange
from torch import Tensor, nn


# --8<-- [start:config]
@attrs.frozen(kw_only=True)
class PatchMixerConfig:
    """Options of the ``patch_mixer`` backbone (a recipe's ``[backbone]`` keys)."""

    input_size: int = gen.field(
        32, doc="Image height and width in pixels.", validator=v.ge(1)
    )
    in_channels: int = gen.field(3, doc="Image channels.", validator=v.ge(1))
    num_classes: int = gen.field(
        10,
        doc="Number of classes (id num_classes is the null label; 0 = unconditional).",
        validator=v.ge(0),
    )
    patch_size: int = gen.field(
        4, doc="Patch side in pixels; must divide input_size.", validator=v.ge(1)
    )
    width: int = gen.field(256, doc="Channels per token.", validator=v.ge(1))
    depth: int = gen.field(6, doc="Number of mixer blocks.", validator=v.ge(1))
    token_mlp_ratio: float = gen.field(
        2.0,
        doc="Hidden size of the token-mixing MLP / number of tokens.",
        validator=v.gt(0),
    )
    channel_mlp_ratio: float = gen.field(
        4.0, doc="Hidden size of the channel-mixing MLP / width.", validator=v.gt(0)
    )

    def __attrs_post_init__(self) -> None:
        if self.input_size % self.patch_size:
            raise ValueError(
                f"patch_size ({self.patch_size}) must divide input_size "
                f"({self.input_size}); choose a divisor of {self.input_size}"
            )

    @property
    def num_tokens(self) -> int:
        return (self.input_size // self.patch_size) ** 2


# --8<-- [end:config]


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal features of t in [0, 1] (scaled by 1000, as DiT and JiT do). t: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period)
        * torch.arange(half, dtype=torch.float32, device=t.device)
        / half
    )
    args = 1000.0 * t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, dim)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """x: (B, N, D); shift, scale: (B, D)."""
    return x * (1 + scale[:, None]) + shift[:, None]


class MixerBlock(nn.Module):
    """Token mixing then channel mixing, each a gated residual branch modulated by the condition."""

    def __init__(
        self, num_tokens: int, width: int, token_hidden: int, channel_hidden: int
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.token_mlp = nn.Sequential(
            nn.Linear(num_tokens, token_hidden),
            nn.GELU(),
            nn.Linear(token_hidden, num_tokens),
        )
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.channel_mlp = nn.Sequential(
            nn.Linear(width, channel_hidden),
            nn.GELU(),
            nn.Linear(channel_hidden, width),
        )
        # adaLN-Zero: the condition gives shift, scale and gate of both branches; zero-initialised so
        # that every block starts as the identity.
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """x: (B, N, D) tokens; c: (B, D) condition -> (B, N, D)."""
        # (B, D) each
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)
        h = modulate(self.norm1(x), shift1, scale1).transpose(1, 2)  # (B, D, N)
        x = x + gate1[:, None] * self.token_mlp(h).transpose(1, 2)  # (B, N, D)
        h = modulate(self.norm2(x), shift2, scale2)  # (B, N, D)
        return x + gate2[:, None] * self.channel_mlp(h)  # (B, N, D)


class PatchMixer(nn.Module):
    """An MLP-Mixer on p x p pixel patches: ``forward(z, t, y) -> Tensor`` shaped like ``z``.

    Args:
        config: The backbone's options.
    """

    def __init__(self, config: PatchMixerConfig):
        super().__init__()
        self.config = config
        c, p, d = config.in_channels, config.patch_size, config.width
        n = config.num_tokens
        self.patch_embed = nn.Linear(p * p * c, d)
        self.pos_embed = nn.Parameter(torch.randn(1, n, d) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        # the last row is the null label
        self.class_embed = nn.Embedding(config.num_classes + 1, d)
        token_hidden = max(1, round(config.token_mlp_ratio * n))
        channel_hidden = max(1, round(config.channel_mlp_ratio * d))
        self.blocks = nn.ModuleList(
            MixerBlock(n, d, token_hidden, channel_hidden) for _ in range(config.depth)
        )
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.out = nn.Linear(d, p * p * c)
        # the output starts at zero (adaLN-Zero)
        for layer in (self.final_ada[1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, z: Tensor, t: Tensor, y: Tensor) -> Tensor:
        """Denoise.

        Args:
            z: (B, C, H, W) noisy images.
            t: (B,) times in [0, 1] (0 = noise, 1 = data).
            y: (B,) int64 class ids; ``num_classes`` is the null label.

        Returns:
            (B, C, H, W): the prediction (its meaning is the recipe's ``objective.prediction``).
        """
        p = self.config.patch_size
        h = z.shape[-2] // p
        # (B, N, p*p*C)
        x = rearrange(z, "b c (h p) (w q) -> b (h w) (p q c)", p=p, q=p)
        x = self.patch_embed(x) + self.pos_embed  # (B, N, D)
        c = self.time_mlp(timestep_embedding(t, 256)) + self.class_embed(y)  # (B, D)
        for block in self.blocks:
            x = block(x, c)  # (B, N, D)
        shift, scale = self.final_ada(c).chunk(2, dim=-1)  # (B, D) each
        x = self.out(modulate(self.final_norm(x), shift, scale))  # (B, N, p*p*C)
        # (B, C, H, W)
        return rearrange(x, "b (h w) (p q c) -> b c (h p) (w q)", h=h, p=p, q=p)


def build_patch_mixer(config: PatchMixerConfig) -> PatchMixer:
    """MLP-Mixer on pixel patches with adaLN-Zero conditioning (a small, fast baseline)."""
    return PatchMixer(config)
