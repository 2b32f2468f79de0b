"""Fréchet distances against reference statistics: the running state every one of them shares, and the
metrics beside FID: sFID (ADM's spatial Inception features), FD-DINOv2 (EDM2's DINOv2 features) and
FD-random (a fixed random network's features: no download, not comparable with published numbers).

The distance is ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` between Gaussians fitted to the
generated features and the reference's ``(mu, sigma)``. The generated features accumulate in torchmetrics'
`FrechetInceptionDistance` fed with features already extracted: under
``torchrun`` it sums every rank's statistics, and the reference enters its "real" states as
``sum = mu * n``, ``cov_sum = sigma * (n - 1) + n * mu mu^T``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from gen.distributed import DistInfo, all_gather_objects
from gen.errors import GenError
from gen.metrics.dinov2 import dinov2_id
from gen.metrics.features import DINOV2, RANDOM, SPATIAL, Extractors, extractor_id
from gen.metrics.random_features import random_features_id
from gen.metrics.reference import ReferenceStats, make_fid_metric


def load_reference_into(
    metric, stats: ReferenceStats, *, on_this_rank: bool = True, what: str = "the FID Inception pool"
) -> None:  # noqa: ANN001
    """Put ``(mu, sigma)`` into the metric's real-image states as if ``n`` images had been added.

    Under ``torchrun`` only one rank holds them (``on_this_rank``): torchmetrics sums states over ranks.
    """
    if not on_this_rank:
        return
    device = metric.real_features_sum.device
    n = stats.num_samples or 2  # any n >= 2 gives back the same (mu, sigma); a small one rounds least
    mu = torch.as_tensor(stats.mu, dtype=torch.float64, device=device)  # (D,)
    sigma = torch.as_tensor(stats.sigma, dtype=torch.float64, device=device)  # (D, D)
    if mu.shape != metric.real_features_sum.shape:
        raise GenError(
            f"reference statistics {stats.source} have {mu.shape[0]} features, the feature extractor gives "
            f"{metric.real_features_sum.shape[0]}; use statistics of {what} features"
        )
    metric.real_features_sum = mu * n
    metric.real_features_cov_sum = sigma * (n - 1) + n * torch.outer(mu, mu)
    metric.real_features_num_samples = torch.tensor(n, dtype=torch.long, device=device)


class FrechetState:
    """The generated features of one scoring in one space, against reference statistics.

    Args:
        reference: The reference ``(mu, sigma)``.
        device: Where the sums are kept.
        what: The feature space in messages ("the FID Inception pool").
    """

    def __init__(self, reference: ReferenceStats, device: torch.device, what: str):
        self.reference = reference
        self.device = device
        self.what = what
        self.metric = None
        self.count = 0

    def update(self, features: Tensor) -> None:
        """Add (B, D) features."""
        f = features.double().to(self.device)
        if self.metric is None:
            self.metric = make_fid_metric(f.shape[1], self.device)
            rank0 = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
            load_reference_into(self.metric, self.reference, on_this_rank=rank0, what=self.what)
        self.metric.update(f, real=False)
        self.count += f.shape[0]

    def compute(self, num_images: int) -> float:
        """The distance over every rank's features (``num_images`` of them; every rank calls it)."""
        if self.metric is None or num_images < 2:
            raise GenError(f"a Fréchet distance needs at least 2 images, got {num_images}")
        return float(self.metric.compute())


