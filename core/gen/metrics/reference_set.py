"""Reference sets: what the metrics compare samples with, read from one file or made in one pass over real
images (each network run once per batch).

A reference ``.npz`` (``gen eval ref-stats``) holds, by the metrics it was made for:

- ``mu``, ``sigma``: mean and covariance of the Inception pool features (FID; JiT's and ADM's layout);
- ``mu_s``, ``sigma_s``: of the spatial features (sFID; ADM's names, so ADM's reference batches serve);
- ``mu_dinov2``, ``sigma_dinov2``: of the DINOv2 features (FD-DINOv2);
- ``mu_random``, ``sigma_random``: of the fixed random network's features (FD-random);
- ``features``: (N, 2048) float16 pool features (KID and precision/recall compare with the features
  themselves, not with their moments);
- ``num_samples``: the count of images.

A file that lacks a part but holds images (``arr_0``, an ADM reference batch) has that part computed from
its images; one without images is an error that says how to make the part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import attrs
import numpy as np
import torch
from torch import Tensor

from gen.errors import DamagedFileError, GenError
from gen.metrics.features import DINOV2, POOL, RANDOM, SPATIAL, Extractors
from gen.metrics.image_sources import image_batches, open_npz
from gen.metrics.reference import ReferenceStats, is_stats_file, load_reference_stats, stats_from_features
from gen.tensor_files import NOT_PLAIN

STATS_KEYS = {
    POOL: ("mu", "sigma"),
    SPATIAL: ("mu_s", "sigma_s"),
    DINOV2: ("mu_dinov2", "sigma_dinov2"),
    RANDOM: ("mu_random", "sigma_random"),
}
FEATURES_KEY = "features"
#: What each part of a reference serves, and the ``--metric`` of ``gen eval ref-stats`` that writes it.
SERVES = {
    POOL: "FID",
    SPATIAL: "sFID",
    DINOV2: "FD-DINOv2",
    RANDOM: "FD-random",
    FEATURES_KEY: "KID and precision/recall",
}
WRITTEN_BY = {POOL: "fid", SPATIAL: "sfid", DINOV2: "fd_dinov2", RANDOM: "fd_random", FEATURES_KEY: "kid,pr"}


@attrs.frozen
class Needs:
    """The parts of a reference the chosen metrics need.

    Attributes:
        stats: Feature spaces whose (mu, sigma) are needed (``pool``, ``spatial``, ``dinov2``,
            ``random``).
        features: Whether the pool features themselves are needed (KID, precision/recall).
    """

    stats: frozenset[str] = frozenset()
    features: bool = False

    def parts(self) -> list[str]:
        return [s for s in STATS_KEYS if s in self.stats] + ([FEATURES_KEY] if self.features else [])


@attrs.frozen(eq=False)
class ReferenceSet:
    """The reference of one evaluation.

    Attributes:
        source: Where it came from (a path), for the results.
        stats: (mu, sigma) by feature space.
        features: (N, D) pool features as stored (float16), or None.
        num_samples: Images behind it (None when the file does not say).
    """

    source: str
    stats: dict[str, ReferenceStats] = attrs.field(factory=dict)
    features: np.ndarray | None = None
    num_samples: int | None = None

    def features_digest(self) -> str | None:
        """A short hash of the features: results against other features are not mixed up."""
        if self.features is None:
            return None
        return hashlib.sha256(np.ascontiguousarray(self.features).tobytes()).hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        """Write every part to an ``.npz`` (the layout in the module doc)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"num_samples": np.int64(self.num_samples or 0)}
        for space, stats in self.stats.items():
            mu_key, sigma_key = STATS_KEYS[space]
            arrays[mu_key], arrays[sigma_key] = stats.mu, stats.sigma
        if self.features is not None:
            arrays[FEATURES_KEY] = self.features
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
        return path


class _Moments:
    """A running feature sum (D,) and sum of outer products (D, D) in float64."""

    def __init__(self) -> None:
        self.total: Tensor | None = None
        self.cov_sum: Tensor | None = None
        self.n = 0

    def add(self, features: Tensor) -> None:
        f = features.double()  # (B, D)
        if self.total is None:
            self.total, self.cov_sum = f.sum(0), f.T @ f
        else:
            self.total += f.sum(0)
            self.cov_sum += f.T @ f
        self.n += f.shape[0]

    def stats(self, source: str) -> ReferenceStats:
        mu, sigma = stats_from_features(self.total, self.cov_sum, self.n)
        return ReferenceStats(mu=mu, sigma=sigma, num_samples=self.n, source=source)


