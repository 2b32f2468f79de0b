"""``imagefolder``: a folder of images, decoded on the fly: class sub-folders (the ImageNet ``train/``
layout), a flat unconditional folder (FFHQ), or labels from a CSV or JSON file.

How a folder is listed and labelled is `gen_data.folders` (``layout``, ``labels``). Images are
decoded to ``channels`` (1 = grayscale, 3 = RGB, 4 = RGBA) and go through the ADM/DiT/JiT center crop
and an optional random horizontal flip. The order is the shared epoch-permutation stream
(`gen_data.stream`): deterministic from the seed, disjoint across ranks within an epoch, exactly
resumable. A corrupt image is replaced by the next good image of the same epoch's order (so batch
positions never shift), counted, and reported with a warning. At build the header of every image is read
to count those smaller than ``image_size`` (upscaled): one warning with the count.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Literal

import attrs
import numpy as np
import torch
from attrs import validators as v
from torch.utils.data import DataLoader, Dataset

import gen
from gen_data.folders import count_classes, label_file_path, scan_image_folder, warn_if_smaller
from gen_data.stream import (
    EpochPermutation,
    SkipReporter,
    batch_positions,
    check_stream_args,
    mix_seed,
    one_line_errors,
)
from gen_data.transforms import (
    CHANNEL_MODES,
    RANDOM_FLIP_DOC,
    center_crop_arr,
    load_image,
    to_uint8_chw,
    uint8_to_float,
)

__all__ = ["ImageFolderConfig", "ImageFolderDataset", "build_imagefolder", "scan_image_folder"]

#: How many consecutive corrupt images a read may skip before giving up.
MAX_CONSECUTIVE_CORRUPT = 1000


@attrs.frozen(kw_only=True)
class ImageFolderConfig:
    """A folder of images: one sub-folder per class, flat (unconditional), or labels from a file."""

    root: str = gen.field(
        "", doc="The folder of images: one sub-folder per class (ImageNet's train/), or images directly."
    )
    layout: Literal["auto", "classes", "flat"] = gen.field(
        "auto",
        doc="auto: class sub-folders if root has any, else flat; classes: one class per sub-folder; "
        "flat: every image under root (recursively), unconditional (num_classes 0).",
    )
    labels: str = gen.field(
        "",
        doc="A .csv (filename,label rows) or .json ({filename: label}) file of labels, relative to root; "
        "labels are class ids or class names (ids in sorted order). Empty: labels from the layout.",
    )
    image_size: int = gen.field(256, doc="Side of the square center crop in pixels.", validator=v.ge(1))
    channels: Literal[1, 3, 4] = gen.field(
        3, doc="Channels images are decoded to: 1 grayscale (L), 3 RGB, 4 RGBA."
    )
    random_flip: bool = gen.field(True, doc=RANDOM_FLIP_DOC)
    check_sizes: bool = gen.field(
        True,
        doc="Read every image's header at start and warn once how many are smaller than image_size "
        "(upscaled); about 30 us an image.",
    )
    num_workers: int = gen.field(
        4, doc="DataLoader worker processes decoding images (0 = in process).", validator=v.ge(0)
    )

    def __attrs_post_init__(self) -> None:
        if self.labels and self.layout != "auto":
            raise ValueError(
                f'labels = {self.labels!r} gives the labels; leave layout at "auto" (it was {self.layout!r})'
            )

    def sample_shape(self) -> tuple[int, int, int]:
        """(channels, image_size, image_size): known without the folder."""
        return (self.channels, self.image_size, self.image_size)

    def local_paths(self) -> list[tuple[str, str]]:
        """``root``, and the labels file when there is one (`gen.LocalPaths`: checked before any work)."""
        paths = [("root", self.root)]
        if self.labels and self.root:
            paths.append(("labels", str(label_file_path(self.root, self.labels))))
        return paths

    def spec(self) -> gen.DataSpec | None:
        """The spec, its classes counted from a listing of ``root`` or from the labels file (no image is
        read); None when the folder is not on this machine."""
        num_classes = count_classes(self.root, layout=self.layout, labels=self.labels)
        if num_classes is None:
            return None
        return gen.DataSpec(shape=self.sample_shape(), num_classes=num_classes)


class SampleTable:
    """``(path, label)`` pairs in two numpy arrays.

    DataLoader workers forked from the trainer would copy a Python list of a million tuples page by
    page as reference counts change; fixed-width bytes and an int64 array are never written to.
    """

    def __init__(self, samples: list[tuple[str, int]]):
        self.paths = np.array([os.fsencode(p) for p, _ in samples], dtype=np.bytes_)  # (N,) fixed width
        self.labels = np.array([label for _, label in samples], dtype=np.int64)  # (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return os.fsdecode(self.paths[i]), int(self.labels[i])


class _PositionDataset(Dataset):
    """Map-style view for the DataLoader: item ``p`` is the sample at global stream position ``p``.

    Returns ``(image uint8 (C, S, S), label, skipped, note)``: ``skipped`` counts corrupt images
    passed over to fill this position, ``note`` names the last one.
    """

    def __init__(self, samples: SampleTable, image_size: int, seed: int, flip: bool, mode: str):
        self.samples = samples
        self.image_size = image_size
        self.seed = seed
        self.flip = flip
        self.mode = mode
        self.order = EpochPermutation(len(samples), seed)

    def __len__(self) -> int:  # the stream is endless; this only satisfies the Dataset protocol
        return len(self.samples)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int, int, str]:
        n = len(self.samples)
        epoch, offset = divmod(int(position), n)
        perm = self.order.permutation(epoch)
        note = ""
        for skipped in range(min(n, MAX_CONSECUTIVE_CORRUPT)):
            path, label = self.samples[int(perm[(offset + skipped) % n])]
            try:
                image = center_crop_arr(load_image(path, self.mode), self.image_size)
            except Exception as e:  # noqa: BLE001 - any decoding failure means a corrupt file
                note = f"{path}: {type(e).__name__}: {e}"
                continue
            flip = self.flip and bool(mix_seed(self.seed, 0xF11F, position) & 1)
            return to_uint8_chw(image, flip=flip), label, skipped, note
        raise gen.GenError(
            f"imagefolder: {min(n, MAX_CONSECUTIVE_CORRUPT)} consecutive unreadable images; last {note}"
        )


class _Positions:
    """An endless sampler: the stream positions of a rank's batches from ``start_batch`` on."""

    def __init__(self, batch_size: int, rank: int, world_size: int, start_batch: int):
        self.batch_size, self.rank, self.world_size, self.start_batch = (
            batch_size,
            rank,
            world_size,
            start_batch,
        )

    def __iter__(self) -> Iterator[int]:
        batch = self.start_batch
        while True:
            yield from batch_positions(
                batch, self.batch_size, rank=self.rank, world_size=self.world_size
            ).tolist()
            batch += 1


