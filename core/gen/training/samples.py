"""Samples during training: grids to look at and scores with the dataset's metric.

Both sample the weights of the grid EMA (``train.grid_ema``, else the first EMA, else the raw weights)
through `gen.ModelSampler`, on rank 0, from a plain copy of the model (gathered whole under
FSDP). With ``[sample] guidance = "auto"`` the guide is another EMA of the model in training, or a
checkpoint (of this run or another) that must exist when training starts and is read then. The score is `gen.evaluation.score.score_model`, the function behind ``gen eval RUN
--metric data``: the same checkpoint, seed and count give the same number in both.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from gen import distributed
from gen.distributed import DistInfo
from gen.errors import GenError
from gen.evaluation.score import score_model
from gen.images import make_grid, save_png, to_uint8
from gen.metrics.dataset_metric import DatasetMetric
from gen.power_ema import EmaKey, EmaLength, parse_ema
from gen.protocols import DataSpec
from gen.recipe import Recipe, build_backbone
from gen.runs.run_dir import RunDir
from gen.sampling.guidance import Guidance, Guide
from gen.sampling.guides import load_guide
from gen.sampling.model import ModelSampler
from gen.sampling.settings import SamplingSettings
from gen.seeds import GLOBAL_RNG_LOCK, key_seed
from gen.training import sharding
from gen.training.ema import EMA
from gen.training.loggers import RunLoggers

GRID_NOISE = 2  # key_seed(seed, GRID_NOISE): the grids' noise


class TrainingSamples:
    """Grids and scores of one run.

    Args:
        recipe: The run's recipe (data-derived fields filled).
        spec: The data's spec.
        dataset: The training dataset (its metric scores the samples).
        files: The run directory.
        dist: The processes of the run.
        loggers: Where the grids and scores also go (rank 0): ``jsonl`` writes ``eval.jsonl`` and
            ``eval.json``.
    """

    def __init__(
        self,
        recipe: Recipe,
        spec: DataSpec,
        dataset: Any,
        files: RunDir,
        dist: DistInfo,
        loggers: RunLoggers | None = None,
    ):
        self.recipe = recipe
        self.cfg = recipe.train
        self.spec = spec
        self.dataset = dataset
        self.files = files
        self.dist = dist
        self.loggers = loggers if loggers is not None else RunLoggers()
        self.guidance = recipe.sample.guide if recipe.sample.guidance == "auto" else None
        #: Autoguidance by a checkpoint (of this run or another): read once, at the start, on rank 0.
        self.disk_guide: Guide | None = None
        if self.guidance is not None:
            self._start_guide(self.guidance)

    def _start_guide(self, guidance: Guidance) -> None:
        """Check the guide of ``[sample] guidance = 'auto'`` before training; read it if on disk."""
        if guidance.step is None and guidance.run is None:  # another EMA of the model in training
            if self.guide_ema() not in (None, *self.cfg.ema_decays, *map(EmaLength, self.cfg.ema_lengths)):
                raise GenError(
                    f"[sample] guide_ema = {guidance.ema!r}: this run tracks the EMAs "
                    f"{list(self.cfg.ema_decays)} and lengths {list(self.cfg.ema_lengths)}; guide with one "
                    "of them (0.999, phema_0.05...) or none"
                )
            return
        error = None
        if self.dist.is_main:
            on_disk = (
                guidance if guidance.run is not None else attrs.evolve(guidance, run=str(self.files.path))
            )
            try:
                self.disk_guide = load_guide(on_disk, None, self.recipe, self.spec, self.dist.device)
            except GenError as e:
                error = (
                    f"[sample] guidance = 'auto': {e}; the training grids and scores need the guide from the "
                    "start: set guidance = 'cfg' while training and choose the guide afterwards (gen sample "
                    "--guide-step), or guide with another EMA of this run (guide_ema)"
                )
        error = distributed.all_gather_objects(error, self.dist)[0]
        if error is not None:
            raise GenError(error)

    def guide_ema(self) -> EmaKey:
        """The EMA of the model in training that guides (``[sample] guide_ema``; default: the first)."""
        assert self.guidance is not None
        if self.guidance.ema == "default":
            return (*self.cfg.ema_decays, *map(EmaLength, self.cfg.ema_lengths), None)[0]
        return parse_ema(self.guidance.ema)

    def ema_decay(self, ema: EMA) -> EmaKey:
        """The EMA whose weights sample: ``grid_ema``, else the first EMA (None: the raw weights)."""
        if not ema.keys:
            return None
        return self.cfg.grid_ema if self.cfg.grid_ema is not None else ema.keys[0]

    def _state(self, key: EmaKey, model: nn.Module, ema: EMA) -> dict[str, torch.Tensor]:
        """The whole weights of EMA ``key`` (None: raw) on rank 0 (a collective under FSDP)."""
        if key is None:
            return sharding.gather_state(model.state_dict(), self.dist.is_main)
        return ema.state_dict(ema.index(key), model, self.dist.is_main)

    def _net(self, state: dict[str, torch.Tensor]) -> nn.Module:
        device = self.dist.device
        with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            net = build_backbone(self.recipe, self.spec)  # its random init must not move the training RNG
        net.load_state_dict(state)
        return net.to(device).eval()

    def sampler(self, model: nn.Module, ema: EMA) -> ModelSampler | None:
        """A plain (unsharded) copy of ``model`` with the sampling EMA's weights, in eval mode, on rank 0,
        with the guide of autoguidance when ``[sample]`` asks for it.

        A collective under FSDP (every rank calls it; the others get None).
        """
        state = self._state(self.ema_decay(ema), model, ema)
        in_memory = self.guidance is not None and self.disk_guide is None
        guide_state = self._state(self.guide_ema(), model, ema) if in_memory else None
        if not self.dist.is_main:
            return None
        guides = {}
        if self.guidance is not None:
            guides[self.guidance] = self.disk_guide or Guide(
                self._net(guide_state), process=self.recipe.objective.build_process()
            )
        return ModelSampler(
            self._net(state), recipe=self.recipe, spec=self.spec, device=self.dist.device, guides=guides
        )

    def grid(self, name: str, step: int, model: nn.Module, ema: EMA) -> Path | None:
        """``samples/<name>.png``: ``grid_samples`` samples with fixed noise and labels, a class per row
        (`grid_labels`), comparable across the run and across resumes."""
        n = self.cfg.grid_samples
        if n == 0 or not self.spec.is_image:
            return None
        sampler = self.sampler(model, ema)
        if sampler is None:
            return None
        k = self.spec.num_classes
        labels, cols = grid_labels(n, k)
        settings = SamplingSettings(ema=self.ema_decay(ema), sample=self.recipe.sample)
        seed = key_seed(self.cfg.seed, GRID_NOISE)
        images = torch.cat(
            [x for _, x in sampler.generate(range(n), labels, settings, seed=seed, batch_size=256)]
        )
        grid = make_grid(to_uint8(images), cols, labels=labels if k else None)
        self.loggers.image(step, "samples", grid)
        return save_png(self.files.samples_dir / f"{name}.png", grid)

    def evaluate(self, step: int, model: nn.Module, ema: EMA) -> dict[str, float]:
        """Score ``eval_samples`` samples with the dataset's metric: the function and the samples of
        ``gen eval RUN --metric data --num N --seed <train.seed>``; to the loggers (``jsonl``: a line of
        ``eval.jsonl`` each, and ``eval.json``, the latest)."""
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
        record = {"step": step, "num_samples": n, "seed": self.cfg.seed, **settings.describe(), **result}
        self.loggers.scores(step, result, record)
        return result


def grid_labels(n: int, num_classes: int) -> tuple[np.ndarray, int]:
    """The (n,) labels of a training grid and its images per row: a near-square grid, a class per row.

    With K >= ``ceil(sqrt(n))`` classes, row k holds class k (``ceil(sqrt(n))`` rows); with fewer, each
    class fills a block of consecutive rows (rows of ``ceil(sqrt(n))`` images). Unconditional: all 0.
    """
    side = math.ceil(math.sqrt(n))
    if num_classes == 0 or n == 0:
        return np.zeros(n, dtype=np.int64), max(side, 1)
    if num_classes >= side:
        cols = math.ceil(n / side)
        return np.arange(n, dtype=np.int64) // cols, cols
    rows = math.ceil(n / side)
    return (np.arange(n, dtype=np.int64) // side) * num_classes // rows, side


def format_scores(scores: dict[str, float]) -> str:
    """Scores as the log line shows them: ``accuracy = 0.9800, colour = 0.9920``."""
    return ", ".join(f"{k} = {v:.4f}" for k, v in scores.items())


__all__ = ["TrainingSamples", "format_scores", "grid_labels"]
