"""Image helpers: tensors in [-1, 1] to uint8, and sample grids as PNG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) floats in [-1, 1] -> (B, H, W, C) uint8 as ``round(clip((x + 1) / 2 * 255))``.

    This is how the published JiT code stores generated images before any metric.
    """
    x = ((x.detach().float().cpu() + 1) / 2 * 255).clamp(0, 255).round().to(torch.uint8)  # (B, C, H, W)
    return x.permute(0, 2, 3, 1).numpy()


def from_uint8(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(B, H, W, C) uint8 -> (B, C, H, W) float32 in [-1, 1]: the inverse of `to_uint8` up to rounding."""
    x = torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).float()  # (B, C, H, W) in [0, 255]
    return x / 127.5 - 1.0


def make_grid(images: np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile (B, H, W, C) uint8 images into one (rows*(H+pad)+pad, cols*(W+pad)+pad, C) image."""
    b, h, w, c = images.shape
    cols = nrow or math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i in range(b):
        r, k = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[top : top + h, left : left + w] = images[i]
    return grid


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Save one (H, W, C) uint8 image (C = 1 or 3) as PNG: written to a temporary name, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(tmp, format="PNG")
    tmp.replace(path)
    return path


def save_grid(x: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save (B, C, H, W) images in [-1, 1] as a PNG grid."""
    return save_png(path, make_grid(to_uint8(x), nrow))
