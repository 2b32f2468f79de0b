"""``gen data pack`` (image folder -> WebDataset shards), ``gen data info`` (counts, classes, a grid) and
``gen data encode`` (images -> latent shards, `gen_data.encode`)."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import random
import tarfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

import gen
from gen_data.encode import encode_command
from gen_data.folders import LAYOUTS, scan_image_folder
from gen_data.transforms import CHANNEL_MODES, center_crop_arr, load_image, to_uint8_chw

# torch, webdataset and gen_data.shards (torch) are imported where they are used: `gen data --help` builds
# these commands without them.
if TYPE_CHECKING:
    import torch

data_app = typer.Typer(
    help="Prepare and inspect datasets (WebDataset shards, image folders).", no_args_is_help=True
)
console = Console(highlight=False, soft_wrap=True)

SHARD_PATTERN = "shard-%06d.tar"


# -- pack ------------------------------------------------------------------------------------------------


def _encode(job: tuple[str, int, str, int, str]) -> tuple[bytes | None, str, bool]:
    """Worker: read, center-crop and encode one image in PIL ``mode`` (L, RGB, RGBA).

    Returns:
        ``(bytes, "", upscaled)`` or ``(None, error, False)``; ``upscaled`` when the image's short side
        was below ``size``.
    """
    path, size, fmt, quality, mode = job
    try:
        image = load_image(path, mode)
        upscaled = min(image.size) < size
        image = center_crop_arr(image, size)
        buffer = io.BytesIO()
        if fmt == "jpg":
            image.save(buffer, format="JPEG", quality=quality, subsampling=0)
        elif fmt == "webp":
            image.save(buffer, format="WEBP", quality=quality)
        else:
            image.save(buffer, format="PNG", compress_level=6)
        return buffer.getvalue(), "", upscaled
    except Exception as e:  # noqa: BLE001 - a corrupt file is skipped and reported
        return None, f"{path}: {type(e).__name__}: {e}", False


def _check_layout(layout: str, labels: str) -> None:
    if layout not in LAYOUTS:
        raise gen.GenError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if labels and layout != "auto":
        raise gen.GenError(f"--labels gives the labels; leave --layout at auto (it was {layout})")


_LAYOUT_HELP = "auto (class sub-folders if any, else flat), classes, or flat (unconditional)."
_LABELS_HELP = "A .csv (filename,label) or .json labels file, relative to SRC; replaces the layout's labels."


@data_app.command("pack")
def pack_command(
    src: Path = typer.Argument(
        ..., help="Image folder: one sub-folder per class (ImageNet train layout), or images directly."
    ),
    out: Path = typer.Argument(..., help="Output folder for the shards and classes.json."),
    size: int = typer.Option(256, "--size", min=1, help="Side of the center crop stored in the shards."),
    channels: int = typer.Option(
        3, "--channels", help="Channels stored: 1 grayscale (PNG L), 3 RGB, 4 RGBA (png or webp)."
    ),
    layout: str = typer.Option("auto", "--layout", help=_LAYOUT_HELP),
    labels: str = typer.Option("", "--labels", help=_LABELS_HELP),
    shard_size: int = typer.Option(5000, "--shard-size", min=1, help="Samples per shard."),
    fmt: str = typer.Option("png", "--format", help="Stored image format: png (lossless), jpg or webp."),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help="jpg/webp quality."),
    shuffle: bool = typer.Option(
        True, "--shuffle/--no-shuffle", help="Shuffle samples across shards (recommended)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the shuffle."),
    workers: int = typer.Option(0, "--workers", min=0, help="Encoding processes; 0 = one per CPU core."),
) -> None:
    """Pack an image folder into WebDataset shards, center-cropped once (ADM/DiT/JiT crop)."""
    import webdataset

    if fmt not in ("png", "jpg", "webp"):
        raise gen.GenError(f"--format must be png, jpg or webp, got {fmt!r}")
    if channels not in CHANNEL_MODES:
        raise gen.GenError(f"--channels must be 1, 3 or 4, got {channels}")
    if channels == 4 and fmt == "jpg":
        raise gen.GenError("--format jpg cannot store 4 channels (RGBA); use --format png or webp")
    _check_layout(layout, labels)
    classes, samples = scan_image_folder(src, layout=layout, labels=labels)
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(out.glob("shard-*.tar"))
    if existing:
        raise gen.GenError(
            f"{out} already holds shards ({existing[0].name}...); remove them or choose another folder"
        )
    order = list(range(len(samples)))
    if shuffle:
        random.Random(seed).shuffle(order)
    jobs = [(samples[i][0], size, fmt, quality, CHANNEL_MODES[channels]) for i in order]
    workers = workers or os.cpu_count() or 1
    written, bad, last_error, upscaled = 0, 0, "", 0
    pattern = os.path.join(str(out).replace("%", "%%"), SHARD_PATTERN)
    with webdataset.ShardWriter(pattern, maxcount=shard_size, verbose=0, encoder=False, mtime=0) as sink:
        with gen.progress_bar(console, True, "packing") as progress:
            task = progress.add_task("pack", total=len(jobs))
            if workers > 1:
                pool = multiprocessing.get_context("spawn" if os.name == "nt" else "fork").Pool(workers)
                results = pool.imap(_encode, jobs, chunksize=16)
            else:
                pool = None
                results = map(_encode, jobs)
            try:
                for i, (data, error, small) in zip(order, results, strict=True):
                    progress.advance(task)
                    if data is None:
                        bad += 1
                        last_error = error
                        continue
                    upscaled += small
                    label = samples[i][1]
                    sink.write({"__key__": f"{written:08d}", fmt: data, "cls": str(label).encode("ascii")})
                    written += 1
            finally:
                if pool is not None:
                    pool.terminate()
        shards = sink.shard
    if written == 0:
        for empty in out.glob("shard-*.tar"):
            empty.unlink()
        raise gen.GenError(f"no readable images in {src} ({bad} failed; last: {last_error})")
    (out / "classes.json").write_text(
        json.dumps({name: i for i, name in enumerate(classes)}, indent=1) + "\n"
    )
    if bad:
        console.print(f"warning: skipped {bad} unreadable image(s); last: {last_error}", markup=False)
    if upscaled:
        console.print(
            f"warning: {upscaled} of {written} images were smaller than --size {size} (short side) and were "
            "upscaled (BICUBIC)",
            markup=False,
        )
    last = max(shards - 1, 0)
    what = f"of {len(classes)} classes" if classes else "(unconditional: no classes)"
    read_as = f", {channels} channel(s): read them with channels = {channels}" if channels != 3 else ""
    console.print(
        f"wrote {written} samples {what} in {shards} shard(s): "
        f"{out}/shard-{{000000..{last:06d}}}.tar (+ classes.json){read_as}",
        markup=False,
    )


# -- info ------------------------------------------------------------------------------------------------


def _shard_stats(url: str) -> tuple[int, Counter[int], Counter[str]]:
    """Samples, label counts and image formats of one local shard, from the tar (no decoding)."""
    from gen_data.shards import local_path

    labels: Counter[int] = Counter()
    formats: Counter[str] = Counter()
    keys = set()
    with tarfile.open(local_path(url), "r:*") as tar:
        for member in tar:
            if not member.isreg() or "." not in os.path.basename(member.name):
                continue
            key, ext = member.name.rsplit("/", 1)[-1].split(".", 1)
            ext = ext.lower()
            if ext in ("jpg", "jpeg", "png", "webp"):
                keys.add(key)
                formats[ext] += 1
            elif ext == "cls":
                handle = tar.extractfile(member)
                if handle is not None:
                    try:
                        labels[int(handle.read().decode("ascii").strip())] += 1
                    except ValueError:
                        labels[-1] += 1
    return len(keys), labels, formats


def _print_counts(
    kind: str, total: int, labels: Counter[int], names: dict[int, str] | None, extra: str
) -> None:
    console.print(f"{kind}: {total} samples, {len(labels)} classes{extra}", markup=False)
    if not labels:
        return
    counts = sorted(labels.values())
    console.print(
        f"per class: min {counts[0]}, median {counts[len(counts) // 2]}, max {counts[-1]}", markup=False
    )
    table = Table(show_header=True, header_style="bold")
    for col in ("label", "class", "samples"):
        table.add_column(col)
    shown = sorted(labels)
    for label in shown[:10]:
        table.add_row(str(label), (names or {}).get(label, "-"), str(labels[label]))
    if len(shown) > 10:
        table.add_row("...", f"({len(shown) - 10} more)", "")
    console.print(table)


def _grid_from_folder(
    samples: list[tuple[str, int]], count: int, size: int
) -> tuple[torch.Tensor, list[int], int]:
    """Up to ``count`` center-cropped images spread evenly over the folder, their labels, and how many
    were unreadable."""
    step = max(1, len(samples) // count)
    images, labels, bad = [], [], 0
    for path, label in samples[::step][:count]:
        try:
            images.append(to_uint8_chw(center_crop_arr(load_image(path), size)))
        except Exception:  # noqa: BLE001
            bad += 1
            continue
        labels.append(label)
    return _stack(images, size), labels, bad


def _grid_from_shards(shards: list[str], count: int, size: int) -> tuple[torch.Tensor, list[int], int]:
    """The first ``count`` decodable images of the shards (center-cropped), their labels (-1 where a
    sample has no readable ``cls``), and how many failed."""
    import torch

    from gen_data.shards import decode_sample, iter_shard

    images, labels, bad = [], [], 0
    for url in shards:
        errors: list[str] = []
        for sample in iter_shard(url, errors):
            try:
                image, _ = decode_sample(sample, size, 0, False)
            except Exception:  # noqa: BLE001
                bad += 1
                continue
            images.append(image)
            labels.append(_cls(sample))
            if len(images) == count:
                return torch.stack(images), labels, bad
        bad += len(errors)
    return _stack(images, size), labels, bad


def _cls(sample: dict) -> int:
    try:
        return int(bytes(sample["cls"]).decode("ascii").strip())
    except (KeyError, ValueError):
        return -1


def _stack(images: list[torch.Tensor], size: int) -> torch.Tensor:
    import torch

    return torch.stack(images) if images else torch.zeros(0, 3, size, size, dtype=torch.uint8)


def _write_grid(path: Path, images: torch.Tensor, labels: list[int] | None) -> None:
    """The grid of ``gen.make_grid``: a class per row when the images have labels, the padding white."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tiles = images.permute(0, 2, 3, 1).numpy()  # (N, C, H, W) -> (N, H, W, C)
    gen.save_png(path, gen.make_grid(tiles, labels=labels))