def reference_set_of(
    batches: Iterable[np.ndarray], extractors: Extractors, needs: Needs, *, source: str
) -> ReferenceSet:
    """The parts ``needs`` of a reference, from real images given as (B, H, W, C) uint8 batches.

    Pool features are kept as float16, as `ReferenceSet.save` stores them, so that a reference read
    back from its file scores the same as one computed from the images.
    """
    spaces = set(needs.stats) | ({POOL} if needs.features else set())
    moments = {space: _Moments() for space in needs.stats}
    kept: list[Tensor] = []
    n = 0
    for batch in batches:
        features = extractors.extract(batch, spaces)
        for space, m in moments.items():
            if space not in features:
                raise GenError(f"the feature extractor gives no {space} features ({SERVES[space]})")
            m.add(features[space])
        if needs.features:
            kept.append(features[POOL].detach().to("cpu", torch.float16))
        n += len(batch)
    if n < 2:
        raise GenError(f"reference statistics need at least 2 images, got {n} from {source}")
    return ReferenceSet(
        source=source,
        stats={space: m.stats(source) for space, m in moments.items()},
        features=torch.cat(kept).numpy() if needs.features else None,
        num_samples=n,
    )


def _has_images(path: Path) -> bool:
    with open_npz(path) as zf:
        return "arr_0.npy" in zf.namelist()


def _is_reference_file(path: Path) -> bool:
    """A reference ``.npz`` of ``gen eval ref-stats``: FID's ``mu``, ``sigma``, or only FD-random's
    statistics (written for ``fd_random`` alone, which needs no Inception)."""
    if is_stats_file(path):
        return True
    return path.suffix == ".npz" and path.is_file() and RANDOM in _stored(path)


def _stored(path: Path) -> set[str]:
    with open_npz(path) as zf:
        names = {name.removesuffix(".npy") for name in zf.namelist()}
    parts = {space for space, keys in STATS_KEYS.items() if set(keys) <= names}
    return parts | ({FEATURES_KEY} if FEATURES_KEY in names else set())


def _read_features(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            features = data[FEATURES_KEY]
    except ValueError:  # an array of Python objects, refused by allow_pickle=False
        raise DamagedFileError(path, NOT_PLAIN.format(what=f" in {FEATURES_KEY}")) from None
    if features.ndim != 2 or features.dtype.kind != "f":
        raise GenError(f"{path}: {FEATURES_KEY} must be N x D floats, got {features.shape} {features.dtype}")
    return features


def missing_part_error(path: str | Path, part: str) -> GenError:
    """The error for a reference file without ``part``, saying how to write it."""
    keys = ", ".join(STATS_KEYS.get(part, (FEATURES_KEY,)))
    return GenError(
        f"{path} has no {keys}, which {SERVES[part]} {'compare' if part == FEATURES_KEY else 'compares'} with: write them with `gen eval ref-stats SRC "
        f"OUT.npz --metric {WRITTEN_BY[part]}` from real images, or give the real images as --ref"
    )


def load_reference_set(
    path: str | Path, needs: Needs, extractors: Extractors, *, batch_size: int
) -> ReferenceSet:
    """The parts ``needs`` of a reference: from a reference ``.npz``, or computed from real images (a folder,
    an ``.npz`` with ``arr_0``, a recipe). A reference file's parts are read as they are (an ADM reference
    batch's ``mu``, ``sigma``, ``mu_s``, ``sigma_s``); parts it lacks come from its images, if it has any."""
    path = Path(path)
    if not _is_reference_file(path):
        return reference_set_of(image_batches(path, batch_size), extractors, needs, source=str(path))
    stored = _stored(path)
    stats = {s: load_reference_stats(path, STATS_KEYS[s]) for s in needs.stats if s in stored}
    features = _read_features(path) if needs.features and FEATURES_KEY in stored else None
    lacking = [p for p in needs.parts() if p not in stored]
    if lacking and not _has_images(path):
        raise missing_part_error(path, lacking[0])
    num = next((s.num_samples for s in stats.values()), None)
    if lacking:  # an ADM reference batch: what the file does not hold comes from its images
        rest = Needs(frozenset(p for p in lacking if p in STATS_KEYS), FEATURES_KEY in lacking)
        computed = reference_set_of(image_batches(path, batch_size), extractors, rest, source=str(path))
        stats.update(computed.stats)
        features = computed.features if features is None else features
        num = num or computed.num_samples
    if features is not None:
        num = num or len(features)
    return ReferenceSet(source=str(path), stats=stats, features=features, num_samples=num)


__all__ = [
    "FEATURES_KEY",
    "STATS_KEYS",
    "Needs",
    "ReferenceSet",
    "load_reference_set",
    "missing_part_error",
    "reference_set_of",
]
