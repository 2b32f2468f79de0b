"""JiT, "Just image Transformers" (Li & He, 2025): a plain ViT on pixels that predicts the clean image.

The state dict uses the published parameter names (``x_embedder.proj1``, ``blocks.N.attn.qkv``,
``final_layer.linear``...), so the weights of released checkpoints load with ``load_state_dict``.
"""

from __future__ import annotations

import torch
from torch import nn

import gen
from gen_jit.config import JiTConfig
from gen_jit.embeddings import BottleneckPatchEmbed, PatchEmbed
from gen_jit.layers import FinalLayer, JiTBlock
from gen_jit.positions import rope_tables_2d, sincos_pos_embed_2d


class JiT(nn.Module):
    """The JiT backbone: ``forward(z, t, y) -> x_hat`` with the shape of ``z``.

    Args:
        config: The configuration; size fields left at ``None`` are taken from its preset.
    """

    def __init__(self, config: JiTConfig):
        super().__init__()
        cfg = config.resolved()
        self.config = cfg
        dim, depth, p = cfg.hidden_size, cfg.depth, cfg.patch_size
        self.in_channels = cfg.in_channels
        self.input_size = cfg.input_size
        self.patch_size = p
        self.grid = cfg.input_size // p
        self.num_patches = self.grid**2
        self.in_context_len = cfg.in_context_len
        self.in_context_start = cfg.in_context_start

        self.t_embedder = gen.TimestepEmbedder(dim)
        self.y_embedder = gen.LabelEmbedder(cfg.num_classes, dim)
        if cfg.bottleneck_dim > 0:
            self.x_embedder = BottleneckPatchEmbed(p, cfg.in_channels, cfg.bottleneck_dim, dim)
        else:
            self.x_embedder = PatchEmbed(p, cfg.in_channels, dim)
        # Fixed sin-cos table; persistent because the published checkpoints store it under this name.
        self.register_buffer("pos_embed", torch.empty(1, self.num_patches, dim))  # (1, N, D)
        if self.in_context_len > 0:
            self.in_context_posemb = nn.Parameter(torch.zeros(1, self.in_context_len, dim))  # (1, L, D)
        # RoPE tables for [in-context tokens, image tokens]; blocks before the in-context tokens use the tail.
        if cfg.rope:
            rows = self.in_context_len + self.num_patches
            self.register_buffer("rope_cos", torch.empty(rows, dim // cfg.num_heads), persistent=False)
            self.register_buffer("rope_sin", torch.empty(rows, dim // cfg.num_heads), persistent=False)
        self.init_position_tables()
        self.use_rope = cfg.rope

        middle = range(depth // 4, depth // 4 * 3)  # dropout only in the middle half, as published
        self.blocks = nn.ModuleList(
            JiTBlock(
                dim,
                cfg.num_heads,
                mlp_ratio=cfg.mlp_ratio,
                mlp=cfg.mlp,
                norm=cfg.norm,
                qk_norm=cfg.qk_norm,
                attn_drop=cfg.attn_drop if i in middle else 0.0,
                proj_drop=cfg.proj_drop if i in middle else 0.0,
            )
            for i in range(depth)
        )
        self.final_layer = FinalLayer(dim, p, cfg.in_channels, cfg.norm)
        # Registered last: the published modules keep their order (and their share of the init draws).
        self.scalar_embedders = gen.ScalarEmbedders(cfg.scalar_inputs, dim)
        self.initialize_weights()
        if cfg.compile:
            for block in self.blocks:
                block.compile()
            self.final_layer.compile()

    @torch.no_grad()
    def init_position_tables(self) -> None:
        """(Re)compute the fixed position tables in place.

        Call it after materialising a model built on the meta device (``to_empty``), since the RoPE
        tables are derived, not loaded.
        """
        cfg = self.config
        pos = sincos_pos_embed_2d(cfg.hidden_size, self.grid)  # (N, D)
        self.pos_embed.copy_(pos.to(self.pos_embed.device).unsqueeze(0))
        if cfg.rope:
            cos, sin = rope_tables_2d(
                cfg.hidden_size // cfg.num_heads, self.grid, num_prefix=self.in_context_len
            )
            self.rope_cos.copy_(cos.to(self.rope_cos.device))
            self.rope_sin.copy_(sin.to(self.rope_sin.device))

    def initialize_weights(self) -> None:
        """The published initialisation: xavier linears, N(0, 0.02) embeddings, zeroed adaLN and output."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # Patch embedding convolutions are initialised as the linear maps they are.
        for conv in self.x_embedder.children():
            nn.init.xavier_uniform_(conv.weight.view(conv.weight.shape[0], -1))
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        self.y_embedder.init_weights(std=0.02)  # the random draws in the published order: y, t, in-context
        self.t_embedder.init_weights(std=0.02)
        if self.in_context_len > 0:
            nn.init.normal_(self.in_context_posemb, std=0.02)
        self.scalar_embedders.init_weights(std=0.02)
        gen.init_adaln_zero(self.blocks, self.final_layer)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, p*p*C) -> (B, C, H, W); each token holds its patch as (row, col, channel)."""
        B, p, g, c = x.shape[0], self.patch_size, self.grid, self.in_channels
        x = x.reshape(B, g, g, p, p, c)  # (B, gh, gw, p, p, C)
        x = torch.einsum("nhwpqc->nchpwq", x)  # (B, C, gh, p, gw, p)
        return x.reshape(B, c, g * p, g * p)

    def forward(
        self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor, **scalars: torch.Tensor
    ) -> torch.Tensor:
        """Predict the clean image.

        Args:
            z: (B, C, H, W) noisy images.
            t: (B,) time in [0, 1] (0 = noise, 1 = data).
            y: (B,) int64 class ids; ``num_classes`` is the null label.
            **scalars: (B,) each, exactly the config's ``scalar_inputs`` (none for the published JiT).

        Returns:
            (B, C, H, W) the network output (x-prediction in the paper's setup).
        """
        if z.shape[1:] != (self.in_channels, self.input_size, self.input_size):
            raise ValueError(
                f"JiT expects images of shape (B, {self.in_channels}, {self.input_size}, {self.input_size}), "
                f"got {tuple(z.shape)}; set the backbone's in_channels / input_size to match the data"
            )
        y_emb = self.y_embedder(y)  # (B, D)
        c = self.t_embedder(t) + y_emb  # (B, D)
        for emb in self.scalar_embedders(scalars):
            c = c + emb  # (B, D)

        x = self.x_embedder(z) + self.pos_embed  # (B, N, D)
        L = self.in_context_len
        rope_full = (self.rope_cos, self.rope_sin) if self.use_rope else None  # (L+N, Dh) each
        rope_image = (self.rope_cos[L:], self.rope_sin[L:]) if self.use_rope else None  # (N, Dh) each
        for i, block in enumerate(self.blocks):
            if L > 0 and i == self.in_context_start:
                ctx = y_emb.unsqueeze(1).expand(-1, L, -1) + self.in_context_posemb  # (B, L, D)
                x = torch.cat([ctx, x], dim=1)  # (B, L+N, D)
            with_context = L > 0 and i >= self.in_context_start
            x = block(x, c, rope_full if with_context else rope_image)
        x = x[:, L:]  # (B, N, D) drop the in-context tokens

        x = self.final_layer(x, c)  # (B, N, p*p*C)
        return self.unpatchify(x)


def build_jit(config: JiTConfig) -> JiT:
    """JiT: plain ViT on pixels (Li & He, 2025)."""
    return JiT(config)
