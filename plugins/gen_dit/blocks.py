"""The transformer blocks of the four DiT conditioning designs, and the final (decoder) layer.

Every block has ``forward(x, cond)`` so the model can treat them alike:

- `AdaLNBlock`: LayerNorms without affine parameters whose shift and scale (and, for adaLN-Zero,
  the residual gates) are regressed from ``cond = t_emb + y_emb`` of shape (B, D).
- `CrossAttentionBlock`: a standard pre-norm ViT block with a cross-attention layer after the
  self-attention; ``cond`` is the 2-token sequence ``[t_emb, y_emb]`` of shape (B, 2, D).
- `ViTBlock`: a standard pre-norm ViT block; ``cond`` is ignored (in-context conditioning puts
  t and y into the token sequence instead).
"""

from __future__ import annotations

import torch
from torch import nn

import gen
from gen_dit.attention import Attention, CrossAttention, Mlp


def _norm(hidden_size: int, affine: bool) -> nn.LayerNorm:
    return nn.LayerNorm(hidden_size, elementwise_affine=affine, eps=1e-6)


class AdaLNBlock(nn.Module):
    """DiT block with adaptive LayerNorm; with ``gated`` (adaLN-Zero) also residual gates alpha.

    ``adaLN_modulation`` regresses (shift, scale, gate) for attention and MLP (6 D outputs) when gated,
    else (shift, scale) for each (4 D outputs). adaLN-Zero zero-initialises it, so the block starts as
    the identity (the model does the initialisation).

    Args:
        hidden_size: D.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width / D.
        gated: adaLN-Zero's residual gates.
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float, gated: bool):
        super().__init__()
        self.gated = gated
        self.norm1 = _norm(hidden_size, affine=False)
        self.attn = Attention(hidden_size, num_heads)
        self.norm2 = _norm(hidden_size, affine=False)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        chunks = 6 if gated else 4
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(), nn.Linear(hidden_size, chunks * hidden_size, bias=True)
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, N, D), cond (B, D) -> (B, N, D)."""
        if self.gated:
            shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(
                cond
            ).chunk(6, dim=1)  # (B, D) each
            x = x + gate_msa.unsqueeze(1) * self.attn(gen.modulate(self.norm1(x), shift_msa, scale_msa))
            x = x + gate_mlp.unsqueeze(1) * self.mlp(gen.modulate(self.norm2(x), shift_mlp, scale_mlp))
            return x  # (B, N, D)
        shift_msa, scale_msa, shift_mlp, scale_mlp = self.adaLN_modulation(cond).chunk(
            4, dim=1
        )  # (B, D) each
        x = x + self.attn(gen.modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + self.mlp(gen.modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x  # (B, N, D)


class CrossAttentionBlock(nn.Module):
    """Pre-norm ViT block with multi-head cross-attention to the conditioning sequence after self-attention.

    Args:
        hidden_size: D.
        num_heads: Attention heads (self- and cross-attention).
        mlp_ratio: MLP hidden width / D.
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = _norm(hidden_size, affine=True)
        self.attn = Attention(hidden_size, num_heads)
        self.norm2 = _norm(hidden_size, affine=True)
        self.cross_attn = CrossAttention(hidden_size, num_heads)
        self.norm3 = _norm(hidden_size, affine=True)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, N, D), cond (B, M, D) (the conditioning tokens) -> (B, N, D)."""
        x = x + self.attn(self.norm1(x))
        x = x + self.cross_attn(self.norm2(x), cond)
        x = x + self.mlp(self.norm3(x))
        return x  # (B, N, D)


class ViTBlock(nn.Module):
    """Standard pre-norm ViT block (in-context conditioning: t and y are tokens of ``x``).

    Args:
        hidden_size: D.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width / D.
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = _norm(hidden_size, affine=True)
        self.attn = Attention(hidden_size, num_heads)
        self.norm2 = _norm(hidden_size, affine=True)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, D) -> (B, N, D); ``cond`` is unused."""
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x  # (B, N, D)


class FinalLayer(nn.Module):
    """Final LayerNorm (adaptive for the adaLN designs) and a linear decoder of each token into a patch.

    Args:
        hidden_size: D.
        patch_size: p.
        out_channels: C_out; each token decodes to p * p * C_out values.
        adaptive: Regress the norm's shift and scale from ``cond`` (B, D); otherwise a standard
            LayerNorm with affine parameters.
    """

    def __init__(self, hidden_size: int, patch_size: int, out_channels: int, adaptive: bool):
        super().__init__()
        self.adaptive = adaptive
        self.norm_final = _norm(hidden_size, affine=not adaptive)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels, bias=True)
        if adaptive:
            self.adaLN_modulation = nn.Sequential(
                nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size, bias=True)
            )

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """x (B, N, D), cond (B, D) or None -> (B, N, p*p*C_out)."""
        x = self.norm_final(x)  # (B, N, D)
        if self.adaptive:
            shift, scale = self.adaLN_modulation(cond).chunk(2, dim=1)  # (B, D) each
            x = gen.modulate(x, shift, scale)
        return self.linear(x)  # (B, N, p*p*C_out)
