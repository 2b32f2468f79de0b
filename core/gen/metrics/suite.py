"""The image metrics of ``gen eval --metric fid,kid,pr,sfid,fd_dinov2,fd_random``, built together so that
each batch goes through each network once, and checked before any image is generated.

=============  =================================================  ==========================================
``--metric``   results                                            reference part
=============  =================================================  ==========================================
``fid``        ``fid``, ``is_mean``, ``is_std``                   ``mu``, ``sigma`` (IS only without --ref)
``kid``        ``kid_mean``, ``kid_std``                          ``features``
``pr``         ``precision``, ``recall``                          ``features``
``sfid``       ``sfid``                                           ``mu_s``, ``sigma_s``
``fd_dinov2``  ``fd_dinov2``                                      ``mu_dinov2``, ``sigma_dinov2``
``fd_random``  ``fd_random``                                      ``mu_random``, ``sigma_random``
=============  =================================================  ==========================================

The first metric listed that can rank rows is the primary one: it picks the best row and screens sweeps.
``fd_random`` is the one that needs no download (a fixed random network, `gen.metrics.random_features`):
it ranks models of one dataset, and is not comparable with published numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from gen.distributed import DistInfo
from gen.errors import GenError
from gen.metrics.base import FeatureAccumulator, FeatureMetric
from gen.metrics.dinov2 import dinov2_extractor
from gen.metrics.features import DINOV2, POOL, RANDOM, SPATIAL, Extractors, feature_extractor
from gen.metrics.fid import FIDMetric
from gen.metrics.frechet import fd_dinov2_metric, fd_random_metric, sfid_metric
from gen.metrics.image_sources import image_batches
from gen.metrics.kid import KID_SUBSET_SIZE, KID_SUBSETS, KIDMetric
from gen.metrics.precision_recall import PR_NEIGHBORS, PrecisionRecallMetric
from gen.metrics.random_features import RandomConvFeatures
from gen.metrics.reference_set import Needs, ReferenceSet, load_reference_set, reference_set_of

IMAGE_METRICS = ("fid", "kid", "pr", "sfid", "fd_dinov2", "fd_random")
#: The metrics that need no Inception (the others all do).
_NO_INCEPTION = {"fd_dinov2", "fd_random"}
_NEEDS = {
    "fid": Needs(frozenset({POOL})),
    "kid": Needs(features=True),
    "pr": Needs(features=True),
    "sfid": Needs(frozenset({SPATIAL})),
    "fd_dinov2": Needs(frozenset({DINOV2})),
    "fd_random": Needs(frozenset({RANDOM})),
}


class MetricSuite:
    """Several metrics of image features in one scoring: `accumulator` extracts each batch's
    features once (the union of the metrics' spaces) and hands them to every metric.

    Args:
        metrics: The metrics, the primary one first.
        extractors: The networks they share.
    """

    def __init__(self, metrics: Sequence[FeatureMetric], extractors: Extractors):
        self.metrics = list(metrics)
        self.extractors = extractors
        self.name = ",".join(m.name for m in self.metrics)
        self.spaces = frozenset().union(*(m.spaces for m in self.metrics))
        self.goal: tuple[str, str] | None = next((m.goal for m in self.metrics if m.goal is not None), None)

    def key(self) -> dict[str, Any]:
        return {"metrics": {m.name: m.key() for m in self.metrics}}

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for m in self.metrics:
            out.update(m.info())
        return out

    def columns(self, rows: list[dict[str, Any]]) -> dict[str, str]:
        out: dict[str, str] = {}
        for m in self.metrics:
            out.update(m.columns(rows))
        return out

    def accumulator(self) -> SuiteAccumulator:
        return SuiteAccumulator(self)


class SuiteAccumulator:
    """One accumulator per metric, fed with one extraction per batch."""

    def __init__(self, suite: MetricSuite):
        self.suite = suite
        self.parts: list[FeatureAccumulator] = [m.accumulator() for m in suite.metrics]

    def add(self, samples: np.ndarray | Tensor, labels: np.ndarray | Tensor | None = None) -> None:  # noqa: ARG002
        """Add (B, H, W, C) uint8 images in sample order."""
        self.add_features(self.suite.extractors.extract(samples, self.suite.spaces))

    def add_features(self, features: dict[str, Tensor]) -> None:
        for part in self.parts:
            part.add_features(features)

    def compute(self, dist: DistInfo) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in self.parts:
            out.update(part.compute(dist))
        return out


def parse_metrics(text: str) -> list[str]:
    """``"fid,kid"`` -> ``["fid", "kid"]``: known image metrics, each once; a one-line error otherwise."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in IMAGE_METRICS]
    if unknown or not names:
        raise GenError(
            f"--metric {text}: use fid (FID and IS) or data (the dataset's own metric), or a comma list of "
            f"{', '.join(IMAGE_METRICS)}"
        )
    if len(set(names)) != len(names):
        raise GenError(f"--metric {text}: each metric once")
    return names


def reference_needs(names: Sequence[str], *, spatial: bool = False) -> Needs:
    """The reference parts that ``names`` compare with (and the spatial statistics when ``spatial``)."""
    stats = frozenset().union(*(_NEEDS[n].stats for n in names), {SPATIAL} if spatial else set())
    return Needs(stats, any(_NEEDS[n].features for n in names))


def min_images(names: Sequence[str], *, kid_subset_size: int = KID_SUBSET_SIZE) -> tuple[int, str]:
    """The fewest generated images ``names`` can score, and why (for ``--num`` and ``--screen``)."""
    need = [(2, "FID needs 2")]
    if "kid" in names:
        need.append((kid_subset_size, f"KID needs --kid-subset-size ({kid_subset_size})"))
    if "pr" in names:
        need.append((PR_NEIGHBORS + 1, f"precision/recall need k + 1 = {PR_NEIGHBORS + 1}"))
    return max(need)


def load_extractors(
    names: Sequence[str], *, inception_weights: str | None, dinov2_weights: str | None, device: Any
) -> Extractors:
    """The networks ``names`` need, from local weights: the Inception for all but ``fd_dinov2`` and
    ``fd_random`` (whose network is built from a constant seed, never read from a file)."""
    inception = feature_extractor(inception_weights, device) if set(names) - _NO_INCEPTION else None
    dinov2 = dinov2_extractor(dinov2_weights, device) if "fd_dinov2" in names else None
    random = RandomConvFeatures().to(device) if "fd_random" in names else None
    return Extractors(inception=inception, dinov2=dinov2, random=random, device=device)


def build_metrics(
    names: Sequence[str],
    *,
    ref: str | None,
    inception_weights: str | None = None,
    dinov2_weights: str | None = None,
    device: Any = None,
    batch_size: int = 100,
    kid_subsets: int = KID_SUBSETS,
    kid_subset_size: int = KID_SUBSET_SIZE,
) -> FeatureMetric:
    """The metric object of ``--metric NAMES``: networks loaded, the reference read (or computed from real
    images), every check done. One name gives that metric alone (``fid`` is `FIDMetric`, with or
    without a reference); several, a `MetricSuite`."""
    without_ref = [n for n in names if n != "fid"]
    if ref is None and without_ref:
        raise GenError(
            f"--metric {','.join(names)}: {without_ref[0]} compares with a reference; give --ref (a reference .npz or real images)"
        )
    extractors = load_extractors(
        names, inception_weights=inception_weights, dinov2_weights=dinov2_weights, device=device
    )
    if "sfid" in names and not extractors.gives_spatial():
        raise GenError("sFID needs spatial features, and the feature extractor in use gives none")
    reference = (
        load_reference_set(ref, reference_needs(names), extractors, batch_size=batch_size) if ref else None
    )
    metrics = [
        _one(n, extractors, reference, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size)
        for n in names
    ]
    return metrics[0] if len(metrics) == 1 else MetricSuite(metrics, extractors)


def _one(name: str, extractors: Extractors, reference: ReferenceSet | None, **kid: int) -> FeatureMetric:
    if name == "fid":
        stats = reference.stats[POOL] if reference is not None else None
        return FIDMetric(extractors.inception, stats, device=extractors.device, extractors=extractors)
    assert reference is not None  # build_metrics asked for --ref
    if name == "kid":
        return KIDMetric(
            extractors, reference, subsets=kid["kid_subsets"], subset_size=kid["kid_subset_size"]
        )
    if name == "pr":
        return PrecisionRecallMetric(extractors, reference)
    if name == "sfid":
        return sfid_metric(extractors, reference.stats[SPATIAL])
    if name == "fd_random":
        return fd_random_metric(extractors, reference.stats[RANDOM])
    return fd_dinov2_metric(extractors, reference.stats[DINOV2])


def reference_for(
    names: Sequence[str],
    src: str,
    *,
    inception_weights: str | None,
    dinov2_weights: str | None,
    device: Any,
    batch_size: int,
) -> ReferenceSet:
    """What ``gen eval ref-stats SRC OUT --metric NAMES`` writes: ``mu``, ``sigma`` and the spatial
    ``mu_s``, ``sigma_s`` always (one Inception pass gives both), the pool features for ``kid`` and ``pr``,
    the DINOv2 statistics for ``fd_dinov2``, the random network's for ``fd_random``. ``fd_random`` alone
    writes only its own, so that statistics need no download either."""
    if set(names) - {"fd_random"}:
        names = list(dict.fromkeys(["fid", *names]))
    extractors = load_extractors(
        names, inception_weights=inception_weights, dinov2_weights=dinov2_weights, device=device
    )
    needs = reference_needs(names, spatial=extractors.gives_spatial())
    return reference_set_of(image_batches(src, batch_size), extractors, needs, source=str(src))


__all__ = [
    "IMAGE_METRICS",
    "MetricSuite",
    "SuiteAccumulator",
    "build_metrics",
    "load_extractors",
    "min_images",
    "parse_metrics",
    "reference_for",
    "reference_needs",
]
