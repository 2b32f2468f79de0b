"""FID and Inception Score as published numbers are measured, through torchmetrics.

The protocol is torch-fidelity's (which the JiT code uses): uint8 images, the FID Inception-v3
(`gen.metrics.inception`, TensorFlow-1.x bilinear resize to 299, ``(x - 128) / 128``), FID on the
2048-d pool features against reference statistics ``(mu, sigma)``, Inception Score on the unbiased logits
in 10 splits after a fixed permutation (seed 2020).

FID accumulates in `torchmetrics.image.fid.FrechetInceptionDistance`, fed with features that
were already extracted (one Inception pass serves both metrics, and the metric holds no Inception
weights): under ``torchrun`` torchmetrics sums every rank's feature statistics. The reference
``(mu, sigma)`` enter the metric's "real" states as ``sum = mu * n``, ``cov_sum = sigma * (n - 1) +
n * mu mu^T``. The Inception Score is computed here rather than by torchmetrics' ``InceptionScore``,
whose unseeded permutation, ``chunk`` splits and unbiased std differ from torch-fidelity's numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gen.distributed import DistInfo, all_gather_objects
from gen.errors import GenError
from gen.metrics.features import LOGITS, POOL, Extractors, extractor_id, feature_extractor
from gen.metrics.frechet import FrechetState, load_reference_into
from gen.metrics.reference import ReferenceStats, load_reference

IS_SPLITS = 10
IS_SEED = 2020
FID_COLUMNS = {"fid": "FID", "is_mean": "IS", "is_std": "IS std"}


def inception_score(logits: Tensor, splits: int = IS_SPLITS, seed: int = IS_SEED) -> tuple[float, float]:
    """Inception Score as torch-fidelity computes it: permute with ``RandomState(seed)``, split in
    ``splits`` parts ``[i N / s, (i + 1) N / s)``, ``exp(E KL(p(y|x) || p(y)))`` per part; mean and
    population std over the parts.

    Args:
        logits: (N, K) class logits (the FID Inception's unbiased logits), in sample order.
    """
    n = logits.shape[0]
    if n < splits:
        raise GenError(f"the Inception Score needs at least {splits} images, got {n}")
    x = logits[torch.from_numpy(np.random.RandomState(seed).permutation(n))].double()  # (N, K)
    p, log_p = x.softmax(dim=1), x.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        q = p[lo:hi].mean(dim=0, keepdim=True)  # (1, K) the split's marginal
        kl = (p[lo:hi] * (log_p[lo:hi] - q.log())).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))


def fid_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The Fréchet distance ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` in float64."""
    from torchmetrics.image.fid import _compute_fid

    t = [torch.as_tensor(a, dtype=torch.float64) for a in (mu1, sigma1, mu2, sigma2)]
    return float(_compute_fid(*t))


class FIDMetric:
    """FID against reference statistics (when given) and the Inception Score, as a ``gen eval`` metric.

    Args:
        extractor: ``module(uint8 (B, 3, H, W)) -> (features (B, D), logits (B, K))``.
        reference: Reference statistics; None scores IS only (the best row is then the highest IS).
        device: Where features are extracted.
        is_splits: Splits of the Inception Score.
        extractors: The networks, when shared with other metrics (default: ``extractor`` alone).
    """

    spaces = frozenset({POOL, LOGITS})

    def __init__(
        self,
        extractor: nn.Module,
        reference: ReferenceStats | None,
        *,
        device: Any = None,
        is_splits: int = IS_SPLITS,
        extractors: Extractors | None = None,
    ):
        self.extractor = extractor
        self.reference = reference
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.extractors = extractors or Extractors(inception=extractor, device=self.device)
        self.is_splits = is_splits
        self.goal = ("fid", "min") if reference is not None else ("is_mean", "max")

    @classmethod
    def load(
        cls, *, weights: str | None, reference: str | None, device: Any, batch_size: int = 100
    ) -> FIDMetric:
        """The FID Inception from ``weights`` (or ``$GEN_INCEPTION_WEIGHTS``) and the reference statistics
        of ``reference`` (a stats ``.npz``, or real images to compute them from)."""
        extractor = feature_extractor(weights, device)
        stats = (
            load_reference(reference, extractor, device=device, batch_size=batch_size) if reference else None
        )
        return cls(extractor, stats, device=device)

    name = "fid"

    def key(self) -> dict[str, Any]:
        """What results of this metric are keyed by: the reference statistics and the feature space."""
        return {
            "reference": self.reference.digest if self.reference is not None else None,
            "features": extractor_id(self.extractor),
        }

    def info(self) -> dict[str, Any]:
        return {
            "reference": self.reference.source if self.reference is not None else None,
            "features": extractor_id(self.extractor),
        }

    def columns(self, rows: list[dict[str, Any]]) -> dict[str, str]:  # noqa: ARG002
        return FID_COLUMNS

    def accumulator(self) -> FIDAccumulator:
        return FIDAccumulator(self)


class FIDAccumulator:
    """The images of one scoring: FID states and Inception logits, reduced over ranks in `compute`."""

    def __init__(self, metric: FIDMetric):
        self.metric = metric
        reference = metric.reference
        self.fid = (
            FrechetState(reference, metric.device, "the FID Inception pool")
            if reference is not None
            else None
        )
        self.logits: list[Tensor] = []

    def add(self, samples: np.ndarray | Tensor, labels: np.ndarray | Tensor | None = None) -> None:  # noqa: ARG002
        """Add (B, H, W, C) uint8 images (in sample order); FID and IS do not use the labels."""
        self.add_features(self.metric.extractors.extract(samples, self.metric.spaces))

    def add_features(self, features: dict[str, Tensor]) -> None:
        """Add a batch's pool features (B, D) and logits (B, K)."""
        if self.fid is not None:
            self.fid.update(features[POOL])
        self.logits.append(features[LOGITS].float().cpu())

    def compute(self, dist: DistInfo) -> dict[str, float | int | None]:
        """``{"fid", "is_mean", "is_std", "num_images"}`` over every rank's images (every rank calls it)."""
        logits = torch.cat(self.logits) if self.logits else torch.empty(0, 0)
        # Slices are contiguous in sample order, so rank order is sample order.
        parts = [p for p in all_gather_objects(logits, dist) if p.numel()]
        logits = torch.cat(parts) if parts else logits
        num_images = logits.shape[0]
        fid = None
        if self.fid is not None:
            if num_images < 2:
                raise GenError(f"FID needs at least 2 images, got {num_images}")
            fid = self.fid.compute(num_images)
        is_mean, is_std = inception_score(logits, min(self.metric.is_splits, num_images))
        return {"fid": fid, "is_mean": is_mean, "is_std": is_std, "num_images": num_images}


__all__ = [
    "FID_COLUMNS",
    "IS_SEED",
    "IS_SPLITS",
    "FIDAccumulator",
    "FIDMetric",
    "fid_from_stats",
    "inception_score",
    "load_reference_into",
]
