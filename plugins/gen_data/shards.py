"""``webdataset``: ImageNet-style WebDataset shards (tar files of ``<key>.jpg`` + ``<key>.cls``), streamed.

How the stream is laid out, so that every rank gets the same number of batches and no two ranks read
the same sample:

- The shard list is shuffled once with the seed and dealt to ranks (``shards[rank::world_size]``): a
  rank only ever reads its own shards. (Needs at least one shard per rank.)
- An *epoch* is ``num_samples // (world_size * batch_size)`` batches on every rank. In epoch ``e`` a
  rank reshuffles its shards with ``(seed, rank, e)`` and deals them to its readers (DataLoader
  workers; ``min(num_workers, shards of the rank)`` of them); reader ``r`` yields the epoch's batches
  ``g`` with ``g % readers == r``, reading its shards round and round if they run short (a resampled
  stream) and dropping what is left at the epoch's end. Each pass over a reader's shards goes through a
  seeded shuffle buffer that is drained at the pass's end (no sample repeats before all were seen), and
  a sample's flip is drawn from its ordinal in the epoch.
- Resuming at ``start_batch`` restarts the epoch it falls in with the same seeds and skips (without
  decoding) the samples of the batches before it. This reproduces the stream exactly unless corrupt
  samples were dropped before ``start_batch`` in that epoch, or ``num_workers`` changed: streaming has
  no random access, so that is the best approximation.

Each sample: the first of ``jpg``, ``jpeg``, ``png``, ``webp`` is decoded to ``channels`` (1 grayscale,
3 RGB, 4 RGBA; ``gen data pack --channels`` keeps the count in the PNGs), center-cropped as
ADM/DiT/JiT do, optionally flipped; ``cls`` holds the class id as ASCII digits. A sample that cannot be
decoded, lacks a part or has an out-of-range label is skipped, counted and reported with a warning. A
local shard that is not a tar file at all is refused when the dataset is built, with the list of them,
so that training does not die at the step that first reads it.
"""

from __future__ import annotations

import json
import os
import random
import re
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import attrs
import torch
from attrs import validators as v
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from webdataset.gopen import gopen
from webdataset.shardlists import expand_urls
from webdataset.tariterators import base_plus_ext, tar_file_iterator

import gen
from gen_data.stream import (
    SkipReporter,
    check_stream_args,
    logger,
    mix_seed,
    one_line_errors,
    unwrap_worker_error,
)
from gen_data.transforms import (
    CHANNEL_MODES,
    IMAGE_EXTENSIONS,
    RANDOM_FLIP_DOC,
    center_crop_arr,
    decode_image,
    to_uint8_chw,
    uint8_to_float,
)

#: How many consecutive bad samples a reader may meet before it gives up with an error.
MAX_CONSECUTIVE_CORRUPT = 1000
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # pipe:, http:, s3:... (file: counts as local)


@attrs.frozen(kw_only=True)
class WebDatasetConfig:
    """WebDataset tar shards of ``<key>.jpg|png|webp`` + ``<key>.cls`` samples (e.g. from `gen data pack`)."""

    urls: str | tuple[str, ...] = gen.field(
        "",
        doc="Shards: a brace pattern ('data/train-{000000..000127}.tar'), a folder of .tar files, or a list.",
    )
    image_size: int = gen.field(256, doc="Side of the square center crop in pixels.", validator=v.ge(1))
    channels: Literal[1, 3, 4] = gen.field(
        3, doc="Channels images are decoded to: 1 grayscale (L), 3 RGB, 4 RGBA (as packed with --channels)."
    )
    num_classes: int | None = gen.field(
        None,
        doc="Number of classes; None reads classes.json beside the shards.",
        validator=v.optional(v.ge(0)),
    )
    num_samples: int | None = gen.field(
        None,
        doc="Samples in the dataset (defines an epoch); None counts the local shards at start.",
        validator=v.optional(v.ge(1)),
    )
    shuffle_buffer: int = gen.field(
        1000, doc="Samples held in each reader's shuffle buffer (0 = no shuffling).", validator=v.ge(0)
    )
    random_flip: bool = gen.field(True, doc=RANDOM_FLIP_DOC)
    num_workers: int = gen.field(
        4, doc="DataLoader worker processes reading shards (0 = in process).", validator=v.ge(0)
    )

    def sample_shape(self) -> tuple[int, int, int]:
        """(channels, image_size, image_size): known without the shards."""
        return (self.channels, self.image_size, self.image_size)

    def local_paths(self) -> list[tuple[str, str]]:
        """Every local entry of ``urls`` (a folder, or each shard of a brace pattern); remote ones are
        left out (`gen.LocalPaths`: checked before any work)."""
        entries = [self.urls] if isinstance(self.urls, str) else list(self.urls)
        if not any(entries):
            return [("urls", "")]
        return [("urls", local_path(url)) for e in entries if e for url in expand_urls(e) if is_local(url)]

    def spec(self) -> gen.DataSpec | None:
        """The spec, with the classes from the recipe or from ``classes.json`` beside local shards; None
        when neither tells them here (remote shards, or shards not on this machine)."""
        num_classes = self.num_classes
        if num_classes is None:
            try:
                classes = read_classes(expand_shards(self.urls))
            except gen.GenError:
                return None  # the shards are not here: gen train says what is missing
            if classes is None:
                return None
            num_classes = max(classes.values(), default=-1) + 1
        return gen.DataSpec(shape=self.sample_shape(), num_classes=num_classes)


