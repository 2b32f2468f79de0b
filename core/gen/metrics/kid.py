"""Kernel Inception Distance (Bińkowski et al., 2018), as torchmetrics and torch-fidelity define it.

KID is the squared maximum mean discrepancy between the Inception pool features of the reference and of
the samples under the polynomial kernel ``k(x, y) = (gamma x.y + coef)^degree`` (degree 3,
``gamma = 1 / D``, coef 1), estimated without bias on ``subset_size`` random features of each set,
``subsets`` times; the result is the mean and the population standard deviation over the subsets:

    MMD² = Σ_{i≠j} k(x_i, x_j) / (m (m - 1)) + Σ_{i≠j} k(y_i, y_j) / (m (m - 1)) - 2 Σ_{i,j} k(x_i, y_j) / m²

Subsets are drawn as torchmetrics' ``KernelInceptionDistance`` draws them (each subset: a random
permutation of the reference, then one of the samples, the first ``subset_size`` of each), but from a
generator seeded with `KID_SEED`, so the number of a set of samples is one number. Kernels are
computed in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from gen.distributed import DistInfo, all_gather_objects
from gen.errors import GenError
from gen.metrics.features import POOL, Extractors, extractor_id
from gen.metrics.reference_set import ReferenceSet

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_DEGREE = 3
KID_COEF = 1.0
KID_SEED = 2020


def polynomial_kernel(
    x: Tensor, y: Tensor, degree: int = KID_DEGREE, gamma: float | None = None, coef: float = KID_COEF
) -> Tensor:
    """``(gamma x y^T + coef)^degree`` for (N, D) ``x`` and (M, D) ``y`` (``gamma`` None: ``1 / D``)."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef) ** degree


def mmd2_unbiased(k_xx: Tensor, k_xy: Tensor, k_yy: Tensor) -> Tensor:
    """The unbiased MMD² of (m, m) kernel matrices: the diagonals of ``k_xx`` and ``k_yy`` are left out."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return within - 2 * k_xy.sum() / (m * m)


def kernel_inception_distance(
    real: Tensor,
    fake: Tensor,
    *,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    degree: int = KID_DEGREE,
    gamma: float | None = None,
    coef: float = KID_COEF,
    seed: int = KID_SEED,
    device: Any = None,
) -> tuple[float, float]:
    """KID between (N, D) reference features and (M, D) sample features: (mean, population std) of the
    unbiased polynomial-kernel MMD² over ``subsets`` subsets of ``subset_size`` (module doc).

    Raises:
        GenError: Fewer than ``subset_size`` features in either set.
    """
    for what, n in (("reference", len(real)), ("generated", len(fake))):
        if n < subset_size:
            raise GenError(
                f"KID needs at least --kid-subset-size {subset_size} {what} images, got {n}; lower --kid-subset-size"
            )
    if real.shape[1] != fake.shape[1]:
        raise GenError(
            f"the reference features have {real.shape[1]} dimensions, the samples' {fake.shape[1]}"
        )
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=generator)[:subset_size]].to(device, torch.float64)
        y = fake[torch.randperm(len(fake), generator=generator)[:subset_size]].to(device, torch.float64)
        k_xx, k_yy = (
            polynomial_kernel(x, x, degree, gamma, coef),
            polynomial_kernel(y, y, degree, gamma, coef),
        )
        scores.append(mmd2_unbiased(k_xx, polynomial_kernel(x, y, degree, gamma, coef), k_yy))
    values = torch.stack(scores)
    return float(values.mean()), float(values.std(unbiased=False))


class KIDMetric:
    """KID against reference features, as a ``gen eval`` metric.

    Args:
        extractors: The networks (the Inception).
        reference: A reference with pool ``features``.
        subsets: Subsets to average over.
        subset_size: Features per subset (of each set).
    """

    name = "kid"
    spaces = frozenset({POOL})
    goal: tuple[str, str] | None = ("kid_mean", "min")

    def __init__(
        self,
        extractors: Extractors,
        reference: ReferenceSet,
        *,
        subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE,
    ):
        if reference.features is None:
            raise GenError(f"KID needs reference features, and {reference.source} gives none")
        if subsets < 1 or subset_size < 2:
            raise GenError(
                f"need --kid-subsets >= 1 and --kid-subset-size >= 2, got {subsets} and {subset_size}"
            )
        if len(reference.features) < subset_size:
            raise GenError(
                f"--kid-subset-size {subset_size} is more than the {len(reference.features)} reference images of "
                f"{reference.source}; lower --kid-subset-size"
            )
        self.extractors = extractors
        self.reference = reference
        self.subsets = subsets
        self.subset_size = subset_size

    def key(self) -> dict[str, Any]:
        return {
            "reference": self.reference.features_digest(),
            "features": extractor_id(self.extractors.inception),
            "kid": [self.subsets, self.subset_size, KID_SEED],
        }

    def info(self) -> dict[str, Any]:
        return {
            "reference": self.reference.source,
            "features": extractor_id(self.extractors.inception),
            "kid_subsets": self.subsets,
            "kid_subset_size": self.subset_size,
        }

    def columns(self, rows: list[dict[str, Any]]) -> dict[str, str]:  # noqa: ARG002
        return {"kid_mean": "KID", "kid_std": "KID std"}

    def accumulator(self) -> KIDAccumulator:
        return KIDAccumulator(self)


class GatheredFeatures:
    """The pool features of one scoring, gathered over ranks in sample order (KID, precision/recall)."""

    def __init__(self, extractors: Extractors):
        self.extractors = extractors
        self.parts: list[Tensor] = []

    def add(self, samples: np.ndarray | Tensor, labels: np.ndarray | Tensor | None = None) -> None:  # noqa: ARG002
        """Add (B, H, W, C) uint8 images (the labels are not used)."""
        self.add_features(self.extractors.extract(samples, {POOL}))

    def add_features(self, features: dict[str, Tensor]) -> None:
        self.parts.append(features[POOL].detach().float().cpu())

    def gather(self, dist: DistInfo) -> Tensor:
        """(N, D) float32: every rank's features; slices are contiguous in sample order, so rank order is
        sample order."""
        mine = torch.cat(self.parts) if self.parts else torch.empty(0, 0)
        parts = [p for p in all_gather_objects(mine, dist) if p.numel()]
        return torch.cat(parts) if parts else mine


class KIDAccumulator(GatheredFeatures):
    def __init__(self, metric: KIDMetric):
        super().__init__(metric.extractors)
        self.metric = metric

    def compute(self, dist: DistInfo) -> dict[str, float | int]:
        """``{"kid_mean", "kid_std", "num_images"}`` over every rank's images."""
        fake = self.gather(dist)
        m = self.metric
        mean, std = kernel_inception_distance(
            torch.from_numpy(m.reference.features.astype(np.float32)),
            fake,
            subsets=m.subsets,
            subset_size=m.subset_size,
            device=m.extractors.device,
        )
        return {"kid_mean": mean, "kid_std": std, "num_images": len(fake)}


__all__ = [
    "KID_SEED",
    "KID_SUBSETS",
    "KID_SUBSET_SIZE",
    "GatheredFeatures",
    "KIDAccumulator",
    "KIDMetric",
    "kernel_inception_distance",
    "mmd2_unbiased",
    "polynomial_kernel",
]
