"""``synthetic``: standard-normal tensors of any shape with uniform random labels.

For benchmarks and smoke tests of any model space without data on disk (DiT-XL/2's ``4x32x32``
latents without a VAE, a 2-D toy, 256 px images): ``data = {name = "synthetic", shape = [4, 32, 32],
num_classes = 1000}``. The values are noise, so nothing is learned; what runs is the real training step.

Each sample is a pure function of a key (a counter-based seed per sample, no generator state):

- ``num_samples = 0`` (endless): the sample at global stream position ``p`` is keyed by
  ``(config.seed, seed, p)``, so every draw is new;
- ``num_samples = N > 0``: sample ``i`` of a fixed set of ``N`` is keyed by ``(config.seed, i)`` and the
  training order is the shared epoch-permutation stream of `gen_data.stream` (as ``shapes``), so
  ``train.epochs`` has a meaning (the dataset is `gen.KnowsSize`).

Either way global batch ``k`` holds stream positions ``[k * B * world_size, (k + 1) * B * world_size)``
and rank ``r`` takes the ``r``-th slice: batches are deterministic, resumable at any ``start_batch``, and
split over ranks exactly as one process would draw the global batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np
import torch
from attrs import validators as v

import gen
from gen_data.stream import batch_positions, check_stream_args, indexed_batches, mix_seed


def _check_shape(_instance: Any, _attribute: Any, value: tuple[int, ...]) -> None:
    """attrs validator: a sample shape has at least one dimension, each at least 1."""
    if not value or any(d < 1 for d in value):
        raise ValueError(f"shape must list one or more sizes >= 1, got {list(value)}")


@attrs.frozen(kw_only=True)
class SyntheticConfig:
    """Standard-normal tensors of any shape with uniform random labels (benchmarks, smoke tests)."""

    shape: tuple[int, ...] = gen.field(
        (3, 32, 32),
        doc="One sample's shape: [C, H, W] for images or latents, [D] for vectors.",
        validator=_check_shape,
    )
    num_classes: int = gen.field(
        10, doc="Classes, drawn uniformly; 0 = unconditional (every label 0).", validator=v.ge(0)
    )
    num_samples: int = gen.field(
        0,
        doc="Samples in the dataset (one epoch); 0 = endless, every draw new (train.epochs is then unknown).",
        validator=v.ge(0),
    )
    seed: int = gen.field(0, doc="Which samples the dataset holds (the training order has its own seed).")

    def spec(self) -> gen.DataSpec:
        """The samples' shape and classes, known without drawing anything."""
        return gen.DataSpec(shape=self.shape, num_classes=self.num_classes)


class SyntheticDataset:
    """The endless ``synthetic`` dataset (``num_samples = 0``; see the module docstring).

    It has no ``num_samples`` attribute on purpose: `gen.KnowsSize` is a ``runtime_checkable``
    protocol, which only asks whether the attribute exists.
    """

    def __init__(self, config: SyntheticConfig):
        self.config = config
        self.spec = config.spec()

    def draw(self, keys: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples of ``keys`` (N,) int seeds, one generator per sample.

        Returns:
            ``(x (N, *shape) float32 standard normal, y (N,) int64 in [0, num_classes))``; ``y`` is all 0
            when ``num_classes`` is 0.
        """
        shape, classes = self.config.shape, self.config.num_classes
        x = torch.empty(len(keys), *shape)
        y = torch.zeros(len(keys), dtype=torch.int64)
        for row, key in enumerate(keys.tolist()):
            # A generator per sample keeps each sample independent of the batch that holds it.
            g = torch.Generator().manual_seed(key)
            x[row] = torch.randn(shape, generator=g)
            if classes:
                y[row] = int(torch.randint(classes, (), generator=g))
        return x, y

    def train_batches(
        self, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless batches ``(x (B, *shape) float32, y (B,) int64)``, each sample keyed by its stream
        position."""
        check_stream_args(batch_size, seed, rank, world_size, start_batch)
        return self._stream(batch_size, seed, rank, world_size, start_batch)

    def _stream(
        self, batch_size: int, seed: int, rank: int, world_size: int, start_batch: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batch = start_batch
        while True:
            positions = batch_positions(batch, batch_size, rank=rank, world_size=world_size)
            yield self.draw(np.array([mix_seed(self.config.seed, seed, int(p)) for p in positions]))
            batch += 1


class FiniteSyntheticDataset(SyntheticDataset):
    """The ``synthetic`` dataset of ``num_samples > 0`` fixed samples (`gen.KnowsSize`)."""

    @property
    def num_samples(self) -> int:
        return self.config.num_samples

    def __len__(self) -> int:
        return self.config.num_samples

    def samples(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``indices`` (N,) of the fixed set: ``(x (N, *shape) float32, y (N,) int64)``."""
        return self.draw(np.array([mix_seed(self.config.seed, int(i)) for i in indices], dtype=np.int64))

    def train_batches(
        self, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless batches ``(x (B, *shape) float32, y (B,) int64)`` through a fresh permutation of the set
        each epoch; see `gen_data.stream`."""
        return indexed_batches(
            self.samples, self.config.num_samples, batch_size,
            seed=seed, rank=rank, world_size=world_size, start_batch=start_batch,
        )  # fmt: skip


def build_synthetic(config: SyntheticConfig) -> SyntheticDataset:
    """Standard-normal tensors of any shape with uniform random labels (benchmarks and smoke tests)."""
    return FiniteSyntheticDataset(config) if config.num_samples else SyntheticDataset(config)
