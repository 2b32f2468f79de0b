"""gen_loggers: where a training run's numbers and pictures go, as a plugin.

Registers the loggers ``jsonl`` (the run directory's own record: ``metrics.jsonl``, ``eval.jsonl``,
``eval.json``; always on), ``tensorboard`` (event files in ``RUN/tensorboard``: ``pip install
'gen[tensorboard]'``) and ``wandb`` (Weights & Biases, online or offline, its files in ``RUN/wandb``:
``pip install 'gen[wandb]'``). A recipe selects them with ``train.loggers``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gen

if TYPE_CHECKING:
    from gen_loggers.jsonl import JsonlLogger
    from gen_loggers.tensorboard import TensorBoardLogger
    from gen_loggers.wandb_logger import WandbConfig, WandbLogger

__all__ = ["JsonlLogger", "TensorBoardLogger", "WandbConfig", "WandbLogger", "register_loggers"]

#: Where the names of `__all__` live, imported on first use: loading the plugin (``gen --help`` loads every
#: plugin) imports no torch; the hooks import what they register when the registries are built.
_MODULE_OF: dict[str, str] = {
    "JsonlLogger": "gen_loggers.jsonl",
    "TensorBoardLogger": "gen_loggers.tensorboard",
    "WandbConfig": "gen_loggers.wandb_logger",
    "WandbLogger": "gen_loggers.wandb_logger",
}


__getattr__ = gen.lazy_getattr(__name__, _MODULE_OF)  # PEP 562: NAME imports its module on first use


@gen.hookimpl
def register_loggers(register):  # noqa: ANN001, ANN201
    from gen_loggers.jsonl import JsonlLogger
    from gen_loggers.tensorboard import build_tensorboard
    from gen_loggers.wandb_logger import WandbConfig, build_wandb

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
