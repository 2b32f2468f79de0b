"""Image decoding and the ADM/DiT center crop that JiT trains with; uint8 -> [-1, 1] as JiT converts.

The way back (floats to uint8) and sample grids are the core's: :func:`gen.to_uint8`, :func:`gen.make_grid`.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

#: File extensions read as images (lower case, without the dot).
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


def center_crop_arr(image: Image.Image, image_size: int) -> Image.Image:
    """The ADM/DiT/JiT center crop: BOX-halve while the short side >= 2x target, BICUBIC, center crop.

    Exactly ``center_crop_arr`` of the guided-diffusion, DiT and JiT training scripts.

    Args:
        image: A PIL image (any size; RGB expected).
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


def decode_image(data: bytes) -> Image.Image:
    """Decode encoded image bytes into an RGB PIL image (fully loaded, so truncation raises here)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def load_image(path: str) -> Image.Image:
    """Read an image file into an RGB PIL image (fully loaded)."""
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def to_uint8_chw(image: Image.Image, *, flip: bool = False) -> torch.Tensor:
    """PIL RGB image -> uint8 tensor (3, H, W), mirrored left-right when ``flip``."""
    arr = np.asarray(image, dtype=np.uint8)  # (H, W, 3)
    if flip:
        arr = arr[:, ::-1]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))  # (3, H, W)


def uint8_to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (B, C, H, W) in 0..255 -> float32 in [-1, 1], as JiT does (x / 255 * 2 - 1)."""
    return x.to(torch.float32).div_(255.0).mul_(2.0).sub_(1.0)
