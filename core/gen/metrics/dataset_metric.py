"""A dataset's own metric (the ``shapes`` oracle, the ``manifold`` spiral distance) as a metric object.

It scores exactly what ``gen sample`` would save: images arrive as uint8 and are decoded back to
[-1, 1] floats before the dataset's ``evaluate_samples`` sees every rank's samples at once; vectors
(the toy experiment) arrive as they were generated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from gen.distributed import DistInfo, all_gather_objects
from gen.errors import GenError
from gen.images import from_uint8
from gen.protocols import RanksScores, ScoresSamples
from gen.sampling.settings import SETTING_COLUMNS

#: Result keys that are not scores of the dataset's metric.
NOT_SCORES = ("num_images", "seconds", *SETTING_COLUMNS)


class DatasetMetric:
    """The ``evaluate_samples`` of a dataset, keyed ``data:<name>``.

    Args:
        dataset: A dataset with `gen.protocols.ScoresSamples` (and, for a best row,
            `gen.protocols.RanksScores`).
        name: Its registered name (for the results and messages).
    """

    def __init__(self, dataset: Any, name: str):
        if not isinstance(dataset, ScoresSamples):
            raise GenError(
                f"the dataset {name!r} has no metric of its own (evaluate_samples); score FID with "
                "--metric fid --ref STATS instead"
            )
        goal = dataset.primary_metric if isinstance(dataset, RanksScores) else None
        if goal is not None and (len(goal) != 2 or goal[1] not in ("max", "min")):
            raise GenError(f"dataset {name!r}: primary_metric must be (name, 'max' or 'min'), got {goal!r}")
        self.dataset = dataset
        self.dataset_name = name
        self.goal: tuple[str, str] | None = tuple(goal) if goal is not None else None

    name = "data"

    def key(self) -> dict[str, Any]:
        return {"reference": None, "features": f"data:{self.dataset_name}"}

    def info(self) -> dict[str, Any]:
        return self.key()

    def columns(self, rows: list[dict[str, Any]]) -> dict[str, str]:
        names = dict.fromkeys(k for r in rows for k in r)
        return {k: k for k in names if k not in NOT_SCORES and not k.startswith("screen_")}

    def accumulator(self) -> DatasetAccumulator:
        return DatasetAccumulator(self)


class DatasetAccumulator:
    """Every sample of one scoring, with its label, for the dataset's metric."""

    def __init__(self, metric: DatasetMetric):
        self.metric = metric
        self.samples: list[Tensor] = []
        self.labels: list[Tensor] = []

    def add(self, samples: np.ndarray | Tensor, labels: np.ndarray | Tensor) -> None:
        """Add (B, H, W, C) uint8 images or (B, D) float vectors, with their (B,) class labels."""
        self.samples.append(torch.as_tensor(np.asarray(samples)))
        self.labels.append(torch.as_tensor(np.asarray(labels)).long())

    def compute(self, dist: DistInfo) -> dict[str, float | int]:
        """The metric's scores and ``num_images`` over every rank's samples (every rank calls it)."""
        mine = (torch.cat(self.samples), torch.cat(self.labels)) if self.labels else None
        # Slices are contiguous in sample order, so rank order is sample order.
        parts = [p for p in all_gather_objects(mine, dist) if p is not None]
        if not parts:
            raise GenError("no samples to score")
        x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        if x.dtype == torch.uint8:
            x = from_uint8(x)  # (N, C, H, W) in [-1, 1]: what a saved image decodes to
        scores = self.metric.dataset.evaluate_samples(x, y)
        return {**{k: float(v) for k, v in scores.items()}, "num_images": int(y.numel())}


__all__ = ["DatasetAccumulator", "DatasetMetric"]
