"""``gen data encode``: images (a class-per-folder tree, or shards of ``gen data pack``) -> latent shards.

Each image is center-cropped as ``pack`` and the trainers crop, encoded by an autoencoder (``sd_vae`` by
default) and, with ``--flip`` (the default, as fast-DiT's feature extraction), encoded mirrored too, so that
training on the latents keeps the flip augmentation without running the VAE. The layout written is the
``latents`` dataset's (`gen_data.latents`).

Reproducible: images are read in the source's order (folder order, or shard and tar order), and the
posterior sample of image ``i`` (view ``v``: 0 = as is, 1 = flipped) comes from a generator seeded by
``(seed, i, v)``, so that a re-run with the same options writes identical shards. Shards, index and
``latents.json`` are written under ``.tmp`` names and renamed at the end, ``latents.json`` last
(`gen_data.latent_writer`), so that a crash leaves nothing that reads as a complete dataset: an error or
a kill removes what was written, and what a SIGKILL leaves is replaced when the same command runs again.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import typer
from rich.console import Console

import gen
from gen_data.folders import scan_image_folder
from gen_data.latent_writer import SHARD_PATTERN, LatentWriter
from gen_data.transforms import IMAGE_EXTENSIONS, center_crop_arr, decode_image, load_image, uint8_to_float

# torch, webdataset and the dataset modules are imported where they are used: `gen data --help` builds this
# command without them.
if TYPE_CHECKING:
    pass

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

console = Console(highlight=False, soft_wrap=True)

#: Batches decoded ahead of the encoder: bounds memory while the decoding processes stay busy.
WINDOW_BATCHES = 4

#: One image to decode: (source index, file path or encoded bytes (None: unreadable), label, crop, note).
Job = tuple[int, "str | bytes | None", int, int, str]


# -- reading the images -----------------------------------------------------------------------------------


def _decode(job: Job) -> tuple[int, np.ndarray | None, int, str]:
    """Worker: ``(index, uint8 (S, S, 3) center crop or None, label, error note)``."""
    index, source, label, size, note = job
    if source is None:
        return index, None, label, note
    try:
        image = load_image(source) if isinstance(source, str) else decode_image(source)
        return index, np.asarray(center_crop_arr(image, size), dtype=np.uint8), label, ""
    except Exception as e:  # noqa: BLE001 - a corrupt image is skipped and reported
        return index, None, label, f"{source if isinstance(source, str) else note}: {type(e).__name__}: {e}"


def _shard_jobs(shards: list[str], size: int, num_classes: int | None) -> Iterator[Job]:
    """The samples of shards in order, as jobs; a sample without an image or a valid class is a bad job."""
    from gen_data.shards import iter_shard

    index = 0
    for url in shards:
        errors: list[str] = []
        for sample in iter_shard(url, errors):
            where = f"{url}/{sample['__key__']}"
            data = next((sample[ext] for ext in IMAGE_EXTENSIONS if ext in sample), None)
            label, note = 0, ""
            if "cls" in sample:
                try:
                    label = int(bytes(sample["cls"]).decode("ascii").strip())
                except ValueError:
                    note = f"{where}: cls is not an integer"
            elif num_classes:
                note = f"{where}: no cls part"
            if num_classes is not None and not note and not 0 <= label < max(num_classes, 1):
                note = f"{where}: label {label} out of range for {num_classes} classes"
            if data is None and not note:
                note = f"{where}: no image part ({', '.join(IMAGE_EXTENSIONS)})"
            yield index, (None if note else bytes(data)), label, size, note or where
            index += 1
        for error in errors:  # a damaged shard ends early: one bad job says so
            yield index, None, -1, size, error
            index += 1


def list_source(src: str, size: int) -> tuple[Iterator[Job], int, dict[str, int] | None]:
    """The jobs of a source, how many there are (for the progress bar) and its class names -> ids.

    ``src`` is a class-per-folder tree, or shards (a folder of ``.tar`` files, a file or a brace pattern).
    """
    from gen_data.shards import count_samples, expand_shards, is_local, read_classes

    path = Path(src)
    if not path.exists() and "{" not in src and is_local(src):
        raise gen.GenError(f"data encode: {src} does not exist; give a class-per-folder tree or shards")
    tars = (".tar", ".tar.gz", ".tgz")
    is_shards = not path.is_dir() or any(p.name.endswith(tars) for p in path.iterdir())
    if not is_shards:
        names, samples = scan_image_folder(path)
        jobs = ((i, p, label, size, "") for i, (p, label) in enumerate(samples))
        return jobs, len(samples), {name: i for i, name in enumerate(names)}
    shards = expand_shards(src)
    remote = [u for u in shards if not is_local(u)]
    if remote:
        raise gen.GenError(f"data encode reads local shards only; {remote[0]} is remote")
    classes = read_classes(shards)
    num_classes = None if classes is None else max(classes.values(), default=-1) + 1
    total = sum(count_samples(u) for u in shards)
    return _shard_jobs(shards, size, num_classes), total, classes


def decoded(
    jobs: Iterator[Job], workers: int, window: int
) -> Iterator[tuple[int, np.ndarray | None, int, str]]:
    """The decoded jobs, in order; ``workers > 1`` decodes a window ahead in that many processes."""
    if workers <= 1:
        yield from map(_decode, jobs)
        return
    context = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
    with context.Pool(workers) as pool:
        chunk = list(itertools.islice(jobs, window))
        pending = pool.map_async(_decode, chunk, chunksize=16) if chunk else None
        while pending is not None:
            results = pending.get()
            chunk = list(itertools.islice(jobs, window))
            pending = pool.map_async(_decode, chunk, chunksize=16) if chunk else None
            yield from results


# -- the command ------------------------------------------------------------------------------------------


def _parse_set(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with the value as TOML (a bare word that is not TOML is a string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or "." in key:
        raise gen.GenError(
            f"--set {text!r}: write KEY=VALUE (an autoencoder option), e.g. --set encode_mode=mean"
        )
    try:
        return key.strip(), tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return key.strip(), raw.strip()


def build_autoencoder(
    name: str | None, vae: str | None, sets: list[str], recipe: Path | None
) -> tuple[Any, int | None]:
    """The autoencoder the options select, and the recipe's image size (None without a recipe or size)."""
    if recipe is not None and name is not None:
        raise gen.GenError(
            "data encode: give --autoencoder or --recipe (whose [autoencoder] is used), not both"
        )
    if recipe is not None:
        overrides = [f"autoencoder.{text}" for text in sets]
        if vae is not None:
            overrides.append(f"autoencoder.path={json.dumps(vae)}")
        loaded = gen.load_recipe(recipe, overrides=overrides)
        section, data = loaded.autoencoder, loaded.data.config
        size = data.sample_shape()[-1] if isinstance(data, gen.ShapeFromConfig) else None
        name, autoencoder = section.name, section.build()
    else:
        fields = dict(_parse_set(text) for text in sets)
        if vae is not None:
            fields["path"] = vae
        name = name or "sd_vae"
        autoencoder, size = gen.build("autoencoder", name, **fields), None
    if autoencoder.identity() == {}:
        raise gen.GenError(
            f"autoencoder {name!r} is pixel space: there is nothing to encode; choose a VAE (sd_vae)"
        )
    return autoencoder, size