# -- shard lists ----------------------------------------------------------------------------------------


def is_local(url: str) -> bool:
    """True for a plain path or a ``file:`` URL."""
    return url.startswith("file:") or not _REMOTE.match(url)


def local_path(url: str) -> str:
    """The path of a local shard URL (``file:///a/b.tar`` -> ``/a/b.tar``)."""
    return re.sub(r"^file:(//)?", "", url)


def expand_shards(urls: str | tuple[str, ...] | list[str]) -> list[str]:
    """Shard URLs from a brace pattern, a folder of ``.tar`` files or a list (each entry expanded).

    Raises:
        gen.GenError: when nothing is given, or a local shard does not exist (naming its path).
    """
    entries = [urls] if isinstance(urls, str) else list(urls)
    shards: list[str] = []
    for entry in entries:
        if not entry:
            continue
        if is_local(entry) and os.path.isdir(local_path(entry)):
            found = sorted(
                str(p)
                for p in Path(local_path(entry)).iterdir()
                if p.name.endswith((".tar", ".tar.gz", ".tgz"))
            )
            if not found:
                raise gen.GenError(f"webdataset: no .tar shards in folder {local_path(entry)}")
            shards.extend(found)
        else:
            shards.extend(expand_urls(entry))
    if not shards:
        raise gen.GenError(
            "webdataset: set `urls` to the shards (a brace pattern, a folder or a list of paths)"
        )
    for url in shards:
        if is_local(url) and not os.path.isfile(local_path(url)):
            raise gen.GenError(f"webdataset: shard not found: {local_path(url)}")
    return shards


def read_classes(shards: list[str]) -> dict[str, int] | None:
    """``classes.json`` (class name -> index) beside the first local shard, if there is one."""
    if not is_local(shards[0]):
        return None
    path = Path(local_path(shards[0])).parent / "classes.json"
    if not path.is_file():
        return None
    try:
        classes = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise gen.GenError(f"webdataset: cannot read {path}: {e}") from None
    if not isinstance(classes, dict) or not all(isinstance(i, int) for i in classes.values()):
        raise gen.GenError(f"webdataset: {path} must map class names to integer indices")
    return classes


def shard_problem(url: str) -> str | None:
    """Why a local shard is not a tar file, from its first header (None when it is one, or is remote).

    Damage further in (a truncated tar) is not looked for here: the stream reads up to it and goes on.
    """
    if not is_local(url):
        return None
    path = local_path(url)
    mode = "r:gz" if path.endswith((".tar.gz", ".tgz")) else "r:" if path.endswith(".tar") else "r:*"
    try:
        with tarfile.open(path, mode):  # reads (and checks) the first member's header
            return None
    except (tarfile.TarError, OSError, EOFError) as e:
        return f"{type(e).__name__}: {' '.join(str(e).split())}"


def check_shards(shards: list[str]) -> None:
    """Refuse, before training starts, shards that are not tar files, listing them (one line)."""
    bad = [(url, why) for url in shards if (why := shard_problem(url)) is not None]
    if not bad:
        return
    names = ", ".join(local_path(url) for url, _ in bad[:5]) + (
        f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    )
    raise gen.GenError(
        f"webdataset: {len(bad)} of {len(shards)} shard(s) are not tar files: {names} ({bad[0][1]}); "
        "remove them from urls or pack them again (`gen data pack`)"
    )


