"""Where a run came from: one line of ``RUN/provenance.jsonl`` per start or resume."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import torch

from gen.distributed import DistInfo
from gen.recipe import Recipe, recipe_to_toml
from gen.training.plan import TrainingPlan
from gen.version import __version__


def git_commit() -> str | None:
    """The commit of the gen checkout this runs from (None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(
    recipe: Recipe,
    dist: DistInfo,
    plan: TrainingPlan,
    *,
    resumed_from: int | None,
    init_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Versions, command line, processes and the resolved plan of this start of the run; ``init_from``:
    the checkpoint, step and EMA whose weights it started from (``train.init_from``)."""
    return {
        "recipe_source": recipe.source,
        "recipe_sha256": hashlib.sha256(recipe_to_toml(recipe).encode()).hexdigest(),
        "git_commit": git_commit(),
        "gen_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "world_size": dist.world_size,
        "device": str(dist.device),
        "batch_plan": attrs.asdict(plan.batch),
        "total_steps": plan.total_steps,
        "warmup_steps": plan.warmup,
        "peak_lr": plan.peak_lr,
        "argv": sys.argv,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resumed_from_step": resumed_from,
        "init_from": init_from,
    }


__all__ = ["git_commit", "provenance"]
