"""Where images to score or to compute reference statistics from come from: a folder of images, an ADM
``.npz`` (``arr_0``: N x H x W x C uint8, streamed) or a recipe (its dataset's one finite pass)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gen.errors import DamagedFileError, GenError
from gen.images import read_image, to_uint8
from gen.protocols import ListsImages
from gen.recipe import load_recipe
from gen.tensor_files import NOT_PLAIN

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8, as a viewer shows the file (`gen.images.read_image`); a file that cannot be read
    (damaged, a decompression bomb) is one line naming it: every image of a sample folder counts."""
    try:
        return np.asarray(read_image(path, "RGB"))
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds for a bad file
        said = " ".join(str(e).split())
        raise DamagedFileError(
            path,
            f"cannot be read as an image ({type(e).__name__}: {said})",
            "remove it from the folder or replace it",
        ) from None


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def open_npz(source: Path) -> zipfile.ZipFile:
    """An ``.npz`` as the zip of ``.npy`` arrays it is; a pickle or a damaged file is a one-line
    `DamagedFileError` (nothing in it is loaded)."""
    if not Path(source).is_file():
        raise DamagedFileError(source, "does not exist" if not Path(source).exists() else "is not a file")
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as e:
        with open(source, "rb") as f:
            pickled = f.read(1) == b"\x80"
        problem = NOT_PLAIN.format(what="") if pickled else f"is not an .npz file, a zip of .npy arrays ({e})"
        raise DamagedFileError(source, problem) from None


def _open_npz_array(zf: zipfile.ZipFile, source: Path, key: str = "arr_0"):  # noqa: ANN202
    """An open member ``key`` of an ``.npz``, positioned after the header, with (shape, dtype)."""
    if f"{key}.npy" not in zf.namelist():
        raise GenError(f"{source} has no {key} (the ADM layout: N x H x W x C uint8 images)")
    f = zf.open(f"{key}.npy")
    try:
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(f)
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        f.close()
        raise DamagedFileError(source, f"is damaged: {key} is not a readable .npy array ({e})") from None
    if dtype.hasobject:
        f.close()
        raise DamagedFileError(source, NOT_PLAIN.format(what=f" in {key}"))
    if dtype != np.uint8 or len(shape) != 4 or fortran:
        f.close()
        raise GenError(f"{source}: {key} must be N x H x W x C uint8, got {shape} {dtype}")
    return f, shape


def count_images(source: str | Path) -> int:
    """Number of images in a folder or an ADM ``.npz`` (``arr_0``), without reading them."""
    source = Path(source)
    if source.is_dir():
        return len(image_files(source))
    with open_npz(source) as zf:
        f, shape = _open_npz_array(zf, source)
        f.close()
    return int(shape[0])


def _npz_batches(source: Path, batch_size: int) -> Iterator[np.ndarray]:
    """``arr_0`` of an ``.npz`` in batches, streamed: 50 000 images of 256 x 256 never sit in memory."""
    with open_npz(source) as zf:
        f, shape = _open_npz_array(zf, source)
        with f:
            per_image = int(np.prod(shape[1:]))
            for start in range(0, shape[0], batch_size):
                b = min(batch_size, shape[0] - start)
                raw = f.read(b * per_image)
                if len(raw) != b * per_image:
                    raise GenError(
                        f"{source} is truncated: arr_0 ends before image {start + len(raw) // per_image}"
                    )
                yield np.frombuffer(bytearray(raw), dtype=np.uint8).reshape(b, *shape[1:])


def image_batches(source: str | Path, batch_size: int) -> Iterator[np.ndarray]:
    """(B, H, W, C) uint8 batches of a folder of images (sorted by name) or of an ADM ``.npz``.

    A recipe (``.toml``) streams its dataset's ``iter_images`` (one pass, images in [-1, 1]).
    """
    source = Path(source)
    if source.is_dir():
        files = image_files(source)
        if not files:
            raise GenError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {source}")
        for i in range(0, len(files), batch_size):
            yield np.stack([_read_image(p) for p in files[i : i + batch_size]])
        return
    if not source.exists():
        raise GenError(f"{source} does not exist; give a folder of images, an .npz or a recipe")
    if source.suffix == ".npz":
        yield from _npz_batches(source, batch_size)
        return
    if source.suffix == ".toml":
        yield from _dataset_batches(source, batch_size)
        return
    raise GenError(f"{source}: expected a folder of images, an .npz (arr_0) or a recipe .toml")


def _dataset_batches(recipe_path: Path, batch_size: int) -> Iterator[np.ndarray]:
    recipe = load_recipe(recipe_path)
    dataset = recipe.data.build()
    if not isinstance(dataset, ListsImages):
        raise GenError(
            f"[data] {recipe.data.name} cannot list its images (no iter_images); export them to a folder "
            "and give that folder instead"
        )
    if not dataset.spec.is_image:
        raise GenError(f"[data] {recipe.data.name} does not hold images (shape {dataset.spec.shape})")
    for x, _ in dataset.iter_images(batch_size):
        yield to_uint8(x)
