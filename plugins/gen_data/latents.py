"""``latents``: the latents of an image dataset, as ``gen data encode`` wrote them (DiT, SiT; fast-DiT's
pre-extracted features).

The folder ``root`` holds:

- ``shard-NNNNNN.tar``: WebDataset shards; sample ``<key>`` is ``<key>.npy`` (float32 ``(V, c, h, w)``,
  ``V = 2`` when the horizontally flipped image was encoded too, else 1) and ``<key>.cls`` (the class id
  as ASCII digits);
- ``index.npy``: int64 ``(N, 4)``, one row per sample ``(shard, offset, size, label)``: where its ``.npy``
  lies in its (uncompressed) shard, so that any sample is read directly, without scanning tar headers;
- ``latents.json``: ``encoded_by`` (the autoencoder's ``identity()``), ``latent_shape``, ``image_shape``,
  ``num_samples``, ``num_classes``, ``flip``, ``shards``; written last, so its presence says that the
  rest is complete.

Reading by index, the stream is the shared epoch-permutation stream of `gen_data.stream` (as
``imagefolder`` reads): deterministic from the seed, disjoint across ranks within an epoch, and exactly
resumable at any batch. With ``random_flip`` each draw takes the stored latent of the image or of its
flip by a coin keyed by the draw's stream position. Latents are not images, so there is no
``iter_images`` (FID reference statistics come from the images).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

import gen
from gen_data.stream import EpochPermutation, batch_positions, check_stream_args, mix_seed

LATENTS_JSON = "latents.json"
INDEX_NAME = "index.npy"
#: Keys ``latents.json`` must have.
REQUIRED_KEYS = ("encoded_by", "latent_shape", "image_shape", "num_samples", "num_classes", "flip", "shards")
ENCODE_AGAIN = "run `gen data encode IMAGES {root}` (with --overwrite) to write it again"


def read_meta(root: str | os.PathLike) -> dict[str, Any]:
    """The contents of ``root/latents.json``, checked for the keys the dataset needs.

    Raises:
        gen.GenError: when it is missing or damaged (one line naming it and what to run).
    """
    path = Path(root) / LATENTS_JSON
    if not path.is_file():
        raise gen.GenError(
            f"latents: {path} not found; write the latents with `gen data encode IMAGES {root}`"
        )
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise gen.GenError(
            f"latents: {path} is damaged ({type(e).__name__}: {e}); {ENCODE_AGAIN.format(root=root)}"
        ) from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise gen.GenError(f"latents: {path} lacks {', '.join(missing)}; {ENCODE_AGAIN.format(root=root)}")
    return meta


@attrs.frozen(kw_only=True)
class LatentsConfig:
    """Latents written by `gen data encode` (shards + index.npy + latents.json)."""

    root: str = gen.field("", doc="The folder `gen data encode` wrote (it holds latents.json).")
    random_flip: bool = gen.field(
        True,
        doc="Draw the latent of the image or of its flip with probability 1/2 each (needs encode --flip).",
    )

    def _meta(self) -> dict[str, Any] | None:
        if not self.root or not (Path(self.root) / LATENTS_JSON).is_file():
            return None  # not on this machine: gen train says what is missing
        return read_meta(self.root)

    def local_paths(self) -> list[tuple[str, str]]:
        """``root`` (`gen.LocalPaths`: checked before any work)."""
        return [("root", self.root)]

    def spec(self) -> gen.DataSpec | None:
        """The latents' spec from ``latents.json``; None when it is not here."""
        meta = self._meta()
        return (
            None
            if meta is None
            else gen.DataSpec(shape=meta["latent_shape"], num_classes=meta["num_classes"])
        )

    @property
    def encoded_by(self) -> dict[str, Any]:
        """The ``identity()`` of the autoencoder that wrote the latents ({} when they are not here)."""
        meta = self._meta()
        return {} if meta is None else dict(meta["encoded_by"])


