"""The one scoring of a trained model: the training engine's scores and ``gen eval`` call this.

``num`` samples, balanced over the classes and class-major (`gen.model_sampler.class_labels`),
sample i keyed by ``(seed, i)``, each rank drawing its slice; images pass through uint8 as they would be
saved; the metric's accumulator sees them batch by batch and reduces over ranks. So the score of a
checkpoint, a seed and a count is one number, wherever it is computed.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from gen.distributed import DistInfo
from gen.metrics.base import SampleMetric
from gen.progress import progress_bar
from gen.sampling.model import ModelSampler, class_labels, shard
from gen.sampling.settings import SamplingSettings


def score_model(
    sampler: ModelSampler,
    settings: SamplingSettings,
    metric: SampleMetric,
    *,
    num: int,
    seed: int,
    batch_size: int,
    dist: DistInfo | None = None,
    console: Console | None = None,
    label: str = "score",
) -> dict[str, Any]:
    """Score ``num`` samples of ``sampler`` drawn with ``settings``.

    Args:
        sampler: The trained model.
        settings: Weights (EMA), solver, steps and guidance.
        metric: What to compute (FID/IS, the dataset's metric...).
        num: Samples in all (over every rank).
        seed: Sample i's noise depends only on (seed, i).
        batch_size: Samples per forward pass (does not change the samples).
        dist: The processes that share the work (default: this one alone).
        console: Where the progress bar goes (None: no bar).
        label: The progress bar's label.

    Returns:
        The metric's scores (with ``num_images``); the same on every rank.
    """
    dist = dist or DistInfo.local(sampler.device)
    labels = class_labels(num, sampler.spec.num_classes)
    mine = shard(num, dist.rank, dist.world_size)
    draw = sampler.images if sampler.output_spec.is_image else sampler.generate
    accumulator = metric.accumulator()
    with progress_bar(console or Console(quiet=True), console is not None and dist.is_main, label) as bar:
        task = bar.add_task(label, total=len(mine))
        for idx, samples in draw(mine, labels, settings, seed=seed, batch_size=batch_size):
            accumulator.add(samples, labels[idx.start : idx.stop])
            bar.update(task, advance=len(idx))
    return accumulator.compute(dist)


__all__ = ["score_model"]
