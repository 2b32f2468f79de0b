"""FID and Inception Score as published numbers are measured, through torchmetrics.

The protocol is torch-fidelity's (which the JiT code uses): uint8 images, the FID Inception-v3
(:mod:`gen.metrics.inception`, TensorFlow-1.x bilinear resize to 299, ``(x - 128) / 128``), FID on the
2048-d pool features against reference statistics ``(mu, sigma)``, Inception Score on the unbiased logits
in 10 splits after a fixed permutation (seed 2020).

FID accumulates in :class:`torchmetrics.image.fid.FrechetInceptionDistance`, fed with features that
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
from gen.metrics.features import extractor_id, feature_extractor, to_nchw
from gen.metrics.reference import ReferenceStats, load_reference, make_fid_metric

IS_SPLITS = 10
IS_SEED = 2020
FID_COLUMNS = {"fid": "FID", "is_mean": "IS", "is_std": "IS std"}


def load_reference_into(metric, stats: ReferenceStats, *, on_this_rank: bool = True) -> None:  # noqa: ANN001
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
            f"{metric.real_features_sum.shape[0]}; use statistics of the FID Inception pool features"
        )
    metric.real_features_sum = mu * n
    metric.real_features_cov_sum = sigma * (n - 1) + n * torch.outer(mu, mu)
    metric.real_features_num_samples = torch.tensor(n, dtype=torch.long, device=device)


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
    """

    def __init__(
        self,
        extractor: nn.Module,
        reference: ReferenceStats | None,
        *,
        device: Any = None,
        is_splits: int = IS_SPLITS,
    ):
        self.extractor = extractor
        self.reference = reference
        self.device = torch.device(device) if device is not None else torch.device("cpu")
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
    """The images of one scoring: FID states and Inception logits, reduced over ranks in :meth:`compute`."""

    def __init__(self, metric: FIDMetric):
        self.metric = metric
        self.fid = None
        self.logits: list[Tensor] = []

    @torch.no_grad()
    def add(self, samples: np.ndarray | Tensor, labels: np.ndarray | Tensor | None = None) -> None:  # noqa: ARG002
        """Add (B, H, W, C) uint8 images (in sample order); FID and IS do not use the labels."""
        m = self.metric
        features, logits = m.extractor(to_nchw(samples, m.device))
        features = features.double()  # (B, D)
        if self.fid is None:
            self.fid = make_fid_metric(features.shape[1], m.device)
            if m.reference is not None:
                rank0 = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
                load_reference_into(self.fid, m.reference, on_this_rank=rank0)
        self.fid.update(features, real=False)
        self.logits.append(logits.float().cpu())

    def compute(self, dist: DistInfo) -> dict[str, float | int | None]:
        """``{"fid", "is_mean", "is_std", "num_images"}`` over every rank's images (every rank calls it)."""
        logits = torch.cat(self.logits) if self.logits else torch.empty(0, 0)
        # Slices are contiguous in sample order, so rank order is sample order.
        parts = [p for p in all_gather_objects(logits, dist) if p.numel()]
        logits = torch.cat(parts) if parts else logits
        num_images = logits.shape[0]
        fid = None
        if self.metric.reference is not None:
            if self.fid is None or num_images < 2:
                raise GenError(f"FID needs at least 2 images, got {num_images}")
            fid = float(self.fid.compute())
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
