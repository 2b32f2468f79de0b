"""Samples during training: grids to look at and scores with the dataset's metric.

Both sample the weights of the grid EMA (``train.grid_ema``, else the first EMA, else the raw weights)
through :class:`gen.ModelSampler`, on rank 0, from a plain copy of the model (gathered whole under
FSDP). The score is :func:`gen.evaluation.score.score_model`, the function behind ``gen eval RUN
--metric data``: the same checkpoint, seed and count give the same number in both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gen.distributed import DistInfo
from gen.evaluation.score import score_model
from gen.images import make_grid, save_grid, to_uint8
from gen.metrics.dataset_metric import DatasetMetric
from gen.model_sampler import ModelSampler, SamplingSettings
from gen.protocols import DataSpec
from gen.recipe import Recipe, build_backbone
from gen.runs.run_dir import RunDir
from gen.seeds import GLOBAL_RNG_LOCK, key_seed
from gen.training import sharding
from gen.training.ema import EMA
from gen.training.tensorboard import TensorBoardLog

GRID_NOISE = 2  # key_seed(seed, GRID_NOISE): the grids' noise


class TrainingSamples:
    """Grids and scores of one run.

    Args:
        recipe: The run's recipe (data-derived fields filled).
        spec: The data's spec.
        dataset: The training dataset (its metric scores the samples).
        files: The run directory.
        dist: The processes of the run.
    """

    def __init__(self, recipe: Recipe, spec: DataSpec, dataset: Any, files: RunDir, dist: DistInfo):
        self.recipe = recipe
        self.cfg = recipe.train
        self.spec = spec
        self.dataset = dataset
        self.files = files
        self.dist = dist
        self.tensorboard: TensorBoardLog | None = None

    def ema_decay(self, ema: EMA) -> float | None:
        """The decay whose weights sample (None: the raw weights)."""
        if not ema.decays:
            return None
        return self.cfg.grid_ema if self.cfg.grid_ema is not None else ema.decays[0]

    def sampler(self, model: nn.Module, ema: EMA) -> ModelSampler | None:
        """A plain (unsharded) copy of ``model`` with the sampling EMA's weights, in eval mode, on rank 0.

        A collective under FSDP (every rank calls it; the others get None).
        """
        decay, main = self.ema_decay(ema), self.dist.is_main
        if decay is None:
            state = sharding.gather_state(model.state_dict(), main)
        else:
            state = ema.state_dict(ema.decays.index(decay), model, main)
        if not main:
            return None
        device = self.dist.device
        with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            net = build_backbone(self.recipe, self.spec)  # its random init must not move the training RNG
        net.load_state_dict(state)
        return ModelSampler(net.to(device).eval(), recipe=self.recipe, spec=self.spec, device=device)

    def grid(self, name: str, step: int, model: nn.Module, ema: EMA) -> Path | None:
        """``samples/<name>.png``: ``grid_samples`` samples with fixed noise and labels (class ``i % K``),
        comparable across the run and across resumes."""
        n = self.cfg.grid_samples
        if n == 0 or not self.spec.is_image:
            return None
        sampler = self.sampler(model, ema)
        if sampler is None:
            return None
        k = self.spec.num_classes
        labels = torch.arange(n) % k if k else torch.zeros(n, dtype=torch.long)
        settings = SamplingSettings(ema=self.ema_decay(ema), sample=self.recipe.sample)
        seed = key_seed(self.cfg.seed, GRID_NOISE)
        images = torch.cat(
            [x for _, x in sampler.generate(range(n), labels, settings, seed=seed, batch_size=256)]
        )
        if self.tensorboard is not None:
            self.tensorboard.grid(make_grid(to_uint8(images)), step)
        return save_grid(images, self.files.samples_dir / f"{name}.png")

    def evaluate(self, step: int, model: nn.Module, ema: EMA) -> dict[str, float]:
        """Score ``eval_samples`` samples with the dataset's metric: the function and the samples of
        ``gen eval RUN --metric data --num N --seed <train.seed>``; a line of ``eval.jsonl`` each."""
        n = self.cfg.eval_samples
        if n == 0:
            return {}
        sampler = self.sampler(model, ema)
        if sampler is None:
            return {}
        settings = SamplingSettings(ema=self.ema_decay(ema), sample=self.recipe.sample)
        metric = DatasetMetric(self.dataset, self.recipe.data.name)
        scores = score_model(sampler, settings, metric, num=n, seed=self.cfg.seed, batch_size=256)
        result = {k: float(v) for k, v in scores.items() if k != "num_images"}
        if self.tensorboard is not None:
            self.tensorboard.scores(result, step)
        record = {"step": step, "num_samples": n, "seed": self.cfg.seed, **settings.describe(), **result}
        self.files.append_json(self.files.eval_log, record)  # every score of the run
        self.files.eval_latest.write_text(json.dumps(record, indent=2))  # the latest score
        return result


__all__ = ["TrainingSamples"]
