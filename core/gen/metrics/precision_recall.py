"""Improved precision and recall (Kynkäänniemi et al., 2019), as the ADM evaluation suite computes them.

Each set of Inception pool features stands for a manifold: the union of balls around its points, each
ball's radius the distance to the point's k-th nearest other point of the same set (k = 3). Precision is
the fraction of generated images inside the reference manifold (are samples realistic?); recall, the
fraction of reference images inside the generated manifold (is the reference covered?). A point is inside
when its distance to some point of the other set is at most that point's radius (``<=``).

Distances are squared Euclidean in float32 (TF32 off), computed by blocks after centring both sets on the
reference mean (distances do not change; the expansion ``|a|² - 2 a.b + |b|²`` loses less).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gen.distributed import DistInfo
from gen.errors import GenError
from gen.metrics.features import POOL, Extractors, extractor_id
from gen.metrics.kid import GatheredFeatures
from gen.metrics.reference_set import ReferenceSet

PR_NEIGHBORS = 3
_BLOCK_ELEMENTS = 1 << 25  # distances per block: 128 MiB of float32


@contextlib.contextmanager
def _exact_float32() -> Iterator[None]:
    """Full float32 matrix products inside the block (``gen eval`` under torchrun turns TF32 on)."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """(N, M) squared Euclidean distances between (N, D) ``a`` and (M, D) ``b``, clamped at 0."""
    d = (a * a).sum(1, keepdim=True) - 2 * (a @ b.T) + (b * b).sum(1)[None, :]
    return d.clamp_min_(0)


def _blocks(n: int, m: int) -> Iterator[slice]:
    rows = max(1, _BLOCK_ELEMENTS // max(m, 1))
    for start in range(0, n, rows):
        yield slice(start, min(start + rows, n))


def knn_radii(points: Tensor, k: int = PR_NEIGHBORS) -> Tensor:
    """(N,) squared distance of each point to its k-th nearest other point (the point itself, at 0, is
    the nearest)."""
    if len(points) <= k:
        raise GenError(f"precision/recall need more than k = {k} images in each set, got {len(points)}")
    out = torch.empty(len(points), dtype=points.dtype, device=points.device)
    for rows in _blocks(len(points), len(points)):
        d = squared_distances(points[rows], points)  # (rows, N)
        out[rows] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return out


def inside(queries: Tensor, points: Tensor, radii: Tensor) -> Tensor:
    """(Q,) bool: whether each query lies in some ball ``|q - p|² <= radius_p`` of ``points``."""
    out = torch.empty(len(queries), dtype=torch.bool, device=queries.device)
    for rows in _blocks(len(queries), len(points)):
        out[rows] = (squared_distances(queries[rows], points) <= radii[None, :]).any(dim=1)
    return out


def precision_recall(
    real: Tensor, fake: Tensor, *, k: int = PR_NEIGHBORS, device: Any = None
) -> tuple[float, float]:
    """Precision and recall of (M, D) generated features against (N, D) reference features (module doc)."""
    if real.shape[1] != fake.shape[1]:
        raise GenError(
            f"the reference features have {real.shape[1]} dimensions, the samples' {fake.shape[1]}"
        )
    center = real.double().mean(0)
    x = (real.double() - center).to(device, torch.float32)  # (N, D)
    y = (fake.double() - center).to(device, torch.float32)  # (M, D)
    with _exact_float32():
        real_radii, fake_radii = knn_radii(x, k), knn_radii(y, k)
        precision = inside(y, x, real_radii).double().mean()
        recall = inside(x, y, fake_radii).double().mean()
    return float(precision), float(recall)


class PrecisionRecallMetric:
    """Precision and recall against reference features, as a ``gen eval`` metric. It names no best row
    by itself (two numbers): list another metric first to rank a sweep.

    Args:
        extractors: The networks (the Inception).
        reference: A reference with pool ``features``.
        k: Neighbours of the manifold radii.
    """

    name = "pr"
    spaces = frozenset({POOL})
    goal: tuple[str, str] | None = None

    def __init__(self, extractors: Extractors, reference: ReferenceSet, *, k: int = PR_NEIGHBORS):
        if reference.features is None:
            raise GenError(f"precision/recall need reference features, and {reference.source} gives none")
        if len(reference.features) <= k:
            raise GenError(
                f"precision/recall need more than {k} reference images, {reference.source} has {len(reference.features)}"
            )
        self.extractors = extractors
        self.reference = reference
        self.k = k

    def key(self) -> dict[str, Any]:
        return {
            "reference": self.reference.features_digest(),
            "features": extractor_id(self.extractors.inception),
            "pr_neighbors": self.k,
        }

    def info(self) -> dict[str, Any]:
        return {
            "reference": self.reference.source,
            "features": extractor_id(self.extractors.inception),
            "pr_neighbors": self.k,
        }

    def columns(self, rows: list[dict[str, Any]]) -> dict[str, str]:  # noqa: ARG002
        return {"precision": "precision", "recall": "recall"}

    def accumulator(self) -> PrecisionRecallAccumulator:
        return PrecisionRecallAccumulator(self)


class PrecisionRecallAccumulator(GatheredFeatures):
    def __init__(self, metric: PrecisionRecallMetric):
        super().__init__(metric.extractors)
        self.metric = metric

    def compute(self, dist: DistInfo) -> dict[str, float | int]:
        """``{"precision", "recall", "num_images"}`` over every rank's images."""
        fake = self.gather(dist)
        m = self.metric
        real = torch.from_numpy(m.reference.features.astype(np.float32))
        precision, recall = precision_recall(real, fake, k=m.k, device=m.extractors.device)
        return {"precision": precision, "recall": recall, "num_images": len(fake)}


__all__ = [
    "PR_NEIGHBORS",
    "PrecisionRecallAccumulator",
    "PrecisionRecallMetric",
    "inside",
    "knn_radii",
    "precision_recall",
]