def count_samples(url: str) -> int:
    """Samples (keys with an image part) in a local shard, from its tar headers (no decoding)."""
    keys = set()
    path = local_path(url)
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isreg():
                    continue
                key, ext = base_plus_ext(member.name)
                if key is not None and ext.lower() in IMAGE_EXTENSIONS:
                    keys.add(key)
    except (tarfile.TarError, OSError, EOFError) as e:
        logger.warning(
            "webdataset: %s is damaged (%s); counted %d samples before the damage", path, e, len(keys)
        )
    return len(keys)


def iter_shard(url: str, errors: list[str]) -> Iterator[dict[str, Any]]:
    """Raw samples ``{"__key__": ..., "<ext>": bytes}`` of one shard, in tar order.

    Damage (a truncated or unreadable tar) ends the shard early and appends a note to ``errors``.
    """
    current: dict[str, Any] | None = None
    try:
        stream = gopen(url, "rb")
        try:
            for item in tar_file_iterator(stream):
                key, ext = base_plus_ext(item["fname"])
                if key is None:
                    continue
                if current is not None and current["__key__"] != key:
                    yield current
                    current = None
                if current is None:
                    current = {"__key__": key, "__url__": url}
                current[ext.lower()] = item["data"]
        finally:
            stream.close()
    except Exception as e:  # noqa: BLE001 - a damaged shard must not stop training
        errors.append(f"{url}: {type(e).__name__}: {e}")
        current = None  # its last sample may be incomplete
    if current is not None:
        yield current


def decode_sample(
    sample: dict[str, Any], image_size: int, num_classes: int, flip: bool, channels: int = 3
) -> tuple[torch.Tensor, int]:
    """A raw sample -> (uint8 image (C, S, S), label), C = ``channels``. Raises ValueError (or a PIL
    error) if it is bad.

    With ``num_classes == 0`` (unconditional) the ``cls`` part is optional and every label is 0.
    """
    data = next((sample[ext] for ext in IMAGE_EXTENSIONS if ext in sample), None)
    if data is None:
        raise ValueError(f"no image part ({', '.join(IMAGE_EXTENSIONS)})")
    label = 0
    if num_classes > 0:
        if "cls" not in sample:
            raise ValueError("no cls part")
        label = int(bytes(sample["cls"]).decode("ascii").strip())
        if not 0 <= label < num_classes:
            raise ValueError(f"label {label} out of range for num_classes={num_classes}")
    image = center_crop_arr(decode_image(data, CHANNEL_MODES[channels]), image_size)
    return to_uint8_chw(image, flip=flip), label


def shuffled(items: Iterable[Any], buffer: int, rng: random.Random) -> Iterator[Any]:
    """A streaming shuffle: hold ``buffer`` items and emit a random one as each new item arrives."""
    if buffer <= 1:
        yield from items
        return
    held: list[Any] = []
    for item in items:
        if len(held) < buffer:
            held.append(item)
            continue
        i = rng.randrange(len(held))
        held[i], item = item, held[i]
        yield item
    rng.shuffle(held)
    yield from held


# -- the stream -------------------------------------------------------------------------------------------


@attrs.frozen
class _Plan:
    """Everything a reader needs (picklable, so DataLoader workers can receive it)."""

    shards: tuple[str, ...]  # this rank's shards
    readers: int
    batches_per_epoch: int
    batch_size: int
    seed: int
    rank: int
    image_size: int
    channels: int
    num_classes: int
    shuffle_buffer: int
    random_flip: bool


