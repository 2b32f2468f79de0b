"""The DiT backbone (Peebles & Xie, 2023): a ViT over patches, conditioned on t and y in one of four ways.

Follows facebookresearch/DiT ``models.py`` (names, initialisation, the sin-cos table, unpatchify), with
two changes of interface: ``t`` enters the timestep embedder as given (in [0, 1] here), and label
dropout is left to the objective (the null label ``num_classes`` keeps its row in the table).
"""

from __future__ import annotations

import torch
from torch import nn

import gen
from gen_dit.blocks import AdaLNBlock, CrossAttentionBlock, FinalLayer, ViTBlock
from gen_dit.config import DiTConfig
from gen_dit.embeddings import PatchEmbed, sincos_pos_embed_2d


class DiT(nn.Module):
    """Diffusion Transformer on a (C, H, W) tensor: pixels or latents.

    Args:
        config: A `DiTConfig`; ``None`` fields are resolved from its preset.

    Attributes:
        pos_embed: (1, N, D) fixed sin-cos table, a frozen parameter as in DiT (so it is in the state
            dict and counts among ``parameters()``, but gets no gradient).
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        cfg = config.resolved()
        self.config = cfg
        D, p = cfg.hidden_size, cfg.patch_size
        self.in_channels, self.out_channels, self.patch_size = cfg.in_channels, cfg.out_channels, p
        self.input_size, self.num_classes, self.conditioning = (
            cfg.input_size,
            cfg.num_classes,
            cfg.conditioning,
        )
        self.grid = cfg.input_size // p
        adaptive = cfg.conditioning in ("adaln_zero", "adaln")

        self.x_embedder = PatchEmbed(p, cfg.in_channels, D)
        self.t_embedder = gen.TimestepEmbedder(D)
        self.y_embedder = gen.LabelEmbedder(cfg.num_classes, D)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, D), requires_grad=False)
        if adaptive:
            gated = cfg.conditioning == "adaln_zero"
            blocks = [AdaLNBlock(D, cfg.num_heads, cfg.mlp_ratio, gated=gated) for _ in range(cfg.depth)]
        elif cfg.conditioning == "cross_attention":
            blocks = [CrossAttentionBlock(D, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)]
        else:
            blocks = [ViTBlock(D, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)]
        self.blocks = nn.ModuleList(blocks)
        self.final_layer = FinalLayer(D, p, cfg.out_channels, adaptive=adaptive)
        # Registered last: the published modules keep their order (and their share of the init draws).
        self.scalar_embedders = gen.ScalarEmbedders(cfg.scalar_inputs, D)
        self.initialize_weights()
        if cfg.compile:
            # Module.compile keeps the parameter names (no ``_orig_mod.`` prefix in the state dict).
            for block in self.blocks:
                block.compile()
            self.final_layer.compile()

    def initialize_weights(self) -> None:
        """DiT's initialisation: xavier-uniform linears (and patch projection), zero biases, N(0, 0.02)
        embeddings and timestep MLP, the sin-cos table; for adaLN-Zero, zeroed modulation and output."""

        def basic_init(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

        self.apply(basic_init)
        with torch.no_grad():
            table = sincos_pos_embed_2d(self.pos_embed.shape[-1], self.grid)  # (N, D)
            self.pos_embed.copy_(table.unsqueeze(0).to(self.pos_embed.device))
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        self.y_embedder.init_weights(std=0.02)  # y then t: the published order of the random draws
        self.t_embedder.init_weights(std=0.02)
        self.scalar_embedders.init_weights(std=0.02)
        if self.conditioning == "adaln_zero":
            gen.init_adaln_zero(self.blocks, self.final_layer)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, p*p*C_out) -> (B, C_out, H, W); each token's values are ordered (p, p, C_out)."""
        B, g, p, c = x.shape[0], self.grid, self.patch_size, self.out_channels
        x = x.reshape(B, g, g, p, p, c)  # (B, h, w, p, q, C)
        x = x.permute(0, 5, 1, 3, 2, 4)  # (B, C, h, p, w, q)
        return x.reshape(B, c, g * p, g * p)  # (B, C, H, W)

    def forward(
        self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor, **scalars: torch.Tensor
    ) -> torch.Tensor:
        """Predict from a noisy input.

        Args:
            z: (B, C, H, W) input.
            t: (B,) float time, fed to the sinusoidal embedding as given.
            y: (B,) int64 class ids in [0, num_classes]; ``num_classes`` is the null label.
            **scalars: (B,) each, exactly the config's ``scalar_inputs`` (none for the published DiT); each
                is embedded like t and enters where t does (added to the adaLN condition, or one more
                context or in-context token).

        Returns:
            (B, out_channels, H, W).
        """
        expected = (self.in_channels, self.input_size, self.input_size)
        if z.dim() != 4 or tuple(z.shape[1:]) != expected:
            raise gen.GenError(
                f"dit backbone built for inputs of shape (B, {expected[0]}, {expected[1]}, {expected[2]}), "
                f"got {tuple(z.shape)}; set the backbone's in_channels and input_size to match the data"
            )
        x = self.x_embedder(z) + self.pos_embed  # (B, N, D)
        N = x.shape[1]
        t_emb = self.t_embedder(t)  # (B, D)
        y_emb = self.y_embedder(y)  # (B, D)
        s_embs = self.scalar_embedders(scalars)  # S of (B, D), none for the published DiT
        if self.conditioning == "cross_attention":
            cond = torch.stack([t_emb, y_emb, *s_embs], dim=1)  # (B, 2+S, D)
        elif self.conditioning == "in_context":
            # Extra tokens, like a ViT's cls token (no position embedding), dropped after the last block.
            extra = [e.unsqueeze(1).to(x.dtype) for e in (t_emb, y_emb, *s_embs)]
            x = torch.cat([x, *extra], dim=1)  # (B, N+2+S, D)
            cond = None
        else:
            cond = t_emb + y_emb  # (B, D)
            for emb in s_embs:
                cond = cond + emb  # (B, D)
        for block in self.blocks:
            x = block(x, cond)  # (B, N or N+2+S, D)
        x = self.final_layer(x[:, :N], cond)  # (B, N, p*p*C_out)
        return self.unpatchify(x)  # (B, C_out, H, W)


def build_dit(config: DiTConfig) -> DiT:
    """DiT: Diffusion Transformer with adaLN-Zero, adaLN, cross-attention or in-context conditioning."""
    return DiT(config)