class FrechetMetric:
    """A Fréchet distance in one feature space, as a ``gen eval`` metric: sFID and FD-DINOv2.

    Args:
        name: ``sfid`` or ``fd_dinov2`` (the result key and ``--metric``).
        space: The feature space (``spatial``, ``dinov2``).
        title: The column title.
        extractors: The networks.
        reference: The reference statistics in that space.
        features_id: Names the feature space in result keys.
    """

    def __init__(
        self,
        name: str,
        space: str,
        title: str,
        extractors: Extractors,
        reference: ReferenceStats,
        features_id: str,
    ):
        self.name = name
        self.space = space
        self.spaces = frozenset({space})
        self.title = title
        self.extractors = extractors
        self.reference = reference
        self.features_id = features_id
        self.goal: tuple[str, str] | None = (name, "min")

    def key(self) -> dict[str, Any]:
        return {"reference": self.reference.digest, "features": self.features_id}

    def info(self) -> dict[str, Any]:
        return {"reference": self.reference.source, f"{self.name}_features": self.features_id}

    def columns(self, rows: list[dict[str, Any]]) -> dict[str, str]:  # noqa: ARG002
        return {self.name: self.title}

    def accumulator(self) -> FrechetAccumulator:
        return FrechetAccumulator(self)


class FrechetAccumulator:
    """The features of one scoring in the metric's space."""

    def __init__(self, metric: FrechetMetric):
        self.metric = metric
        what = {
            SPATIAL: "the spatial Inception (mu_s, sigma_s)",
            DINOV2: "the DINOv2",
            RANDOM: "the fixed random network's (mu_random, sigma_random)",
        }.get(metric.space, metric.space)
        self.state = FrechetState(metric.reference, metric.extractors.device, what)

    def add(self, samples: np.ndarray | Tensor, labels: np.ndarray | Tensor | None = None) -> None:  # noqa: ARG002
        """Add (B, H, W, C) uint8 images (the labels are not used)."""
        self.add_features(self.metric.extractors.extract(samples, self.metric.spaces))

    def add_features(self, features: dict[str, Tensor]) -> None:
        if self.metric.space not in features:
            raise GenError(
                f"{self.metric.title} needs {self.metric.space} features, and the feature extractor gives none"
            )
        self.state.update(features[self.metric.space])

    def compute(self, dist: DistInfo) -> dict[str, float | int]:
        """``{name, "num_images"}`` over every rank's images."""
        num_images = sum(all_gather_objects(self.state.count, dist))
        return {self.metric.name: self.state.compute(num_images), "num_images": num_images}


def sfid_metric(extractors: Extractors, reference: ReferenceStats) -> FrechetMetric:
    """sFID: the Fréchet distance in the spatial Inception features (``mixed_6/conv``, first 7 channels,
    2023 dims), against ``mu_s``, ``sigma_s``."""
    if extractors.inception is None:
        raise GenError("sFID needs the FID Inception")
    return FrechetMetric(
        "sfid", SPATIAL, "sFID", extractors, reference, f"{extractor_id(extractors.inception)}:spatial"
    )


def fd_dinov2_metric(extractors: Extractors, reference: ReferenceStats) -> FrechetMetric:
    """FD-DINOv2: the Fréchet distance in DINOv2 ViT-L/14 class tokens, against ``mu_dinov2``,
    ``sigma_dinov2``."""
    if extractors.dinov2 is None:
        raise GenError("FD-DINOv2 needs the DINOv2 network")
    return FrechetMetric(
        "fd_dinov2", DINOV2, "FD-DINOv2", extractors, reference, dinov2_id(extractors.dinov2)
    )


def fd_random_metric(extractors: Extractors, reference: ReferenceStats) -> FrechetMetric:
    """FD-random: the Fréchet distance in a fixed random network's features
    (`gen.metrics.random_features`), against ``mu_random``, ``sigma_random``. It needs no download and
    ranks models of one dataset; it is not comparable with published FID or FD numbers."""
    if extractors.random is None:
        raise GenError("fd_random needs the random feature network")
    return FrechetMetric(
        "fd_random",
        RANDOM,
        "FD-random (not FID)",
        extractors,
        reference,
        f"{random_features_id(extractors.random)} (not comparable with published numbers)",
    )


__all__ = [
    "FrechetAccumulator",
    "FrechetMetric",
    "FrechetState",
    "fd_dinov2_metric",
    "fd_random_metric",
    "load_reference_into",
    "sfid_metric",
]
