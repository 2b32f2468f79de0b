"""Image helpers: image files read as a viewer shows them (`read_image`: EXIF orientation, 16 bits,
palettes), tensors in [-1, 1] to uint8, and sample grids as PNG (`make_grid`: the one grid layout, a class
per row, white padding)."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

#: PIL modes of more than 8 bits an integer channel: read as 16-bit and scaled to 8 bits.
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
_ORIENTATION = 0x0112  # the EXIF tag


def read_image(source: str | os.PathLike | bytes, mode: str = "RGB") -> Image.Image:
    """An image file (a path, or its bytes) as a viewer shows it, fully decoded, in PIL ``mode``.

    - the EXIF orientation is applied (a phone's portrait JPEG comes out upright);
    - 16-bit images (``I;16``, ``I``) are scaled to 8 bits, ``round(v / 257)``, not clipped at 255;
    - a palette image with transparency goes through RGBA (no PIL warning), and alpha is then dropped
      for ``RGB`` and ``L`` as for any RGBA image; CMYK and the rest take PIL's conversion.

    Raises what PIL raises for a damaged file, and ``PIL.Image.DecompressionBombError`` for an image of
    more than twice ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (before decoding it); the callers say which file.
    """
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as opened:
        opened.load()  # fully decoded here: a truncated file raises now
        image = opened
        if image.getexif().get(_ORIENTATION, 1) not in (1, None):
            image = ImageOps.exif_transpose(image)
        if image.mode in _WIDE_MODES:
            wide = np.asarray(image, dtype=np.float64)  # (H, W) in 0..65535
            image = Image.fromarray(np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8), "L")
        elif image.mode == "PA" or (image.mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")
        return image.convert(mode)  # a copy: the file is closed when this returns


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


#: The colour of the padding between and around the tiles of every grid `gen` writes (white).
PAD_VALUE = 255


def _class_rows(labels: np.ndarray, n: int, nrow: int | None) -> tuple[list[list[int]], int]:
    """The image indices of each grid row, a class per row (see `make_grid`), and the row width."""
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != n:
        raise ValueError(f"make_grid: {labels.shape[0]} labels for {n} images")
    order = np.argsort(labels, kind="stable")  # class by class, each class's images in their order
    classes, counts = np.unique(labels, return_counts=True)
    if nrow is None and n > 1 and counts.max() == 1:  # one image per class: nothing to put in a row
        cols = math.ceil(math.sqrt(n))
        return [order[i : i + cols].tolist() for i in range(0, n, cols)], cols
    cols = nrow or int(counts.max())
    rows, start = [], 0
    for count in counts.tolist():
        members = order[start : start + count].tolist()
        rows += [members[i : i + cols] for i in range(0, count, cols)]
        start += count
    return rows, cols


def make_grid(
    images: np.ndarray,
    nrow: int | None = None,
    pad: int = 2,
    *,
    pad_value: int = PAD_VALUE,
    labels: np.ndarray | Sequence[int] | None = None,
) -> np.ndarray:
    """Tile (B, H, W, C) uint8 images into one (rows*(H+pad)+pad, cols*(W+pad)+pad, C) image.

    The one grid of `gen`: the training grids, ``gen sample --out NAME.png`` and ``gen data info --grid``
    are all made here.

    Args:
        images: (B, H, W, C) uint8.
        nrow: Images per row (the number of columns). Default: ``ceil(sqrt(B))``, or with ``labels``
            the largest class's count.
        pad: Pixels between the tiles and around them.
        pad_value: Their colour, 0 to 255 in every channel (default `PAD_VALUE`, white); the empty
            cells of an unfilled row have it too.
        labels: (B,) class ids. Given, the grid has **a class per row** (the convention of DiT/ADM sample
            sheets): classes from top to bottom in increasing id, each starting a new row, its images left
            to right in their order (a class of more than ``nrow`` images continues on the next rows).
            When every class has one image and ``nrow`` is not given, the images tile a square grid in
            class order. None: the images fill the rows in their order.
    """
    b, h, w, c = images.shape
    if not 0 <= pad_value <= 255:
        raise ValueError(f"make_grid: pad_value must be in [0, 255], got {pad_value}")
    if nrow is not None and nrow < 1:
        raise ValueError(f"make_grid: nrow must be >= 1, got {nrow}")
    if labels is not None and b > 0:
        rows, cols = _class_rows(np.asarray(labels), b, nrow)
    else:
        cols = nrow or max(math.ceil(math.sqrt(b)), 1)
        rows = [list(range(i, min(i + cols, b))) for i in range(0, b, cols)]
    grid = np.full((len(rows) * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for r, members in enumerate(rows):
        for k, i in enumerate(members):
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


def save_grid(
    x: torch.Tensor, path: str | Path, nrow: int | None = None, *, labels: np.ndarray | None = None
) -> Path:
    """Save (B, C, H, W) images in [-1, 1] as a PNG grid (`make_grid`: a class per row with ``labels``)."""
    return save_png(path, make_grid(to_uint8(x), nrow, labels=labels))