def _looks_like_shards(path: str) -> bool:
    from gen_data.shards import is_local

    p = Path(path)
    if p.is_dir():
        return any(c.name.endswith((".tar", ".tar.gz", ".tgz")) for c in p.iterdir())
    return "{" in path or path.endswith((".tar", ".tar.gz", ".tgz")) or not is_local(path)


@data_app.command("info")
def info_command(
    path: str = typer.Argument(
        ...,
        help="Shards (folder, .tar file or brace pattern) or an image folder (class sub-folders or flat).",
    ),
    layout: str = typer.Option("auto", "--layout", help="An image folder's layout: " + _LAYOUT_HELP),
    labels: str = typer.Option("", "--labels", help=_LABELS_HELP.replace("SRC", "PATH")),
    grid: Path | None = typer.Option(None, "--grid", help="Also write a grid of sample images to this PNG."),
    grid_count: int = typer.Option(64, "--grid-count", min=1, help="Images in the grid."),
    grid_size: int = typer.Option(64, "--grid-size", min=8, help="Side of each grid image (center crop)."),
) -> None:
    """Print sample and class counts of a dataset; optionally write a grid of its images."""
    from gen_data.shards import expand_shards, is_local, local_path, read_classes

    if _looks_like_shards(path):
        if labels or layout != "auto":
            raise gen.GenError("--layout and --labels are for image folders; shards carry their labels")
        shards = expand_shards(path)
        remote = [u for u in shards if not is_local(u)]
        if remote:
            raise gen.GenError(f"data info reads local shards only; {remote[0]} is remote")
        classes = read_classes(shards)
        names = {i: n for n, i in classes.items()} if classes else None
        total, label_counts, formats = 0, Counter(), Counter()
        for url in shards:
            try:
                n, lab, fmts = _shard_stats(url)
            except (tarfile.TarError, OSError, EOFError) as e:
                raise gen.GenError(f"cannot read shard {local_path(url)}: {e}") from None
            total += n
            label_counts.update(lab)
            formats.update(fmts)
        fmt_text = ", ".join(f"{k} {v}" for k, v in sorted(formats.items()))
        extra = f" in {len(shards)} shard(s); images: {fmt_text or 'none'}"
        extra += f"; classes.json: {len(classes)} names" if classes else "; no classes.json"
        _print_counts("webdataset", total, label_counts, names, extra)
        images, grid_labels, bad = _grid_from_shards(shards, grid_count, grid_size) if grid else (None, [], 0)
        conditional = bool(label_counts) and -1 not in grid_labels
    else:
        _check_layout(layout, labels)
        class_names, samples = scan_image_folder(path, layout=layout, labels=labels)
        if class_names:
            counts = Counter(label for _, label in samples)
            _print_counts("imagefolder", len(samples), counts, dict(enumerate(class_names)), "")
        else:
            console.print(
                f"imagefolder: {len(samples)} samples, unconditional (a flat folder: every label 0)",
                markup=False,
            )
        images, grid_labels, bad = (
            _grid_from_folder(samples, grid_count, grid_size) if grid else (None, [], 0)
        )
        conditional = bool(class_names)
    if grid is not None and images is not None:
        if len(images) == 0:
            raise gen.GenError(f"no readable images in {path} for the grid")
        _write_grid(grid, images, grid_labels if conditional else None)
        note = f" ({bad} unreadable skipped)" if bad else ""
        console.print(f"wrote a grid of {len(images)} images to {grid}{note}", markup=False)


# -- encode (its own module: images -> latent shards) ------------------------------------------------------

data_app.command("encode")(encode_command)
