"""Position tables: the fixed 2-D sin-cos embedding and the 2-D rotary embedding (RoPE).

Both follow the published JiT code bit for bit (same frequencies, same channel order, same float
precision) so that released checkpoints compute the same function.
"""

from __future__ import annotations

import torch


def sincos_pos_embed_2d(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (MAE/DiT style).

    The first half of the channels encodes the column (x) coordinate, the second half the row (y);
    each half is ``[sin(pos * omega), cos(pos * omega)]`` with ``omega_k = 10000^(-k / (dim/4))``.

    Args:
        dim: Embedding width, divisible by 4.
        grid: Tokens per side.

    Returns:
        (grid*grid, dim) float32 table, tokens in row-major order.
    """
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)  # (D/4,)
    coords = torch.arange(grid, dtype=torch.float32).to(torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")  # (G, G) each

    def embed_1d(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega  # (G*G, D/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (G*G, D/2)

    return torch.cat([embed_1d(cols), embed_1d(rows)], dim=1).float()  # (G*G, D)


def rope_tables_2d(head_dim: int, grid: int, num_prefix: int = 0, theta: float = 10000.0):
    """cos/sin tables of 2-D RoPE for ``num_prefix`` unrotated tokens followed by a ``grid x grid`` image.

    The first half of each head rotates with the row index, the second half with the column index;
    within a half, channels ``(2k, 2k+1)`` form a pair rotated at frequency ``theta^(-2k / (head_dim/2))``.
    Prefix tokens (in-context class tokens) get cos = 1, sin = 0: they are not rotated.

    Args:
        head_dim: Channels per head, divisible by 4.
        grid: Image tokens per side.
        num_prefix: Tokens in front of the image tokens.
        theta: RoPE base.

    Returns:
        (cos, sin), each (num_prefix + grid*grid, head_dim) float32.
    """
    half = head_dim // 2
    freqs = 1.0 / (theta ** (torch.arange(0, half, 2)[: half // 2].float() / half))  # (half/2,)
    # The reference computes positions as arange(n) / n * n in float32; keep its rounding.
    pos = torch.arange(grid) / grid * grid  # (G,)
    axis = (pos[:, None] * freqs[None, :]).repeat_interleave(2, dim=-1)  # (G, half)
    angles = torch.cat(
        [axis[:, None, :].expand(grid, grid, half), axis[None, :, :].expand(grid, grid, half)], dim=-1
    ).reshape(grid * grid, head_dim)  # (G*G, head_dim)
    cos = torch.cat([torch.ones(num_prefix, head_dim), angles.cos()], dim=0)  # (P+G*G, head_dim)
    sin = torch.cat([torch.zeros(num_prefix, head_dim), angles.sin()], dim=0)  # (P+G*G, head_dim)
    return cos, sin


def rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """``(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)``: the 90-degree turn of each channel pair."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)  # (..., D/2) each
    return torch.stack((-x2, x1), dim=-1).flatten(-2)  # (..., D)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate queries or keys.

    Args:
        x: (B, heads, N, head_dim).
        cos, sin: (N, head_dim) tables from `rope_tables_2d`.

    Returns:
        (B, heads, N, head_dim), in the dtype of ``x`` (the tables are cast, as in the reference).
    """
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate_pairs(x) * sin
