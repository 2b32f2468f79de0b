"""Inverting a trained model: images back to the start noise its sampler maps onto them, and back again.

``gen invert`` and [`ModelSampler.invert`][gen.ModelSampler.invert] run the model's process backwards
(the flow's ODE from t = 1 to 0, `gen_flow.inversion`) with the settings of a ``[sample]`` section;
[`ModelSampler.regenerate`][gen.ModelSampler.regenerate] and ``gen sample --noise`` sample from the
result with the same settings. The noise file (``.npz``, read without pickle) holds the noise, the
labels it was inverted with (the null label ``num_classes`` for the unconditional field) and the
settings, so that a regeneration uses them by default.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gen.errors import DamagedFileError, GenError
from gen.files import atomic_file
from gen.precision import autocast
from gen.sampling import driver
from gen.sampling.settings import SamplingSettings
from gen.seeds import key_seed

#: The arrays of a noise file; ``settings`` is JSON: the EMA, the ``[sample]`` table, ``fixed_point``.
NOISE_FILE_KEYS: tuple[str, ...] = ("noise", "labels", "settings", "sources")


#: Image suffixes ``gen invert`` reads from a folder.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def check_images(images: Tensor, shape: tuple[int, ...]) -> None:
    """Raise one line unless ``images`` is (N, *shape) (what the model draws)."""
    if images.ndim != len(shape) + 1 or tuple(images.shape[1:]) != tuple(shape):
        raise GenError(
            f"images of shape {tuple(images.shape[1:])} (C, H, W), but the model draws {tuple(shape)}; "
            f"give {shape[0]}-channel images of {shape[-1]}x{shape[-2]}"
        )


def image_files(sources: list[str | Path]) -> list[Path]:
    """The files of ``sources`` (files, and folders' images in name order); one line for a missing one."""
    files: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            found = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise GenError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            files += found
        elif source.is_file():
            files.append(source)
        else:
            raise GenError(f"{source}: no such image file or folder")
    return files


def read_images(files: list[Path], shape: tuple[int, ...]) -> Tensor:
    """(N, C, H, W) float32 in [-1, 1] of image ``files`` that are exactly of ``shape`` (C, H, W): an
    image of another size or of grey for a colour model (or the reverse) is one line naming it."""
    from PIL import Image, UnidentifiedImageError

    from gen.images import from_uint8, read_image

    c, h, w = shape
    out = []
    for file in files:
        try:
            with Image.open(file) as probe:
                gray, size = probe.mode in _GRAY_MODES, probe.size
            image = read_image(file, "L" if c == 1 else "RGB")
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
            raise DamagedFileError(
                file, f"cannot be read as an image ({e})", "replace or remove it"
            ) from None
        if size != (w, h):
            raise GenError(
                f"{file}: {size[0]}x{size[1]} pixels, the model draws {w}x{h}; resize it to {w}x{h}"
            )
        if gray != (c == 1):
            raise GenError(
                f"{file}: a {'grey' if gray else 'colour'} image, the model draws {c}-channel images; convert "
                f"it to {'grey' if c == 1 else 'RGB'}"
            )
        pixels = np.array(image, dtype=np.uint8).reshape(h, w, c)  # (H, W, C), writable
        out.append(from_uint8(pixels[None])[0])  # (C, H, W) in [-1, 1]
    return torch.stack(out)


def invert_batches(
    model: Any,
    images: Tensor,
    labels: np.ndarray | None,
    settings: SamplingSettings,
    *,
    batch_size: int,
    fixed_point: int = 1,
    seed: int = 0,
    on_step: Callable[[range, int, int], None] | None = None,
) -> Iterator[tuple[range, Tensor]]:
    """Yield ``(indices, (b, *model.spec.shape) float32 noise on the CPU)`` for the batches of ``images``.

    Args:
        model: A `gen.ModelSampler`.
        images: (N, *model.output_spec.shape) in [-1, 1]; a latent model encodes them first (each image
            with its own keyed generator, so the latents do not depend on the batch).
        labels: (N,) int64 class ids, ``num_classes`` for the null label; None: the null label for all.
        settings: The EMA and ``[sample]`` section to invert (regenerate with the same).
        fixed_point: Fixed-point iterations per solver step (0: the explicit reverse step alone).
        seed: Keys the encoder's sampling of a latent model.
        on_step: ``on_step(batch, k, total)`` as the process inverts step k of ``total`` on ``batch``.
    """
    check_images(images, tuple(model.output_spec.shape))
    model.use_weights(settings.ema)
    s = settings.sample
    guide = model.guide_for(s)
    k = model.spec.num_classes
    for start in range(0, images.shape[0], batch_size):
        part = range(start, min(start + batch_size, images.shape[0]))
        x = images[part.start : part.stop].to(model.device, torch.float32)  # (b, C, H, W)
        x = torch.cat(
            [
                model.autoencoder.encode(
                    x[i : i + 1], generator=torch.Generator().manual_seed(key_seed(seed, j))
                )
                for i, j in enumerate(part)
            ]
        )  # (b, *spec.shape); the identity in pixel space
        y = (
            None
            if labels is None or not k
            else torch.as_tensor(labels[part.start : part.stop]).to(model.device)
        )
        steps = None if on_step is None else (lambda i, n, part=part: on_step(part, i, n))
        with autocast(model.precision(s), model.device):
            noise = driver.invert(
                model.model,
                x,
                y,
                s,
                model.recipe.objective,
                num_classes=k,
                guide=guide,
                fixed_point=fixed_point,
                on_step=steps,
                process=model.process,
            )
        yield part, noise.float().cpu()


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """(N,) peak signal-to-noise ratio in dB of images in [-1, 1] (peak-to-peak 2), as uint8 round trips
    are not taken: ``10 log10(4 / mse)``."""
    mse = ((a.double() - b.double()) ** 2).flatten(1).mean(1)  # (N,)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-20))


# -- the noise file ---------------------------------------------------------------------------------


def write_noise_file(
    path: str | Path,
    noise: Tensor,
    labels: np.ndarray,
    settings: dict[str, Any],
    sources: list[str],
) -> Path:
    """Write the ``.npz`` of `NOISE_FILE_KEYS` through a temporary file renamed into place (`gen.files`)."""
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            noise=noise.float().numpy(),
            labels=np.asarray(labels, dtype=np.int64),
            settings=np.array(json.dumps(settings)),
            sources=np.array(sources, dtype=np.str_),
        )
    return Path(path)


