"""What the engines expect of a dataset: a :class:`DataSpec` and a stream of ``(x, y)`` batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import attrs
import torch


@attrs.frozen(kw_only=True)
class DataSpec:
    """The shape and labels of a dataset's samples.

    Attributes:
        shape: One sample's shape: ``(C, H, W)`` for images (values in [-1, 1]), ``(D,)`` for vectors.
        num_classes: Number of classes; 0 for an unconditional dataset. The label ``num_classes`` is the
            null label used for classifier-free guidance (so an unconditional dataset labels every
            sample 0).
    """

    shape: tuple[int, ...]
    num_classes: int = 0

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    def backbone_fields(self) -> dict[str, Any]:
        """Config fields a backbone takes from the data unless the recipe sets them.

        Images give ``input_size`` (H, which must equal W), ``in_channels`` and ``num_classes``;
        vectors give ``input_dim`` and ``num_classes``.
        """
        if self.is_image:
            c, h, w = self.shape
            fields: dict[str, Any] = {"in_channels": c, "num_classes": self.num_classes}
            if h == w:
                fields["input_size"] = h
            return fields
        if len(self.shape) == 1:
            return {"input_dim": self.shape[0], "num_classes": self.num_classes}
        return {"num_classes": self.num_classes}


@runtime_checkable
class Dataset(Protocol):
    """A registered dataset.

    ``train_batches`` yields an endless, deterministic stream for training: batch ``k`` of a given
    ``(seed, rank, world_size, batch_size)`` is always the same, so that resuming at ``start_batch``
    continues the stream exactly (streaming datasets may only approximate this; they say so).
    ``x`` has shape ``(B, *spec.shape)`` (float32), ``y`` shape ``(B,)`` (int64).

    Optional methods the engines use when present:

    - ``evaluate_samples(x, y) -> dict[str, float]``: score generated samples (the ``shapes`` oracle
      accuracy, the ``manifold`` distance to the spiral).
    - ``primary_metric = (key, "max" | "min")``: which score of ``evaluate_samples`` is better how
      (``gen eval --metric data`` marks the best row and screens by it).
    - ``iter_images(batch_size) -> Iterator[tuple[Tensor, Tensor]]``: one finite pass over the data
      (reference statistics for FID).
    """

    spec: DataSpec

    def train_batches(
        self, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...