class _Reader:
    """Reader ``role`` of a rank: the batches ``g`` with ``g % readers == role``, from ``start_batch`` on."""

    def __init__(self, plan: _Plan, role: int):
        self.plan = plan
        self.role = role
        self.skipped = 0
        self.note = ""

    def _first_batch(self, epoch: int) -> int:
        """The first global batch of ``epoch`` that this reader owns."""
        start = epoch * self.plan.batches_per_epoch
        return start + (self.role - start) % self.plan.readers

    def _samples(self, epoch: int) -> Iterator[dict[str, Any]]:
        """Endless raw samples of this reader in ``epoch``: passes over its shards, each pass shuffled.

        The shuffle buffer is drained at the end of every pass, so a reader yields each of its samples
        once before it repeats any (a buffer larger than the data never duplicates samples).
        """
        p = self.plan
        order = list(p.shards)
        random.Random(mix_seed(p.seed, p.rank, epoch)).shuffle(order)
        mine = order[self.role :: p.readers]
        rng = random.Random(mix_seed(p.seed, p.rank, epoch, self.role, 1))
        while True:
            found = 0
            for sample in shuffled(self._one_pass(mine), p.shuffle_buffer, rng):
                found += 1
                yield sample
            if found == 0:
                raise gen.GenError(
                    f"webdataset: no samples could be read from shards {', '.join(mine)}; last error: {self.note}"
                )

    def _one_pass(self, urls: list[str]) -> Iterator[dict[str, Any]]:
        for url in urls:
            errors: list[str] = []
            yield from iter_shard(url, errors)
            for note in errors:  # a damaged shard counts once
                self.skipped += 1
                self.note = note

    def batches(self, start_batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, int, str]]:
        """Endless ``(uint8 images (B, C, S, S), labels (B,), skipped, note)`` of this reader's batches."""
        p = self.plan
        g = start_batch + (self.role - start_batch) % p.readers  # first owned batch >= start_batch
        epoch = g // p.batches_per_epoch
        skip = (g - self._first_batch(epoch)) // p.readers  # owned batches of this epoch before g
        while True:
            # (ordinal within the epoch, raw sample): the flip of a sample hangs on its ordinal, so
            # skipping on resume keeps the flips in step
            samples = enumerate(self._samples(epoch))
            for _ in range(skip * p.batch_size):  # resume: pass over samples without decoding
                next(samples)
            end = (epoch + 1) * p.batches_per_epoch
            while g < end:
                yield self._batch(samples, epoch)
                g += p.readers
            epoch, skip = epoch + 1, 0

    def _batch(
        self, samples: Iterator[tuple[int, dict[str, Any]]], epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor, int, str]:
        p = self.plan
        images, labels, bad = [], [], 0
        while len(images) < p.batch_size:
            ordinal, sample = next(samples)
            flip = p.random_flip and bool(mix_seed(p.seed, p.rank, epoch, self.role, ordinal) & 1)
            try:
                image, label = decode_sample(sample, p.image_size, p.num_classes, flip, p.channels)
            except Exception as e:  # noqa: BLE001 - any failure means a corrupt sample
                self.skipped += 1
                self.note = f"{sample.get('__url__')}/{sample.get('__key__')}: {type(e).__name__}: {e}"
                bad += 1
                if bad >= MAX_CONSECUTIVE_CORRUPT:
                    raise gen.GenError(
                        f"webdataset: {bad} consecutive corrupt samples; last: {self.note}"
                    ) from None
                continue
            bad = 0
            images.append(image)
            labels.append(label)
        skipped, note = self.skipped, self.note
        self.skipped, self.note = 0, ""
        return torch.stack(images), torch.tensor(labels, dtype=torch.int64), skipped, note


class _RankStream(IterableDataset):
    """What each DataLoader worker runs: the reader whose role lines up with the loader's round robin."""

    def __init__(self, plan: _Plan, start_batch: int):
        self.plan = plan
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, int, str]]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        # The loader hands out batch i (= global batch start_batch + i) from worker i % readers.
        role = (self.start_batch + worker) % self.plan.readers
        batches = _Reader(self.plan, role).batches(self.start_batch)
        while True:
            # The yield stays outside the try (see gen_data.stream.one_line_errors): closing an
            # abandoned stream at interpreter exit must not evaluate `gen.GenError`.
            try:
                item = next(batches)
            except StopIteration:
                return
            except gen.GenError as e:
                # Hand the error over as data: a loader whose worker raised waits 5 s per worker to shut down.
                yield ("error", str(e))  # type: ignore[misc]
                return
            yield item


class _Pass(IterableDataset):
    """One finite pass over all shards (reference statistics), split among workers, no flips."""

    def __init__(self, shards: list[str], batch_size: int, image_size: int, num_classes: int, channels: int):
        self.shards, self.batch_size, self.image_size, self.num_classes, self.channels = (
            shards,
            batch_size,
            image_size,
            num_classes,
            channels,
        )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, int, str]]:
        info = get_worker_info()
        mine = self.shards[info.id :: info.num_workers] if info is not None else self.shards
        images: list[torch.Tensor] = []
        labels: list[int] = []
        skipped, note = 0, ""
        for url in mine:
            errors: list[str] = []
            for sample in iter_shard(url, errors):
                try:
                    image, label = decode_sample(
                        sample, self.image_size, self.num_classes, False, self.channels
                    )
                except Exception as e:  # noqa: BLE001
                    skipped += 1
                    note = f"{url}/{sample.get('__key__')}: {type(e).__name__}: {e}"
                    continue
                images.append(image)
                labels.append(label)
                if len(images) == self.batch_size:
                    yield torch.stack(images), torch.tensor(labels), skipped, note
                    images, labels, skipped, note = [], [], 0, ""
            skipped += len(errors)
            note = errors[-1] if errors else note
        if images or skipped:
            s = self.image_size
            x = torch.stack(images) if images else torch.zeros(0, self.channels, s, s, dtype=torch.uint8)
            yield x, torch.tensor(labels, dtype=torch.int64), skipped, note


