"""gen_loggers registers jsonl, tensorboard and wandb through its entry point, like any plugin."""

from __future__ import annotations

import gen
from gen_loggers.scalars import scalars


def test_the_loggers_are_registered_by_gen_loggers():
    registry = gen.get_registry("logger")
    assert {"jsonl", "tensorboard", "wandb"} <= set(registry.names())
    assert {registry.get(n).plugin for n in ("jsonl", "tensorboard", "wandb")} == {"gen_loggers"}
    config = gen.resolve_config("logger", "wandb", project="jit", tags=["a", "b"], mode="offline")
    assert (config.project, config.tags, config.mode, config.name) == ("jit", ("a", "b"), "offline", None)


def test_a_metrics_line_as_scalars():
    line = {
        "step": 3,
        "time": 1.0,
        "loss": 0.5,
        "loss_by_t": [0.9, None, 0.3, 0.1],
        "loss_vb": 0.2,
        "grad_norm": 1.5,
        "lr": 1e-3,
        "images_per_s": 10.0,
        "mfu": None,
        "peak_memory_mb": 12.0,
    }
    assert scalars(line) == {
        "train/loss": 0.5,
        "loss_by_t/0.00-0.25": 0.9,
        "loss_by_t/0.50-0.75": 0.3,
        "loss_by_t/0.75-1.00": 0.1,
        "train/loss_vb": 0.2,
        "train/grad_norm": 1.5,
        "train/lr": 1e-3,
        "perf/images_per_s": 10.0,
        "perf/peak_memory_mb": 12.0,
    }
