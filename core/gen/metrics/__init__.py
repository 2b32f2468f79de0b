"""Metrics of generated samples: FID and IS (`gen.metrics.fid`), KID (`gen.metrics.kid`),
precision/recall (`gen.metrics.precision_recall`), sFID and FD-DINOv2 (`gen.metrics.frechet`),
several at once (`gen.metrics.suite`), a dataset's own metric (`gen.metrics.dataset_metric`),
and what they are built from (the FID Inception, DINOv2, reference statistics and features, image
sources). Every metric is a `gen.metrics.base.SampleMetric`."""

from gen.metrics.base import Accumulator, FeatureAccumulator, FeatureMetric, SampleMetric
from gen.metrics.dataset_metric import DatasetMetric
from gen.metrics.dinov2 import (
    DINOV2_ENV,
    DINOV2_NAME,
    DINOV2_URL,
    DINOv2ViT,
    dinov2_extractor,
    load_dinov2,
    use_dinov2_extractor,
)
from gen.metrics.features import (
    WEIGHTS_ENV,
    WEIGHTS_NAME,
    WEIGHTS_URL,
    Extractors,
    extractor_id,
    feature_extractor,
    load_inception,
    use_feature_extractor,
    weights_path,
)
from gen.metrics.fid import FIDMetric, fid_from_stats, inception_score, load_reference_into
from gen.metrics.frechet import FrechetMetric, fd_dinov2_metric, sfid_metric
from gen.metrics.image_sources import count_images, image_batches
from gen.metrics.kid import KIDMetric, kernel_inception_distance
from gen.metrics.precision_recall import PrecisionRecallMetric, precision_recall
from gen.metrics.reference import (
    ReferenceStats,
    is_stats_file,
    load_reference,
    load_reference_stats,
    make_fid_metric,
    reference_stats_of,
    stats_from_features,
)
from gen.metrics.reference_set import Needs, ReferenceSet, load_reference_set, reference_set_of
from gen.metrics.suite import IMAGE_METRICS, MetricSuite, build_metrics, reference_for

__all__ = [
    "DINOV2_ENV",
    "DINOV2_NAME",
    "DINOV2_URL",
    "IMAGE_METRICS",
    "WEIGHTS_ENV",
    "WEIGHTS_NAME",
    "WEIGHTS_URL",
    "Accumulator",
    "DINOv2ViT",
    "DatasetMetric",
    "Extractors",
    "FIDMetric",
    "FeatureAccumulator",
    "FeatureMetric",
    "FrechetMetric",
    "KIDMetric",
    "MetricSuite",
    "Needs",
    "PrecisionRecallMetric",
    "ReferenceSet",
    "ReferenceStats",
    "SampleMetric",
    "build_metrics",
    "count_images",
    "dinov2_extractor",
    "extractor_id",
    "fd_dinov2_metric",
    "feature_extractor",
    "fid_from_stats",
    "image_batches",
    "inception_score",
    "is_stats_file",
    "kernel_inception_distance",
    "load_dinov2",
    "load_inception",
    "load_reference",
    "load_reference_into",
    "load_reference_set",
    "load_reference_stats",
    "make_fid_metric",
    "precision_recall",
    "reference_for",
    "reference_set_of",
    "reference_stats_of",
    "sfid_metric",
    "stats_from_features",
    "use_dinov2_extractor",
    "use_feature_extractor",
    "weights_path",
]