class WebDataset:
    """The ``webdataset`` dataset (see the module docstring)."""

    def __init__(self, config: WebDatasetConfig):
        self.config = config
        self.shards = expand_shards(config.urls)
        check_shards(self.shards)
        #: class name -> index from classes.json beside the shards (None when there is none).
        self.classes = read_classes(self.shards)
        num_classes = config.num_classes
        if num_classes is None:
            if self.classes is None:
                raise gen.GenError(
                    "webdataset: set num_classes (no classes.json beside the shards; `gen data pack` writes one)"
                )
            num_classes = max(self.classes.values(), default=-1) + 1
        self.spec = gen.DataSpec(shape=config.sample_shape(), num_classes=num_classes)
        self._num_samples = config.num_samples
        if self._num_samples is None:
            remote = [u for u in self.shards if not is_local(u)]
            if remote:
                raise gen.GenError(
                    f"webdataset: set num_samples (shards such as {remote[0]} are remote and cannot be counted)"
                )
            self._num_samples = sum(count_samples(u) for u in self.shards)
            if self._num_samples == 0:
                raise gen.GenError(
                    f"webdataset: no samples in {len(self.shards)} shard(s) starting with {self.shards[0]}"
                )
        self.skips = SkipReporter("webdataset")

    @property
    def num_samples(self) -> int:
        return int(self._num_samples)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.num_samples

    @property
    def skipped(self) -> int:
        """Corrupt samples skipped so far (by this process and its loader workers)."""
        return self.skips.count

    def plan(self, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1) -> _Plan:
        """How a rank reads: its shards, its readers and the batches per epoch."""
        check_stream_args(batch_size, seed, rank, world_size, 0)
        if len(self.shards) < world_size:
            raise gen.GenError(
                f"webdataset: {len(self.shards)} shard(s) cannot be split over {world_size} ranks; every rank needs "
                "its own shards: pack more, smaller shards (`gen data pack --shard-size`)"
            )
        order = list(self.shards)
        random.Random(mix_seed(seed, 0x5A4D)).shuffle(order)
        mine = tuple(order[rank::world_size])
        readers = max(1, min(self.config.num_workers, len(mine)))
        return _Plan(
            shards=mine,
            readers=readers,
            batches_per_epoch=max(1, self.num_samples // (world_size * batch_size)),
            batch_size=batch_size,
            seed=seed,
            rank=rank,
            image_size=self.config.image_size,
            channels=self.config.channels,
            num_classes=self.spec.num_classes,
            shuffle_buffer=self.config.shuffle_buffer,
            random_flip=self.config.random_flip,
        )

    def train_batches(
        self, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless batches ``(x (B, C, S, S) in [-1, 1], y (B,) int64)``; see the module docstring."""
        check_stream_args(batch_size, seed, rank, world_size, start_batch)
        plan = self.plan(batch_size, seed=seed, rank=rank, world_size=world_size)
        if self.config.num_workers == 0:
            source: Any = iter(_RankStream(plan, start_batch))
        else:
            source = DataLoader(
                _RankStream(plan, start_batch), batch_size=None, num_workers=plan.readers, prefetch_factor=4
            )
        return self._stream(source)

    def _stream(self, source: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for item in one_line_errors(source):
            if isinstance(item[0], str):  # ("error", message) from a reader
                raise unwrap_worker_error(gen.GenError(item[1]))
            images, labels, skipped, note = item
            self.skips.add(int(skipped), note)
            if len(labels):
                yield uint8_to_float(images), labels.to(torch.int64)

    def iter_images(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over every shard, center-cropped, never flipped (corrupt samples skipped)."""
        config = self.config
        dataset = _Pass(self.shards, batch_size, config.image_size, self.spec.num_classes, config.channels)
        workers = min(self.config.num_workers, len(self.shards))
        source = DataLoader(dataset, batch_size=None, num_workers=workers) if workers > 0 else iter(dataset)
        return self._stream(source)


def build_webdataset(config: WebDatasetConfig) -> WebDataset:
    """WebDataset tar shards (ImageNet-style), split over ranks and workers, center-cropped as JiT trains."""
    return WebDataset(config)
