"""A real image folder without a download: crops of the photographs that scikit-image and
scikit-learn ship inside their wheels, one class per photograph.

The sampling benchmark's claims need a model trained on real images, and nothing can be downloaded
where this project is tested. Ten colour photographs come with two common packages (a portrait, a cat,
a coffee cup, the Hubble deep field, a rocket launch, a retina, a motorcycle, a microscope slide, a
Chinese temple and a flower). Each is scaled so that its short side is ``--scale`` pixels, and
``--per-class`` square crops of a random side between ``--size`` and twice that, at random places, are
resized to ``--size`` and written as PNGs in the ImageNet ``train/`` layout that the ``imagefolder``
dataset reads (``OUT/<photo>/<index>.png``). ``recipes/photos.toml`` trains on it.

    pip install scikit-image scikit-learn   # only for their photographs; not a dependency of gen
    python benchmarks/photo_folder.py data/photos [--per-class 500] [--size 32] [--scale 96] [--seed 0]

The same arguments write the same files (NumPy's keyed generator; Pillow's bicubic resize).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
from PIL import Image

#: (package, file inside the package, class name): the colour photographs the two wheels ship.
PHOTOS = (
    ("skimage", "data/astronaut.png", "astronaut"),
    ("skimage", "data/chelsea.png", "cat"),
    ("skimage", "data/coffee.png", "coffee"),
    ("skimage", "data/hubble_deep_field.jpg", "hubble"),
    ("skimage", "data/rocket.jpg", "rocket"),
    ("skimage", "data/retina.jpg", "retina"),
    ("skimage", "data/motorcycle_left.png", "motorcycle"),
    ("skimage", "data/ihc.png", "microscopy"),
    ("sklearn", "datasets/images/china.jpg", "temple"),
    ("sklearn", "datasets/images/flower.jpg", "flower"),
)
PIP_NAMES = {"skimage": "scikit-image", "sklearn": "scikit-learn"}


def photo_path(package: str, relative: str) -> Path:
    """Where an installed package keeps a data file, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            f"photo_folder: the photographs come with {PIP_NAMES[package]}; "
            f"`pip install {PIP_NAMES[package]}` (not a dependency of gen) and run again"
        )
    path = Path(spec.submodule_search_locations[0]) / relative
    if not path.is_file():
        raise SystemExit(f"photo_folder: {path} is missing from the installed {PIP_NAMES[package]}")
    return path


def scaled(image: Image.Image, short_side: int) -> Image.Image:
    """The photograph in RGB, resized so that its shorter side is ``short_side`` pixels."""
    image = image.convert("RGB")
    factor = short_side / min(image.size)
    size = (max(short_side, round(image.width * factor)), max(short_side, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BICUBIC)


def random_crops(image: Image.Image, count: int, size: int, rng: np.random.Generator):
    """``count`` square crops of side ``size..2*size`` (at most the short side), resized to ``size``."""
    largest = min(2 * size, *image.size)
    for _ in range(count):
        side = int(rng.integers(size, largest + 1))
        left = int(rng.integers(0, image.width - side + 1))
        top = int(rng.integers(0, image.height - side + 1))
        crop = image.crop((left, top, left + side, top + side))
        yield crop.resize((size, size), Image.Resampling.BICUBIC)


def write_folder(out: Path, per_class: int, size: int, short_side: int, seed: int) -> int:
    """Write the crops of every photograph under ``out/<class>/``; returns the number of images."""
    if short_side < size:
        raise SystemExit(f"photo_folder: --scale {short_side} is below --size {size}; set --scale >= --size")
    paths = [(photo_path(package, relative), name) for package, relative, name in PHOTOS]
    written = 0
    for index, (path, name) in enumerate(paths):
        rng = np.random.default_rng([seed, index])
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as photo:
            image = scaled(photo, short_side)
        for i, crop in enumerate(random_crops(image, per_class, size, rng)):
            crop.save(folder / f"{i:05d}.png")
            written += 1
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (one sub-folder per photograph)")
    parser.add_argument("--per-class", type=int, default=500, help="crops per photograph")
    parser.add_argument("--size", type=int, default=32, help="side of the written images")
    parser.add_argument("--scale", type=int, default=96, help="short side a photograph is scaled to")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.per_class < 1 or args.size < 1:
        raise SystemExit("photo_folder: --per-class and --size must be at least 1")
    try:
        count = write_folder(args.out, args.per_class, args.size, args.scale, args.seed)
    except OSError as e:  # OUT is a file, read-only, or the disk is full
        raise SystemExit(f"photo_folder: cannot write under {args.out}: {e}; choose another OUT") from None
    print(f"wrote {count} images of {args.size}x{args.size} in {len(PHOTOS)} classes under {args.out}")


if __name__ == "__main__":
    sys.exit(main())
