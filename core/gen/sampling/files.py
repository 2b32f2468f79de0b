"""Writing generated images to files: ``gen sample --out``.

- ``NAME.png``: one grid, a class per row (`gen.make_grid`; rows of ``--per-class`` images when given);
- ``NAME.npz``: the ADM evaluation layout, ``arr_0`` (N, H, W, C) uint8 and, for a class-conditional
  model, ``arr_1`` (N,) int64 labels;
- anything else: a folder of PNGs named ``<index>_<label>.png`` (``<index>.png`` when unconditional).

Every file is written to a temporary name and renamed into place. Under ``torchrun`` each rank writes
its slice to a part file and rank 0 joins them.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
from rich.console import Console
from torch import Tensor

from gen import distributed
from gen.distributed import DistInfo
from gen.errors import GenError
from gen.images import make_grid, save_png
from gen.progress import progress_bar
from gen.sampling.model import ModelSampler, shard
from gen.sampling.settings import SamplingSettings

OutputKind = Literal["png", "npz", "dir"]


def output_kind(out: str | Path) -> OutputKind:
    """What ``--out`` asks for: a grid (``.png``), ADM arrays (``.npz``) or a folder."""
    suffix = Path(out).suffix.lower()
    if suffix == ".png":
        return "png"
    if suffix == ".npz":
        return "npz"
    if suffix and not Path(out).is_dir():
        raise GenError(
            f"--out {out}: end it in .png (a grid) or .npz (ADM arrays), or give a folder (one PNG per image)"
        )
    return "dir"


def image_name(index: int, label: int | None, n: int) -> str:
    """``000123_207.png`` (index and label; zero-padded to at least 6 digits) or ``000123.png``."""
    width = max(6, len(str(max(n - 1, 0))))
    return f"{index:0{width}d}_{label}.png" if label is not None else f"{index:0{width}d}.png"


def write_adm_npz(path: Path, parts: list[np.ndarray], labels: np.ndarray | None) -> Path:
    """Write ``arr_0`` (the concatenation of ``parts``, each (n_i, H, W, C) uint8) and ``arr_1`` (labels)
    as an ``.npz`` that ``np.load`` reads, streaming the parts so that N images never sit in memory twice."""
    n = sum(p.shape[0] for p in parts)
    shape = (n, *parts[0].shape[1:])
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open("arr_0.npy", "w", force_zip64=True) as f:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False}
            np.lib.format.write_array_header_2_0(f, {**header, "shape": shape})
            for part in parts:
                for i in range(0, part.shape[0], 256):
                    f.write(np.ascontiguousarray(part[i : i + 256]).tobytes())
        if labels is not None:
            with zf.open("arr_1.npy", "w") as f:
                np.lib.format.write_array(f, np.asarray(labels, dtype=np.int64))
    tmp.replace(path)
    return path


def _part_file(out: Path, rank: int, world_size: int) -> Path:
    return out.parent / f".{out.name}.part{rank}-of-{world_size}.npy"


def sample_to(
    out: str | Path,
    sampler: ModelSampler,
    settings: SamplingSettings,
    labels: np.ndarray,
    *,
    seed: int,
    batch_size: int,
    dist: DistInfo,
    console: Console | None = None,
    nrow: int | None = None,
    noise: Tensor | None = None,
) -> Path:
    """Generate ``len(labels)`` images into ``out`` (grid, ADM ``.npz`` or folder), this rank's slice,
    from the noise ``seed`` keys or the given ``noise`` (N, ...) (an inversion's).

    Every rank calls it; rank 0 writes the ``.png``/``.npz`` from the ranks' part files.
    """
    out = Path(out)
    kind = output_kind(out)
    n = len(labels)
    conditional = sampler.spec.num_classes > 0
    mine = shard(n, dist.rank, dist.world_size)
    (out if kind == "dir" else out.parent).mkdir(parents=True, exist_ok=True)
    part = None
    if kind != "dir":
        c, h, w = sampler.output_spec.shape
        path = _part_file(out, dist.rank, dist.world_size)
        part = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(mine), h, w, c))
    who = f" (rank 0 of {dist.world_size})" if dist.enabled else ""
    with progress_bar(console or Console(stderr=True), dist.is_main, f"sample{who}") as progress:
        task = progress.add_task("sample", total=len(mine))

        def on_step(batch: range, k: int, steps: int) -> None:  # the bar moves by images, step by step
            progress.update(task, completed=batch.start - mine.start + len(batch) * k / steps)

        images_of = sampler.images(
            mine, labels, settings, seed=seed, batch_size=batch_size, on_step=on_step, noise=noise
        )
        for idx, images in images_of:
            if part is not None:
                part[idx.start - mine.start : idx.stop - mine.start] = images
            else:
                for i, image in zip(idx, images, strict=True):
                    save_png(out / image_name(i, int(labels[i]) if conditional else None, n), image)
            progress.update(task, completed=idx.stop - mine.start)  # whole images: exact at the end
    if part is not None:
        part.flush()
        del part
    distributed.barrier(dist)
    if kind != "dir" and dist.is_main:
        files = [_part_file(out, r, dist.world_size) for r in range(dist.world_size)]
        parts = [np.load(f, mmap_mode="r") for f in files]
        if kind == "npz":
            write_adm_npz(out, parts, labels if conditional else None)
        else:
            grid = make_grid(np.concatenate(parts), nrow, labels=labels if conditional else None)
            save_png(out, grid)  # a class per row
        del parts
        for f in files:
            f.unlink()
    distributed.barrier(dist)
    return out


__all__ = ["image_name", "output_kind", "sample_to", "write_adm_npz"]