class LatentsDataset:
    """The ``latents`` dataset (see the module docstring).

    Attributes:
        spec: ``DataSpec(shape=(c, h, w), num_classes)`` of the latents.
        encoded_by: The ``identity()`` of the autoencoder that wrote them.
        image_shape: (C, H, W) of the images they were encoded from.
        flipped: Whether each sample stores the latent of the flipped image too.
    """

    def __init__(self, config: LatentsConfig):
        if not config.root:
            raise gen.GenError("latents: set `root` to the folder `gen data encode` wrote")
        self.config = config
        self.root = Path(config.root)
        meta = read_meta(self.root)
        self.spec = gen.DataSpec(shape=meta["latent_shape"], num_classes=meta["num_classes"])
        self.encoded_by: dict[str, Any] = dict(meta["encoded_by"])
        self.image_shape = tuple(int(d) for d in meta["image_shape"])
        self.flipped = bool(meta["flip"])
        if config.random_flip and not self.flipped:
            raise gen.GenError(
                f"latents: {self.root} was encoded without flips (--no-flip); set data.random_flip = false "
                "or encode again with --flip"
            )
        self.shards = [self.root / name for name in meta["shards"]]
        self.index = self._read_index(int(meta["num_samples"]))
        self._files: dict[int, int] = {}  # shard -> descriptor, opened on first read (per process)

    def _read_index(self, num_samples: int) -> np.ndarray:
        path = self.root / INDEX_NAME
        again = ENCODE_AGAIN.format(root=self.root)
        try:
            index = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise gen.GenError(f"latents: cannot read {path} ({type(e).__name__}: {e}); {again}") from None
        if index.dtype != np.int64 or index.shape != (num_samples, 4) or num_samples < 1:
            raise gen.GenError(
                f"latents: {path} does not hold {num_samples} samples of latents.json; {again}"
            )
        if index[:, 0].min() < 0 or index[:, 0].max() >= len(self.shards):
            raise gen.GenError(f"latents: {path} names shards that latents.json does not list; {again}")
        ends = np.zeros(len(self.shards), dtype=np.int64)  # where each shard's last latent ends
        np.maximum.at(ends, index[:, 0], index[:, 1] + index[:, 2])
        for shard, end in zip(self.shards, ends.tolist(), strict=True):
            if not shard.is_file() or shard.stat().st_size < end:
                problem = "is missing" if not shard.is_file() else "is truncated"
                raise gen.GenError(f"latents: shard {shard} {problem}; {again}")
        return index

    @property
    def num_samples(self) -> int:
        return len(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict[str, Any]:
        # descriptors do not travel to another process: a copy opens its own
        return {**self.__dict__, "_files": {}}

    def __del__(self) -> None:
        for fd in getattr(self, "_files", {}).values():
            os.close(fd)

    def read(self, i: int) -> np.ndarray:
        """The stored latents (V, c, h, w) float32 of sample ``i`` (V = 2: the image's, then its flip's)."""
        shard, offset, size, _ = (int(v) for v in self.index[i])
        fd = self._files.get(shard)
        if fd is None:
            fd = self._files[shard] = os.open(self.shards[shard], os.O_RDONLY)
        data = os.pread(fd, size, offset)  # no shared file position: safe in threads and forks
        try:
            z = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError) as e:
            raise gen.GenError(
                f"latents: sample {i} in {self.shards[shard]} is damaged ({e}); {ENCODE_AGAIN.format(root=self.root)}"
            ) from None
        views = 2 if self.flipped else 1
        if z.dtype != np.float32 or z.shape != (views, *self.spec.shape):
            raise gen.GenError(
                f"latents: sample {i} in {self.shards[shard]} has shape {z.shape} {z.dtype}, not "
                f"({views}, {', '.join(map(str, self.spec.shape))}) float32; {ENCODE_AGAIN.format(root=self.root)}"
            )
        return z

    def batch(self, indices: np.ndarray, views: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``indices`` (B,), each in its view (B,) (0 = the image, 1 = its flip):
        ``(x (B, c, h, w) float32, y (B,) int64)``."""
        x = np.stack([self.read(int(i))[int(v)] for i, v in zip(indices, views, strict=True)])
        y = self.index[indices, 3]
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(y))

    def train_batches(
        self, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless batches ``(x (B, c, h, w) float32, y (B,) int64)``; see `gen_data.stream`."""
        check_stream_args(batch_size, seed, rank, world_size, start_batch)
        return self._stream(batch_size, seed, rank, world_size, start_batch)

    def _stream(
        self, batch_size: int, seed: int, rank: int, world_size: int, start_batch: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = EpochPermutation(len(self.index), seed)
        batch = start_batch
        while True:
            positions = batch_positions(batch, batch_size, rank=rank, world_size=world_size)
            if self.config.random_flip:  # the coin hangs on the stream position, as imagefolder's flip
                views = np.array([mix_seed(seed, 0xF11F, int(p)) & 1 for p in positions], dtype=np.int64)
            else:
                views = np.zeros(len(positions), dtype=np.int64)
            yield self.batch(order(positions), views)
            batch += 1


def build_latents(config: LatentsConfig) -> LatentsDataset:
    """Latents of an image dataset written by `gen data encode` (DiT/SiT in latent space), read by index."""
    return LatentsDataset(config)
