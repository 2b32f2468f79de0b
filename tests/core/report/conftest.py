"""Run directories written file by file for the report's tests: what ``gen train`` and ``gen eval``
write, at a few lines each, with no training (``fake_run``); and one trained for real (``trained_run``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

RECIPE = """[backbone]
name = "tinymlp"

[data]
name = "blobs"

[train]
steps = 6
lr = {lr}
"""


def metrics_line(step: int, **extra) -> dict:
    """A metrics.jsonl line as the trainer writes it (CPU: mfu null), loss falling with the step."""
    loss = 1.0 / (1 + step)
    return {
        "step": step,
        "time": 1.7e9 + step,
        "loss": loss,
        "loss_by_t": [loss * 0.5, loss * 0.4, None if step == 2 else loss, loss * 3],
        "grad_norm": 0.5,
        "lr": 1e-3 * step,
        "images_per_s": 100.0 + step,
        "mfu": None,
        "peak_memory_mb": 400.0,
        **extra,
    }


def eval_line(step: int, ema: str = "0.9", accuracy: float = 0.5) -> dict:
    return {"step": step, "num_samples": 6, "seed": 0, "ema": ema, "cfg": 2.0, "interval": [0.0, 1.0],
            "steps": 4, "sampler": "euler", "accuracy": accuracy + step / 100}  # fmt: skip


def result_line(step: int, cfg: float, steps: int, fid: float, ema: str = "0.9", num: int = 6) -> dict:
    """A line of RUN/eval/results.jsonl as `gen.evaluation.sweep` writes it."""
    key = {"step": step, "seed": 0, "reference": "ref.npz", "features": "inception", "labels": "balanced",
           "ema": ema, "cfg": cfg, "interval": [0.0, 1.0], "steps": steps, "sampler": "euler", "num_images": num}  # fmt: skip
    return {"key": key, "result": {"fid": fid, "is_mean": 2.0, "num_images": num, "seconds": 0.1},
            "checkpoint": f"run/checkpoints/step_{step:08d}", "time": "2026-01-01T00:00:00+0000"}  # fmt: skip


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def grid_png(path: Path, seed: int, size: int = 24) -> None:
    """A small noisy RGB image, different per seed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def make_run(
    path: Path,
    *,
    steps: tuple[int, ...] = (1, 2, 3, 4),
    extra: dict | None = None,
    evals: bool = True,
    results: bool = True,
    grids: bool = True,
    lr: float = 0.001,
) -> Path:
    """A run directory as training and ``gen eval`` leave it (``extra``: more keys on each metrics line)."""
    path.mkdir(parents=True)
    (path / "recipe.toml").write_text(RECIPE.format(lr=lr))
    write_jsonl(path / "provenance.jsonl", [{"recipe_source": "tiny.toml", "argv": ["gen", "train", "tiny.toml"],
                                              "batch_plan": {"global_batch": 8}, "resumed_from_step": None}])  # fmt: skip
    write_jsonl(path / "metrics.jsonl", [metrics_line(s, **(extra or {})) for s in steps])
    if evals:
        write_jsonl(path / "eval.jsonl", [eval_line(s) for s in steps[1::2]])
    if results:
        write_jsonl(
            path / "eval" / "results.jsonl",
            [result_line(4, cfg, n, fid=10 / cfg + 5 / n) for cfg in (1.0, 2.0, 3.0) for n in (2, 8, 32)],
        )
    if grids:
        for s in steps[1::2]:
            grid_png(path / "samples" / f"step_{s:08d}.png", s)
        grid_png(path / "samples" / "final.png", 99)
    return path


@pytest.fixture
def fake_run(tmp_path) -> Callable[..., Path]:
    """``fake_run("name", **options)``: a run directory under the test's tmp_path (see `make_run`)."""
    return lambda name="run", **options: make_run(tmp_path / name, **options)


@pytest.fixture
def files() -> SimpleNamespace:
    """The line writers above, for tests that write their own: ``files.eval(step, ema)``,
    ``files.result(...)``, ``files.metrics(step)``, ``files.write(path, rows)``, ``files.grid(path, seed)``."""
    return SimpleNamespace(
        metrics=metrics_line, eval=eval_line, result=result_line, write=write_jsonl, grid=grid_png
    )
