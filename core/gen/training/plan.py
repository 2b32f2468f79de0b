"""What a recipe's ``[train]`` section means for one run, checked before any work: the batch split, the
length in steps, the warm-up, the learning rate, and what the dataset must be able to do.

``gen train`` resolves it with the opened dataset; ``gen recipe check`` resolves what it can without
the data (the dataset's class, not an instance), so that it rejects what ``gen train`` would.
"""

from __future__ import annotations

import inspect
import math
import typing
from typing import Any

import attrs

from gen.errors import GenError
from gen.plugins import get_registry
from gen.protocols import KnowsSize, ScoresSamples
from gen.recipe import Recipe
from gen.training.batch_plan import BatchPlan
from gen.training.init_from import InitFrom
from gen.training.loggers import build_logger, selected
from gen.training.optim import peak_lr


@attrs.frozen
class TrainingPlan:
    """The resolved length and schedule of a run.

    Attributes:
        batch: How the global batch splits over processes and accumulation.
        total_steps: Optimizer steps of the whole run.
        warmup: Warm-up steps.
        peak_lr: The learning rate after warm-up.
    """

    batch: BatchPlan
    total_steps: int
    warmup: int
    peak_lr: float

    @classmethod
    def make(cls, recipe: Recipe, world_size: int, num_samples: int | None) -> TrainingPlan:
        """The plan of ``recipe`` on ``world_size`` processes over a dataset of ``num_samples`` (None:
        unknown size); every inconsistency is one `gen.GenError` line."""
        cfg, data = recipe.train, recipe.data.name
        batch = BatchPlan.make(cfg.global_batch, world_size, cfg.micro_batch)
        if cfg.epochs is not None:
            if not num_samples:
                raise GenError(
                    f"train.epochs needs a dataset of known size, and [data] {data} does not say its size; "
                    "set train.steps instead"
                )
            total = math.ceil(cfg.epochs * num_samples / cfg.global_batch)
        else:
            total = int(cfg.steps)
        if cfg.warmup_epochs is not None:
            if not num_samples:
                raise GenError("train.warmup_epochs needs a dataset of known size; set train.warmup_steps")
            warmup = round(cfg.warmup_epochs * (num_samples / cfg.global_batch))
        else:
            warmup = cfg.warmup_steps
        return cls(batch=batch, total_steps=total, warmup=warmup, peak_lr=peak_lr(cfg))

    def describe(self, backbone: str, parameters: int, *, fsdp: bool, device: object, run_dir: object) -> str:
        """The line ``gen train`` starts with: the model, the length, the batch split, the LR, where."""
        b = self.batch
        sharded = " (FSDP: parameters, gradients, optimizer state and EMA sharded)" if fsdp else ""
        warning = (
            f"\nwarning: the warm-up ({self.warmup} steps) is not shorter than the run ({self.total_steps} "
            f"steps): the learning rate never reaches {self.peak_lr:.3g}; lower train.warmup_steps or "
            "train.warmup_epochs"
            if self.warmup >= self.total_steps > 0
            else ""
        )
        return (
            f"training {backbone} for {self.total_steps} steps: global batch {b.global_batch} = "
            f"{b.world_size} process(es) x {b.accum} accumulation x {b.micro_batch}{sharded}, "
            f"lr {self.peak_lr:.3g}, {parameters / 1e6:.2f}M parameters, device {device}; run directory {run_dir}"
            f"{warning}"
        )


def check_dataset(recipe: Recipe, dataset: Any) -> None:
    """What the ``[train]`` section asks of the dataset (an instance, or its class before it is built)."""
    cfg = recipe.train
    scores = (
        issubclass(dataset, ScoresSamples)
        if isinstance(dataset, type)
        else isinstance(dataset, ScoresSamples)
    )
    if cfg.eval_samples and not scores:
        raise GenError(
            f"train.eval_samples = {cfg.eval_samples}: [data] {recipe.data.name} has no metric of its own "
            "(evaluate_samples); set eval_samples = 0 and score FID with gen eval RUN --ref STATS"
        )


def dataset_class(recipe: Recipe) -> type | None:
    """The class the recipe's dataset factory returns, when it says (a class, or a return annotation)."""
    factory = get_registry("dataset").get(recipe.data.name).factory
    if inspect.isclass(factory):
        return factory
    try:
        returned = typing.get_type_hints(factory).get("return")
    except Exception:  # noqa: BLE001 - an annotation that does not resolve tells nothing
        return None
    return returned if inspect.isclass(returned) else None


def check_recipe(recipe: Recipe, *, world_size: int = 1) -> TrainingPlan | None:
    """What ``gen train`` would reject before reading data, on ``world_size`` processes: the batch split,
    the loggers' packages, ``train.init_from``, and what the dataset's class can do. Returns the plan
    when the size is known from the config."""
    BatchPlan.make(recipe.train.global_batch, world_size, recipe.train.micro_batch)
    for spec in selected(recipe.train):
        build_logger(spec)  # a factory checks its package (tensorboard, wandb); opening logs nothing
    InitFrom.open(recipe.train, recipe.backbone.name)
    cls = dataset_class(recipe)
    if cls is not None:
        check_dataset(recipe, cls)
    size = getattr(recipe.data.config, "num_samples", None)
    if isinstance(size, int) or (recipe.train.epochs is None and recipe.train.warmup_epochs is None):
        return TrainingPlan.make(recipe, world_size, size if isinstance(size, int) else None)
    return None


def dataset_size(dataset: Any) -> int | None:
    return int(dataset.num_samples) if isinstance(dataset, KnowsSize) and dataset.num_samples else None


__all__ = ["TrainingPlan", "check_dataset", "check_recipe", "dataset_class", "dataset_size"]