class ImageFolderDataset:
    """The ``imagefolder`` dataset (see the module docstring)."""

    def __init__(self, config: ImageFolderConfig):
        self.config = config
        #: The class names, label = position (``[]`` for an unconditional folder: every label 0).
        self.classes, samples = scan_image_folder(config.root, layout=config.layout, labels=config.labels)
        self.table = SampleTable(samples)
        self.spec = gen.DataSpec(shape=config.sample_shape(), num_classes=len(self.classes))
        self.skips = SkipReporter(f"imagefolder {config.root}")
        #: Images smaller than ``image_size`` (upscaled); None when ``check_sizes`` is off.
        self.smaller: int | None = None
        if config.check_sizes:
            self.smaller = warn_if_smaller(
                f"imagefolder {config.root}", [p for p, _ in samples], config.image_size, config.num_workers
            )

    @property
    def num_samples(self) -> int:
        return len(self.table)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def skipped(self) -> int:
        """Corrupt images skipped so far (by this process and its loader workers)."""
        return self.skips.count

    def _loader(self, dataset: Dataset, batch_size: int, sampler: object) -> DataLoader:
        workers = self.config.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,  # type: ignore[arg-type]
            num_workers=workers,
            prefetch_factor=4 if workers > 0 else None,
        )

    def _stream(self, loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels, skipped, notes in one_line_errors(loader):  # a worker's error: its one line
            count = int(skipped.sum())
            if count:
                self.skips.add(count, next(n for n in reversed(notes) if n))
            yield uint8_to_float(images), labels.to(torch.int64)

    def train_batches(
        self, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless batches ``(x (B, C, S, S) in [-1, 1], y (B,) int64)``; see `gen_data.stream`."""
        check_stream_args(batch_size, seed, rank, world_size, start_batch)
        mode = CHANNEL_MODES[self.config.channels]
        dataset = _PositionDataset(self.table, self.config.image_size, seed, self.config.random_flip, mode)
        sampler = _Positions(batch_size, rank, world_size, start_batch)
        return self._stream(self._loader(dataset, batch_size, sampler))

    def iter_images(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over every image in folder order, center-cropped, never flipped (corrupt ones skipped)."""
        dataset = _FolderPass(self.table, self.config.image_size, self.config.channels)
        loader = DataLoader(
            dataset,
            batch_size=None,
            sampler=_chunks(len(self.table), batch_size),  # type: ignore[arg-type]
            num_workers=self.config.num_workers,
        )
        for images, labels, skipped, note in loader:
            if skipped:
                self.skips.add(int(skipped), note)
            if len(labels):
                yield uint8_to_float(images), labels


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


class _FolderPass(Dataset):
    """Item = a range of sample indices -> one batch ``(uint8 images, labels, skipped, note)``."""

    def __init__(self, samples: SampleTable, image_size: int, channels: int):
        self.samples = samples
        self.image_size = image_size
        self.channels = channels

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, indices: range) -> tuple[torch.Tensor, torch.Tensor, int, str]:
        images, labels, note = [], [], ""
        for i in indices:
            path, label = self.samples[i]
            try:
                image = load_image(path, CHANNEL_MODES[self.channels])
                images.append(to_uint8_chw(center_crop_arr(image, self.image_size)))
            except Exception as e:  # noqa: BLE001 - a corrupt file is skipped
                note = f"{path}: {type(e).__name__}: {e}"
                continue
            labels.append(label)
        s = self.image_size
        x = torch.stack(images) if images else torch.zeros(0, self.channels, s, s, dtype=torch.uint8)
        return x, torch.tensor(labels, dtype=torch.int64), len(indices) - len(images), note


def build_imagefolder(config: ImageFolderConfig) -> ImageFolderDataset:
    """A folder of images (class sub-folders, flat, or labels from a file), center-cropped as JiT trains."""
    return ImageFolderDataset(config)