def read_noise_file(path: str | Path, shape: tuple[int, ...]) -> tuple[Tensor, np.ndarray, dict[str, Any]]:
    """The noise (N, *shape), labels (N,) and settings of a file `write_noise_file` wrote (no pickle).

    Raises:
        DamagedFileError: not such a file, or its noise is not of the model's ``shape``.
    """
    path = Path(path)
    if not path.is_file():
        raise GenError(f"{path}: no such noise file; gen invert RUN IMAGES --out {path.name} writes one")
    again = "invert the images again (gen invert)"
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in NOISE_FILE_KEYS if k not in f.files]
            if missing:
                raise DamagedFileError(path, f"has no {', '.join(missing)}: not a noise file", again)
            noise, labels, settings = f["noise"], f["labels"], json.loads(str(f["settings"]))
    except DamagedFileError:
        raise
    except Exception as e:  # noqa: BLE001 - a bad zip, a truncated array, refused pickles: one line
        raise DamagedFileError(path, f"cannot be read as a noise file ({e})", again) from None
    if noise.ndim != len(shape) + 1 or tuple(noise.shape[1:]) != tuple(shape) or len(labels) != len(noise):
        raise DamagedFileError(
            path,
            f"holds {len(labels)} labels and noise of shape {tuple(noise.shape)}, but the model samples "
            f"{tuple(shape)}",
            "invert the images with this model",
        )
    if not np.isfinite(noise).all():
        raise DamagedFileError(path, "holds non-finite noise", again)
    return torch.from_numpy(np.ascontiguousarray(noise)), labels, settings


__all__ = [
    "IMAGE_SUFFIXES",
    "NOISE_FILE_KEYS",
    "check_images",
    "image_files",
    "read_images",
    "invert_batches",
    "psnr",
    "read_noise_file",
    "write_noise_file",
]
