"""What a recipe's ``[train]`` section means for one run, checked before any work: the batch split, the
length in steps, the warm-up, the learning rate, and what the dataset must be able to do.

``gen train`` resolves it with the opened dataset; ``gen recipe check`` resolves what it can without
the data (the dataset's class, not an instance), so that it rejects what ``gen train`` would.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
import typing
from pathlib import Path
from typing import Any

import attrs

from gen.errors import GenError, RecipeError
from gen.plugins import get_registry
from gen.precision import describe_precision, matrix_width
from gen.protocols import KnowsSize, LocalPaths, ScoresSamples
from gen.recipe import Recipe
from gen.threads import wait_policy
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

    def warning(self) -> str | None:
        """What is legal but surely not meant (a warm-up as long as the run, e.g. a short run that
        ``extends`` a long one), as one line; None when nothing is."""
        if self.warmup >= self.total_steps > 0:
            return (
                f"the warm-up ({self.warmup} steps) is not shorter than the run ({self.total_steps} steps): "
                f"the learning rate never reaches {self.peak_lr:.3g}; lower train.warmup_steps or "
                "train.warmup_epochs"
            )
        return None

    def describe(
        self, backbone: str, model: Any, *, fsdp: bool, device: Any, run_dir: object, precision: str = "fp32"
    ) -> str:
        """The line ``gen train`` starts with: the model, the length, the batch split, the LR, where, in
        which precision (``train.precision``; ``auto`` with its reason)."""
        parameters = sum(p.numel() for p in model.parameters())
        import torch

        chosen = describe_precision(precision, torch.device(device), matrix_width(model))
        b = self.batch
        sharded = " (FSDP: parameters, gradients, optimizer state and EMA sharded)" if fsdp else ""
        warning = f"\nwarning: {self.warning()}" if self.warning() else ""
        return (
            f"training {backbone} for {self.total_steps} steps: global batch {b.global_batch} = "
            f"{b.world_size} process(es) x {b.accum} accumulation x {b.micro_batch}{sharded}, "
            f"lr {self.peak_lr:.3g}, {parameters / 1e6:.2f}M parameters, device {_device_text(device)}, "
            f"precision {chosen}; "
            f"run directory {run_dir}"
            f"{warning}"
        )


def _device_text(device: object) -> str:
    """``cuda:0``, or on the CPU its threads and their OpenMP wait (`gen.threads`: passive unless the
    environment chose, so that a core another process takes does not stall every step)."""
    if str(device) != "cpu":
        return str(device)
    import torch

    n = torch.get_num_threads()
    return f"cpu ({n} thread{'s' if n != 1 else ''}, OpenMP wait {wait_policy().lower()})"


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


def nearest_existing(path: str) -> str | None:
    """The existing path closest to a missing ``path``: its first missing part replaced by the most
    similar entry of the folder above (``data/imagnet/train`` -> ``data/imagenet/train``, or
    ``data/imagenet`` when that has no ``train``); None when nothing there is similar."""
    missing = Path(path)
    base = missing.parent
    while not base.is_dir() and base != base.parent:
        base = base.parent
    rest = missing.relative_to(base).parts if missing.is_relative_to(base) else ()
    if not rest or not base.is_dir():
        return None
    try:
        entries = [e.name for e in os.scandir(base) if not e.name.startswith(".")]
    except OSError:  # an unreadable folder suggests nothing
        return None
    match = difflib.get_close_matches(rest[0], entries, n=1, cutoff=0.6)
    if not match:
        return None
    found = base / match[0]
    whole = found.joinpath(*rest[1:])
    return str(whole if whole.exists() else found)


def check_data_paths(recipe: Recipe, *, fix: str | None = None) -> None:
    """That every local path the ``[data]`` config names (`gen.protocols.LocalPaths`) exists, before any
    work: a typo is one `gen.RecipeError` naming the file, ``[data]``, the key and the nearest existing
    path, rather than the dataset's own error once the run has started. ``fix`` ends the line (default:
    fix the path or override it)."""
    config = recipe.data.config
    if not isinstance(config, LocalPaths):
        return
    by_key: dict[str, list[str]] = {}
    for key, path in config.local_paths():
        by_key.setdefault(key, []).append(path)
    for key, paths in by_key.items():
        end = fix or f"fix the path in the recipe, or override it: data.{key}='PATH'"
        if not any(paths):
            raise RecipeError(f"no path given; {end}", file=recipe.source, section="data", key=key)
        missing = [p for p in paths if not os.path.exists(os.path.expanduser(p))]
        if not missing:
            continue
        first = missing[0]
        count = f"{len(missing)} of {len(paths)} paths do not exist, the first " if len(paths) > 1 else ""
        # A pattern of shards that overshoots misses files beside others: a look-alike would mislead.
        beside_others = len(paths) > 1 and Path(os.path.expanduser(first)).parent.is_dir()
        near = None if beside_others else nearest_existing(os.path.expanduser(first))
        hint = f" (did you mean {near}?)" if near else ""
        raise RecipeError(
            f"{count}{first} does not exist{hint}; {end}", file=recipe.source, section="data", key=key
        )


def check_recipe(recipe: Recipe, *, world_size: int = 1, data: bool = True) -> TrainingPlan | None:
    """What ``gen train`` would reject before reading data, on ``world_size`` processes: the batch split,
    the loggers' packages, ``train.init_from``, what the dataset's class can do, and (``data``) that the
    local data paths exist. Returns the plan when the size is known from the config."""
    BatchPlan.make(recipe.train.global_batch, world_size, recipe.train.micro_batch)
    for spec in selected(recipe.train):
        build_logger(spec)  # a factory checks its package (tensorboard, wandb); opening logs nothing
    InitFrom.open(recipe.train, recipe.backbone.name)
    cls = dataset_class(recipe)
    if cls is not None:
        check_dataset(recipe, cls)
    if data:
        check_data_paths(
            recipe, fix="fix the path, or pass --no-data-check to check the recipe away from its data"
        )
    size = getattr(recipe.data.config, "num_samples", None)
    if isinstance(size, int) or (recipe.train.epochs is None and recipe.train.warmup_epochs is None):
        return TrainingPlan.make(recipe, world_size, size if isinstance(size, int) else None)
    return None


def dataset_size(dataset: Any) -> int | None:
    return int(dataset.num_samples) if isinstance(dataset, KnowsSize) and dataset.num_samples else None


__all__ = [
    "TrainingPlan",
    "check_data_paths",
    "check_dataset",
    "check_recipe",
    "dataset_class",
    "dataset_size",
    "nearest_existing",
]
