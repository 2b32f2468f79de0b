"""FID statistics: mean and covariance of a reference set's features (JiT's and ADM's ``.npz``
layout), read, written, or computed from real images."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor, nn

from gen.errors import DamagedFileError, GenError
from gen.metrics.features import to_nchw
from gen.metrics.image_sources import image_batches, open_npz
from gen.tensor_files import NOT_PLAIN


class _Precomputed(nn.Module):
    """The metric's "feature extractor": features arrive already extracted."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def make_fid_metric(num_features: int, device: Any = None):  # noqa: ANN201 - torchmetrics type
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=_Precomputed(num_features), reset_real_features=False).to(device)


def stats_from_features(total: Tensor, cov_sum: Tensor, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) from a feature sum (D,), a sum of outer products (D, D) and a count."""
    mu = total.double() / n  # (D,)
    sigma = (cov_sum.double() - n * torch.outer(mu, mu)) / (n - 1)  # (D, D)
    return mu.cpu().numpy(), sigma.cpu().numpy()


@attrs.frozen(eq=False)
class ReferenceStats:
    """Mean and covariance of the reference set's features.

    Attributes:
        mu: (D,) float64 mean.
        sigma: (D, D) float64 covariance (normalised by n - 1).
        num_samples: Images behind the statistics (None when the file does not say).
        source: Where they came from (a path), for the results.
    """

    mu: np.ndarray
    sigma: np.ndarray
    num_samples: int | None = None
    source: str | None = None

    @property
    def digest(self) -> str:
        """A short hash of (mu, sigma): results computed against other statistics are not mixed up."""
        h = hashlib.sha256(np.ascontiguousarray(self.mu, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(self.sigma, dtype=np.float64).tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        """Write ``mu``, ``sigma`` and ``num_samples`` to an ``.npz`` (JiT's fid_stats layout plus a count)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, mu=self.mu, sigma=self.sigma, num_samples=np.int64(self.num_samples or 0))
        tmp.replace(path)
        return path


def load_reference_stats(path: str | Path, keys: tuple[str, str] = ("mu", "sigma")) -> ReferenceStats:
    """Read an ``.npz`` with ``mu`` (D,) and ``sigma`` (D, D) (JiT's, ADM's and ours), or the pair ``keys``
    (ADM's ``mu_s``, ``sigma_s`` of sFID; ``mu_dinov2``, ``sigma_dinov2`` of FD-DINOv2)."""
    path = Path(path)
    open_npz(path).close()  # a pickle or another format: one line, nothing loaded
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise GenError(f"cannot read reference statistics {path}: {e}") from None
    mu_key, sigma_key = keys
    with data:
        if mu_key not in data or sigma_key not in data:
            raise GenError(
                f"{path} holds {', '.join(data.files)}, not reference statistics ({mu_key}, {sigma_key}); make "
                "them with `gen eval ref-stats SRC OUT.npz`"
            )
        arrays = {}
        for key in (mu_key, sigma_key, "num_samples"):
            try:
                arrays[key] = data[key] if key in data else None
            except ValueError:  # an array of Python objects, refused by allow_pickle=False
                raise DamagedFileError(path, NOT_PLAIN.format(what=f" in {key}")) from None
        mu, sigma = arrays[mu_key].astype(np.float64), arrays[sigma_key].astype(np.float64)
        n = int(arrays["num_samples"]) if arrays["num_samples"] is not None else None
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise GenError(f"{path}: {mu_key} {mu.shape} and {sigma_key} {sigma.shape} must be (D,) and (D, D)")
    return ReferenceStats(mu=mu, sigma=sigma, num_samples=n or None, source=str(path))


def is_stats_file(path: str | Path) -> bool:
    path = Path(path)
    if path.suffix != ".npz" or not path.is_file():
        return False
    with open_npz(path) as zf:
        return {"mu.npy", "sigma.npy"} <= set(zf.namelist())


def reference_stats_of(
    batches: Iterable[np.ndarray], extractor: nn.Module, *, device: Any = None, source: str | None = None
) -> ReferenceStats:
    """Reference statistics (mu, sigma) of real images given as (B, H, W, C) uint8 batches."""
    metric = None
    n = 0
    with torch.no_grad():
        for batch in batches:
            features, _ = extractor(to_nchw(batch, device))
            if metric is None:
                metric = make_fid_metric(features.shape[1], device)
            metric.update(features.double(), real=True)
            n += features.shape[0]
    if metric is None or n < 2:
        raise GenError(f"reference statistics need at least 2 images, got {n} from {source}")
    mu, sigma = stats_from_features(metric.real_features_sum, metric.real_features_cov_sum, n)
    return ReferenceStats(mu=mu, sigma=sigma, num_samples=n, source=source)


def load_reference(path: str | Path, extractor: nn.Module, *, device: Any = None, batch_size: int = 100):
    """Reference statistics from a stats ``.npz`` (``mu``, ``sigma``), or computed from images (a folder,
    an ADM ``.npz`` or a recipe's dataset)."""
    if is_stats_file(path):
        return load_reference_stats(path)
    return reference_stats_of(image_batches(path, batch_size), extractor, device=device, source=str(path))
