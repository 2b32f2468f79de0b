"""JiT building blocks: norms, attention with QK-norm and RoPE, SwiGLU/GELU MLPs, adaLN-Zero blocks.

Module and parameter names match the published ``model_jit.py`` so that released checkpoints load as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import gen
from gen_jit.positions import apply_rope


class RMSNorm(nn.Module):
    """RMSNorm with a learned gain, computed in float32 (float64 inputs: float64) and cast back (as the
    reference does)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., dim) -> (..., dim)."""
        dtype = x.dtype
        x = x.to(torch.promote_types(dtype, torch.float32))  # float32 as published; float64 stays float64
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight * x).to(dtype)


def make_norm(kind: str, dim: int) -> nn.Module:
    """``"rms"``: `RMSNorm`; ``"layer"``: LayerNorm with gain and bias. Both use eps 1e-6."""
    if kind == "rms":
        return RMSNorm(dim, eps=1e-6)
    if kind == "layer":
        return nn.LayerNorm(dim, eps=1e-6)
    raise ValueError(f"unknown norm {kind!r}; use 'rms' or 'layer'")


class Attention(nn.Module):
    """Multi-head self-attention with optional per-head QK-norm and 2-D RoPE, through SDPA."""

    def __init__(
        self, dim: int, num_heads: int, *, qk_norm: bool, norm: str, attn_drop: float, proj_drop: float
    ):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.q_norm = make_norm(norm, head_dim) if qk_norm else nn.Identity()
        self.k_norm = make_norm(norm, head_dim) if qk_norm else nn.Identity()
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """x: (B, N, D); rope: (cos, sin) tables of shape (N, head_dim), or None. Returns (B, N, D)."""
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, H, N, Dh) each
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(B, N, D)  # (B, N, D)
        return self.proj_drop(self.proj(x))


class SwiGLU(nn.Module):
    """SwiGLU MLP: ``w3(silu(a) * b)`` with ``[a, b] = w12(x)``; hidden width is 2/3 of ``hidden``."""

    def __init__(self, dim: int, hidden: int, drop: float):
        super().__init__()
        hidden = int(hidden * 2 / 3)
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)
        self.ffn_dropout = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        a, b = self.w12(x).chunk(2, dim=-1)  # (B, N, hidden) each
        return self.w3(self.ffn_dropout(F.silu(a) * b))


class GeluMLP(nn.Module):
    """The ViT/DiT MLP: ``fc2(gelu_tanh(fc1(x)))`` (the paper's baseline block)."""

    def __init__(self, dim: int, hidden: int, drop: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        return self.fc2(self.drop(F.gelu(self.fc1(x), approximate="tanh")))


class JiTBlock(nn.Module):
    """adaLN-Zero transformer block: the condition sets shift, scale and gate of both branches."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        mlp_ratio: float,
        mlp: str,
        norm: str,
        qk_norm: bool,
        attn_drop: float,
        proj_drop: float,
    ):
        super().__init__()
        self.norm1 = make_norm(norm, dim)
        self.attn = Attention(
            dim, num_heads, qk_norm=qk_norm, norm=norm, attn_drop=attn_drop, proj_drop=proj_drop
        )
        self.norm2 = make_norm(norm, dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = SwiGLU(dim, hidden, proj_drop) if mlp == "swiglu" else GeluMLP(dim, hidden, proj_drop)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        """x: (B, N, D) tokens; c: (B, D) condition; rope: (N, head_dim) tables or None."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(
            6, dim=-1
        )
        x = x + gate_msa.unsqueeze(1) * self.attn(gen.modulate(self.norm1(x), shift_msa, scale_msa), rope)
        x = x + gate_mlp.unsqueeze(1) * self.mlp(gen.modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    """adaLN-modulated norm followed by a linear map from tokens to patches of pixels."""

    def __init__(self, dim: int, patch_size: int, out_channels: int, norm: str):
        super().__init__()
        self.norm_final = make_norm(norm, dim)
        self.linear = nn.Linear(dim, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, N, D); c: (B, D). Returns (B, N, p*p*C), channels last within a patch."""
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(gen.modulate(self.norm_final(x), shift, scale))
