"""Multi-head self- and cross-attention through ``F.scaled_dot_product_attention``, and the ViT MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """timm's ViT self-attention (fused ``qkv`` with bias, output ``proj``), without dropout.

    Args:
        hidden_size: D.
        num_heads: H; must divide D.
    """

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=True)
        self.proj = nn.Linear(hidden_size, hidden_size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, D // self.num_heads)  # (B, N, 3, H, D/H)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, N, D/H) each
        x = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, D/H)
        return self.proj(x.transpose(1, 2).reshape(B, N, D))  # (B, N, D)


class CrossAttention(nn.Module):
    """Multi-head attention from the image tokens (queries) to a context sequence (keys and values).

    Args:
        hidden_size: D, the width of both the tokens and the context.
        num_heads: H; must divide D.
    """

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(hidden_size, hidden_size, bias=True)
        self.kv = nn.Linear(hidden_size, 2 * hidden_size, bias=True)
        self.proj = nn.Linear(hidden_size, hidden_size, bias=True)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """x (B, N, D), context (B, M, D) -> (B, N, D)."""
        B, N, D = x.shape
        M = context.shape[1]
        head_dim = D // self.num_heads
        q = self.q(x).reshape(B, N, self.num_heads, head_dim).transpose(1, 2)  # (B, H, N, D/H)
        kv = self.kv(context).reshape(B, M, 2, self.num_heads, head_dim)  # (B, M, 2, H, D/H)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, M, D/H) each
        x = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, D/H)
        return self.proj(x.transpose(1, 2).reshape(B, N, D))  # (B, N, D)


class Mlp(nn.Module):
    """timm's ViT MLP as DiT uses it: ``fc2(GELU_tanh(fc1(x)))``.

    Args:
        hidden_size: D.
        mlp_hidden: Width of the hidden layer.
    """

    def __init__(self, hidden_size: int, mlp_hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, mlp_hidden, bias=True)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(mlp_hidden, hidden_size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        return self.fc2(self.act(self.fc1(x)))  # (B, N, D)
