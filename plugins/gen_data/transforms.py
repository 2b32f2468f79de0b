"""Image decoding and the ADM/DiT center crop that JiT trains with; uint8 -> [-1, 1] as JiT converts.

The way back (floats to uint8) and sample grids are the core's: `gen.to_uint8`, `gen.make_grid`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

import gen

if TYPE_CHECKING:  # imported where used: `gen data --help` reads this module without torch
    import torch

#: File extensions read as images (lower case, without the dot).
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
#: The doc of ``random_flip`` for image datasets: on by default, and what that does to some data.
RANDOM_FLIP_DOC = (
    "Mirror each training image left-right with probability 1/2. On by default: it mirrors digits and "
    "text too, so set random_flip = false for such data."
)
#: The PIL mode images are converted to for each channel count: grayscale, RGB, RGB with alpha.
CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def center_crop_arr(image: Image.Image, image_size: int) -> Image.Image:
    """The ADM/DiT/JiT center crop: BOX-halve while the short side >= 2x target, BICUBIC, center crop.

    Exactly ``center_crop_arr`` of the guided-diffusion, DiT and JiT training scripts.

    Args:
        image: A PIL image (any size) of mode L, RGB or RGBA (resized with premultiplied alpha).
        image_size: Side of the square output.

    Returns:
        An ``image_size`` x ``image_size`` PIL image.
    """
    while min(*image.size) >= 2 * image_size:
        image = image.resize(tuple(x // 2 for x in image.size), resample=Image.BOX)
    scale = image_size / min(*image.size)
    image = image.resize(tuple(round(x * scale) for x in image.size), resample=Image.BICUBIC)
    arr = np.array(image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return Image.fromarray(arr[crop_y : crop_y + image_size, crop_x : crop_x + image_size])


def decode_image(data: bytes, mode: str = "RGB") -> Image.Image:
    """Decode encoded image bytes into a PIL image of ``mode`` (fully loaded, so truncation raises here),
    as a viewer shows it (`gen.read_image`: EXIF orientation applied, 16 bits scaled to 8, palettes with
    transparency through RGBA).

    ``mode`` is a value of `CHANNEL_MODES`: ``L`` takes the ITU-R 601 luma of a colour image and
    drops alpha, ``RGBA`` adds an opaque alpha to an image without one.
    """
    return gen.read_image(data, mode)


def load_image(path: str, mode: str = "RGB") -> Image.Image:
    """Read an image file into a PIL image of ``mode`` (fully loaded; see `decode_image`)."""
    return gen.read_image(path, mode)


def to_uint8_chw(image: Image.Image, *, flip: bool = False) -> torch.Tensor:
    """PIL image (L, RGB or RGBA) -> uint8 tensor (C, H, W) with C = 1, 3 or 4, mirrored left-right when
    ``flip``."""
    arr = np.asarray(image, dtype=np.uint8)  # (H, W) or (H, W, C)
    if arr.ndim == 2:
        arr = arr[:, :, None]  # (H, W, 1)
    if flip:
        arr = arr[:, ::-1]
    import torch

    return torch.from_numpy(arr.transpose(2, 0, 1).copy())  # (C, H, W), contiguous and writable


def uint8_to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (B, C, H, W) in 0..255 -> float32 in [-1, 1], as JiT does (x / 255 * 2 - 1)."""
    import torch

    return x.to(torch.float32).div_(255.0).mul_(2.0).sub_(1.0)
