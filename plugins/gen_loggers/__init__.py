"""gen_loggers: where a training run's numbers and pictures go, as a plugin.

Registers the loggers ``jsonl`` (the run directory's own record: ``metrics.jsonl``, ``eval.jsonl``,
``eval.json``; always on), ``tensorboard`` (event files in ``RUN/tensorboard``: ``pip install
'gen[tensorboard]'``) and ``wandb`` (Weights & Biases, online or offline, its files in ``RUN/wandb``:
``pip install 'gen[wandb]'``). A recipe selects them with ``train.loggers``.
"""

from __future__ import annotations

import gen
from gen_loggers.jsonl import JsonlLogger
from gen_loggers.tensorboard import TensorBoardLogger, build_tensorboard
from gen_loggers.wandb_logger import WandbConfig, WandbLogger, build_wandb

__all__ = ["JsonlLogger", "TensorBoardLogger", "WandbConfig", "WandbLogger", "register_loggers"]


@gen.hookimpl
def register_loggers(register):  # noqa: ANN001, ANN201
    register(
        "jsonl",
        lambda config: JsonlLogger(),
        description="RUN/metrics.jsonl, eval.jsonl and eval.json: the run's own record (always on).",
    )
    register(
        "tensorboard",
        build_tensorboard,
        description="TensorBoard event files in RUN/tensorboard: scalars, sample grids, scores.",
    )
    register(
        "wandb",
        build_wandb,
        config=WandbConfig,
        description="Weights & Biases: scalars, sample grids, scores; offline files in RUN/wandb.",
    )
