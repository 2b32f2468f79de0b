"""Metrics of generated samples: FID and IS (:mod:`gen.metrics.fid`), a dataset's own metric
(:mod:`gen.metrics.dataset_metric`), and what they are built from (the FID Inception, reference
statistics, image sources). Every metric is a :class:`gen.metrics.base.SampleMetric`."""

from gen.metrics.base import Accumulator, SampleMetric
from gen.metrics.dataset_metric import DatasetMetric
from gen.metrics.features import (
    WEIGHTS_ENV,
    WEIGHTS_NAME,
    WEIGHTS_URL,
    extractor_id,
    feature_extractor,
    load_inception,
    use_feature_extractor,
    weights_path,
)
from gen.metrics.fid import FIDMetric, fid_from_stats, inception_score, load_reference_into
from gen.metrics.image_sources import count_images, image_batches
from gen.metrics.reference import (
    ReferenceStats,
    is_stats_file,
    load_reference,
    load_reference_stats,
    make_fid_metric,
    reference_stats_of,
    stats_from_features,
)

__all__ = [
    "WEIGHTS_ENV",
    "WEIGHTS_NAME",
    "WEIGHTS_URL",
    "Accumulator",
    "DatasetMetric",
    "FIDMetric",
    "ReferenceStats",
    "SampleMetric",
    "count_images",
    "extractor_id",
    "feature_extractor",
    "fid_from_stats",
    "image_batches",
    "inception_score",
    "is_stats_file",
    "load_inception",
    "load_reference",
    "load_reference_into",
    "load_reference_stats",
    "make_fid_metric",
    "reference_stats_of",
    "stats_from_features",
    "use_feature_extractor",
    "weights_path",
]