def prepare_out(out: Path, src: str, overwrite: bool) -> None:
    """Create ``out``; refuse a non-empty one (or the source itself) unless ``overwrite``, which removes
    what an earlier encode wrote there. What a killed encode left (no ``latents.json``, only its own files,
    a ``.tmp`` among them) is replaced without ``--overwrite``: the same command simply runs again."""
    from gen_data.latents import INDEX_NAME, LATENTS_JSON

    def ours(p: Path) -> bool:
        name = p.name.removesuffix(".tmp")
        return p.is_file() and (name in (LATENTS_JSON, INDEX_NAME) or re.fullmatch(r"shard-\d{6}\.tar", name))

    if Path(src).exists() and out.resolve() == Path(src).resolve():
        raise gen.GenError(f"data encode: OUT {out} is the source; choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    present = sorted(out.iterdir())
    killed = (
        all(map(ours, present)) and any(p.suffix == ".tmp" for p in present) and LATENTS_JSON not in present
    )
    if present and not (overwrite or killed):
        raise gen.GenError(
            f"data encode: {out} is not empty ({present[0].name}...); choose an empty folder or pass --overwrite"
        )
    if killed and not overwrite:
        console.print(
            f"note: {out} holds the files of an interrupted encode; they are replaced", markup=False
        )
    for p in filter(ours, present):
        p.unlink()


@attrs.frozen(kw_only=True)
class EncodeOptions:
    """How `encode_all` runs: images per encoder call, the seed of the posterior samples, whether
    flips are encoded too, decoding processes and the encoding device."""

    batch_size: int
    seed: int
    flip: bool
    workers: int
    device: str


def encode_all(
    jobs: Iterator[Job], total: int, autoencoder: Any, writer: LatentWriter, options: EncodeOptions
) -> tuple[list[int], int, str]:
    """Decode, encode and write every job; returns (labels written, unreadable images, last error)."""
    import torch

    batch_size, seed, flip = options.batch_size, options.seed, options.flip
    bad, last_error = 0, ""
    stream = decoded(jobs, options.workers, WINDOW_BATCHES * batch_size)
    with gen.progress_bar(console, True, "encoding") as progress:
        task = progress.add_task("encode", total=total)
        while chunk := list(itertools.islice(stream, batch_size)):
            progress.advance(task, len(chunk))
            good = [(i, image, label) for i, image, label, _ in chunk if image is not None]
            failed = [note for _, image, _, note in chunk if image is None]
            bad, last_error = bad + len(failed), (failed[-1] if failed else last_error)
            if not good:
                continue
            indices = [i for i, _, _ in good]
            x = uint8_to_float(torch.from_numpy(np.stack([im for _, im, _ in good])).permute(0, 3, 1, 2))
            views = [x, x.flip(-1)] if flip else [x]  # (B, 3, S, S) each; the flip mirrors the width
            generators = [
                torch.Generator().manual_seed(gen.key_seed(seed, i, v))
                for v in range(len(views))
                for i in indices
            ]
            x = torch.cat(views).to(options.device)  # (V B, 3, S, S)
            z = autoencoder.encode(x, generator=generators)  # (V B, c, h, w)
            # -> (B, V, c, h, w): each image's latents, as is then flipped
            z = z.float().cpu().reshape(len(views), len(good), *z.shape[1:]).transpose(0, 1).numpy()
            for (i, _, label), latents in zip(good, z, strict=True):
                writer.write(i, latents, label)
    writer.close()
    return writer.labels, bad, last_error


def encode_command(
    src: str = typer.Argument(..., help="Images: a class-per-folder tree, or shards of `gen data pack`."),
    out: Path = typer.Argument(..., help="Output folder for the latent shards, index.npy and latents.json."),
    autoencoder_name: str | None = typer.Option(
        None, "--autoencoder", help="The registered autoencoder (default sd_vae)."
    ),
    vae: str | None = typer.Option(
        None, "--vae", help="The autoencoder's `path` (sd_vae: a diffusers folder)."
    ),
    sets: list[str] = typer.Option([], "--set", help="Another autoencoder option, KEY=VALUE (repeatable)."),
    recipe: Path | None = typer.Option(
        None, "--recipe", help="Use the autoencoder section and image size of this recipe."
    ),
    image_size: int | None = typer.Option(
        None, "--image-size", min=1, help="Side of the center crop (default: the recipe's, else 256)."
    ),
    batch_size: int = typer.Option(
        64, "--batch-size", min=1, help="Images per encoder call (twice that with --flip)."
    ),
    shard_size: int = typer.Option(5000, "--shard-size", min=1, help="Samples per shard."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the posterior samples (keyed by image)."),
    flip: bool = typer.Option(
        True, "--flip/--no-flip", help="Also encode each image mirrored (flip augmentation)."
    ),
    workers: int = typer.Option(
        0, "--workers", min=0, help="Image decoding processes; 0 = one per CPU core."
    ),
    device: str = typer.Option("", "--device", help="Where to encode; default cuda if available, else cpu."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace what an earlier encode wrote in OUT."),
) -> None:
    """Encode images into latent shards for the `latents` dataset (DiT/SiT train on them)."""
    import torch

    autoencoder, recipe_size = build_autoencoder(autoencoder_name, vae, sets, recipe)
    size = image_size or recipe_size or 256
    try:
        latent_shape = autoencoder.latent_shape((3, size, size))
    except ValueError as e:
        raise gen.GenError(f"data encode: {e}; choose another --image-size") from None
    jobs, total, classes = list_source(src, size)
    prepare_out(out, src, overwrite)
    writer = LatentWriter(out, shard_size)
    options = EncodeOptions(
        batch_size=batch_size,
        seed=seed,
        flip=flip,
        workers=workers or os.cpu_count() or 1,
        device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
    )
    try:
        labels, bad, last_error = encode_all(jobs, total, autoencoder, writer, options)
        if not labels:
            raise gen.GenError(f"data encode: no readable images in {src} ({bad} failed; last: {last_error})")
        # shards without classes.json: the classes their cls parts name (a shard without any: one class, 0)
        num_classes = len(classes) if classes is not None else max(labels) + 1
        meta = {
            "encoded_by": autoencoder.identity(),
            "latent_shape": list(latent_shape),
            "image_shape": [3, size, size],
            "num_samples": len(labels),
            "num_classes": num_classes,
            "flip": flip,
            "shards": [SHARD_PATTERN % s for s in range(len(writer.tmp))],
            "classes": classes,
            "source": str(src),
            "seed": seed,
        }
        writer.publish(meta)
    except BaseException:  # an error or a kill (KeyboardInterrupt): nothing is left to be taken for data
        writer.discard()
        raise
    if bad:
        console.print(f"warning: skipped {bad} unreadable image(s); last: {last_error}", markup=False)
    console.print(
        f"wrote {len(labels)} latents {tuple(latent_shape)} of {num_classes} classes in {len(writer.tmp)} "
        f"shard(s) to {out} (+ index.npy, latents.json)",
        markup=False,
    )
