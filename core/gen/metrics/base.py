"""What ``gen eval`` and the training engine ask of a metric: one class per metric, chosen once.

A `SampleMetric` says how its results are keyed and shown and which is best; an
`Accumulator` takes the samples of one scoring batch by batch, in sample order, and reduces them
over ranks. Adding a metric is one class of each; a metric of image features (`FeatureMetric`) also takes
features already extracted, so that several metrics share one pass of each network.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from torch import Tensor

from gen.distributed import DistInfo


@runtime_checkable
class Accumulator(Protocol):
    """The samples of one scoring."""

    def add(self, samples: np.ndarray | Tensor, labels: np.ndarray | Tensor) -> None:
        """Add a batch: (B, H, W, C) uint8 images (as saved) or (B, D) float vectors, with (B,) labels."""
        ...

    def compute(self, dist: DistInfo) -> dict[str, Any]:
        """The scores over every rank's samples (every rank of ``dist`` calls it), with ``num_images``."""
        ...


@runtime_checkable
class SampleMetric(Protocol):
    """A metric of generated samples.

    Attributes:
        name: How ``--metric`` and the results name it (``fid``, ``data``).
        goal: ``(result key, "max" | "min")``: which result is best (screening, the best row), or None
            when the metric cannot tell.
    """

    name: str
    goal: tuple[str, str] | None

    def key(self) -> dict[str, Any]:
        """JSON-able facts that key results (reference statistics, feature space): a result is reused
        only for the same checkpoint, settings, count, seed and this key."""
        ...

    def info(self) -> dict[str, Any]:
        """JSON-able context of the saved results table (the reference file, the feature space)."""
        ...

    def columns(self, rows: list[dict[str, Any]]) -> dict[str, str]:
        """Result key -> column title of the results table (``rows`` are the scored rows)."""
        ...

    def accumulator(self) -> Accumulator:
        """A fresh accumulator for one scoring."""
        ...


@runtime_checkable
class FeatureAccumulator(Accumulator, Protocol):
    """An accumulator that also takes features already extracted (a `gen.metrics.suite.MetricSuite`
    extracts each batch's features once for all its metrics)."""

    def add_features(self, features: dict[str, Tensor]) -> None:
        """Add a batch's features by space (``pool`` (B, 2048), ``logits``, ``spatial``, ``dinov2``),
        in sample order."""
        ...


@runtime_checkable
class FeatureMetric(SampleMetric, Protocol):
    """A metric of image features.

    Attributes:
        spaces: The feature spaces its accumulator reads (keys of `gen.metrics.features.Extractors.extract`).
    """

    spaces: frozenset[str]

    def accumulator(self) -> FeatureAccumulator:
        """A fresh accumulator for one scoring."""
        ...


__all__ = ["Accumulator", "FeatureAccumulator", "FeatureMetric", "SampleMetric"]
