"""The toy grid: train one model per (prediction, D) cell, sample it, score it, draw the figure.

Each cell is an ordinary run of the base recipe with three overrides (``objective.prediction``,
``data.dim`` and optionally ``train.steps``), trained by ``gen train`` in a subprocess (the public
``gen`` API has no training entry point; a subprocess also lets cells train in parallel). The cell's
samples are then drawn in this process from the run's final checkpoint, with the recipe's
``[sample]`` section, and scored by the dataset's ``evaluate_samples`` (distance to the spiral).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from safetensors.torch import load_file

import gen
from gen_toy.figure import EXTENT, draw_grid

#: How the figure names the predictions.
PREDICTION_LABELS = {"x": "x-pred", "eps": "eps-pred", "v": "v-pred"}


@attrs.frozen
class Cell:
    """One model of the grid: what it predicts and the ambient dimension D of its data."""

    prediction: str
    dim: int

    @property
    def key(self) -> str:
        """Its name in the outputs: ``x_D512``."""
        return f"{self.prediction}_D{self.dim}"

    def overrides(self, steps: int | None) -> list[str]:
        out = [f"objective.prediction='{self.prediction}'", f"data.dim={self.dim}", "train.eval_samples=0"]
        if steps is not None:
            out.append(f"train.steps={steps}")
        return out


@attrs.frozen
class CellResult:
    cell: Cell
    samples: torch.Tensor  # (N, D)
    points: torch.Tensor  # (N, 2) projections on the data plane
    scores: dict[str, float]
    train_seconds: float
    train_cpu_seconds: float | None
    final_loss: float | None


def parse_list(text: str, *, what: str, convert: Callable[[str], Any] = str) -> list[Any]:
    """``"2,8,16"`` -> ``[2, 8, 16]``; a bad item is a :class:`gen.GenError` naming the option."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise gen.GenError(f"--{what} is empty; give a comma-separated list")
    try:
        values = [convert(s) for s in items]
    except ValueError:
        raise gen.GenError(f"--{what} {text!r}: expected a comma-separated list of integers") from None
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise gen.GenError(f"--{what} lists {', '.join(repeated)} more than once; give each value once")
    return values


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest complete checkpoint directory of a run (``checkpoints/step_*`` with its meta.json)."""
    root = run_dir / "checkpoints"
    found = [p for p in root.glob("step_*") if p.is_dir() and (p / "meta.json").is_file()]
    if not found:
        raise gen.GenError(f"no checkpoint in {root}; the training of this cell did not finish")
    return max(found, key=lambda p: int(p.name.split("_", 1)[1]))


def load_sampling_model(recipe: Any, spec: gen.DataSpec, run_dir: Path) -> torch.nn.Module:
    """The run's backbone with the weights the engine samples with (its grid EMA, else the raw ones)."""
    section = recipe.backbone
    fill = {"input_dim": spec.shape[0], "num_classes": spec.num_classes}
    net = section.build(**{k: v for k, v in fill.items() if k not in section.explicit})
    train = recipe.train
    decay = (
        train.grid_ema if train.grid_ema is not None else (train.ema_decays[0] if train.ema_decays else None)
    )
    checkpoint = latest_checkpoint(run_dir)
    name = f"ema_{float(decay)}.safetensors" if decay is not None else "model.safetensors"
    net.load_state_dict(load_file(str(checkpoint / name)))
    return net.eval()


def train_cell(
    recipe_path: Path, cell: Cell, steps: int | None, run_dir: Path, threads: int | None
) -> tuple[float, float | None]:
    """Run ``gen train`` for one cell, its output going to ``run_dir/train.log``.

    Returns:
        (wall seconds, CPU seconds of the training process or None where the OS cannot tell). The CPU
        time does not depend on what else the machine runs, the wall time does.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "gen", "train", str(recipe_path), *cell.overrides(steps)]
    cmd += ["--run-dir", str(run_dir)]
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    env.setdefault("COLUMNS", "100")
    start = time.perf_counter()
    cpu = None
    with open(run_dir / "train.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            if hasattr(os, "wait4"):  # the child's own resource usage, even with cells in parallel
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                cpu = usage.ru_utime + usage.ru_stime
            else:  # pragma: no cover - not POSIX
                proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        lines = (run_dir / "train.log").read_text(errors="replace").strip().splitlines()
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        raise gen.GenError(f"training {cell.key} failed: {last} (full log: {run_dir / 'train.log'})")
    return seconds, cpu


def final_loss(run_dir: Path) -> float | None:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return float(lines[-1]["loss"]) if lines else None


def sample_cell(recipe_path: Path, cell: Cell, steps: int | None, run_dir: Path, num_samples: int) -> dict:
    """Samples (N, D), their 2-D projections and the dataset's scores for a trained cell."""
    recipe = gen.load_recipe(recipe_path, cell.overrides(steps))
    dataset = recipe.data.build()
    net = load_sampling_model(recipe, dataset.spec, run_dir)
    noise = gen.sample_noise(
        range(num_samples), (cell.dim,), seed=recipe.train.seed, noise_scale=recipe.objective.noise_scale
    )  # (N, D)
    with torch.no_grad():
        samples = gen.sample(
            net,
            noise,
            None,
            prediction=recipe.objective.prediction,
            sampler=recipe.sample.sampler,
            steps=recipe.sample.steps,
            t_eps=recipe.objective.t_eps,
            num_classes=dataset.spec.num_classes,
        )  # (N, D)
    labels = torch.zeros(num_samples, dtype=torch.long)
    scores = {k: float(v) for k, v in dataset.evaluate_samples(samples, labels).items()}
    return {"samples": samples, "points": dataset.project(samples), "scores": scores}


def outside_fraction(points: np.ndarray) -> float:
    """Fraction of 2-D points outside the figure's axis box (or not finite)."""
    inside = np.isfinite(points).all(axis=1) & (np.abs(points) <= EXTENT).all(axis=1)
    return float(1.0 - inside.mean()) if len(points) else 0.0


def reference_points(recipe_path: Path, dims: Sequence[int], n: int = 3000) -> list[np.ndarray]:
    """Projections of ``n`` training points per dimension (the light-grey spiral under each panel)."""
    out = []
    for dim in dims:
        dataset = gen.load_recipe(recipe_path, [f"data.dim={dim}"]).data.build()
        x, _ = next(iter(dataset.train_batches(n, seed=0)))
        out.append(dataset.project(x).numpy())
    return out


def run_grid(
    recipe_path: Path,
    *,
    predictions: Sequence[str],
    dims: Sequence[int],
    steps: int | None,
    out: Path,
    num_samples: int,
    jobs: int = 1,
    on_done: Callable[[CellResult], None] | None = None,
) -> dict[str, Any]:
    """Train, sample and score every cell; write ``toy_grid.png``, ``samples.npz`` and ``scores.json``.

    Args:
        recipe_path: The base recipe (e.g. ``recipes/toy/manifold.toml``).
        predictions: Rows of the grid (registered predictions: x, eps, v).
        dims: Columns of the grid (ambient dimensions D).
        steps: Training steps per cell; None keeps the recipe's.
        out: Output directory; cell runs go to ``out/runs/<prediction>_D<dim>``.
        num_samples: Samples drawn per cell.
        jobs: Cells trained at the same time (each with ``cpu_count // jobs`` threads).
        on_done: Called with each cell's result as soon as it is sampled.

    Returns:
        The content of ``scores.json``.
    """
    if not recipe_path.is_file():
        raise gen.GenError(f"recipe not found: {recipe_path}; pass --recipe (e.g. recipes/toy/manifold.toml)")
    registry = gen.get_registry("prediction")
    for name in predictions:
        if name not in registry:
            raise gen.GenError(f"--predictions: {registry.unknown_message(name)}")
    cells = [Cell(p, d) for p in predictions for d in dims]
    # Every mistake before any training: bad prediction names, dims < 2, a broken recipe...
    recipes = [gen.load_recipe(recipe_path, cell.overrides(steps)) for cell in cells]
    busy = [c.key for c in cells if (out / "runs" / c.key / "checkpoints").exists()]
    if busy:
        raise gen.GenError(
            f"{out / 'runs'} already holds runs of {', '.join(busy)}; choose another --out or delete them"
        )
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    start = time.perf_counter()

    def train(cell: Cell) -> tuple[float, float | None]:
        return train_cell(recipe_path, cell, steps, out / "runs" / cell.key, threads)

    results: dict[Cell, CellResult] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {cell: pool.submit(train, cell) for cell in cells}
        for cell in cells:  # sample in grid order as the trainings finish
            try:
                seconds, cpu_seconds = futures[cell].result()
            except BaseException:
                for future in futures.values():  # do not start the cells still waiting
                    future.cancel()
                raise
            run_dir = out / "runs" / cell.key
            drawn = sample_cell(recipe_path, cell, steps, run_dir, num_samples)
            result = CellResult(
                cell=cell,
                samples=drawn["samples"],
                points=drawn["points"],
                scores=drawn["scores"],
                train_seconds=seconds,
                train_cpu_seconds=cpu_seconds,
                final_loss=final_loss(run_dir),
            )
            results[cell] = result
            if on_done is not None:
                on_done(result)

    arrays = {}
    for cell, r in results.items():
        arrays[cell.key] = r.samples.numpy()
        arrays[f"{cell.key}_2d"] = r.points.numpy()
    np.savez_compressed(out / "samples.npz", **arrays)

    panels, notes = [], []
    for p in predictions:
        panels.append([results[Cell(p, d)].points.numpy() for d in dims])
        row_notes = []
        for d in dims:
            r = results[Cell(p, d)]
            note = f"dist {r.scores['spiral_distance']:.3f}"
            outside = outside_fraction(r.points.numpy())
            if outside > 0:
                note += f", {100 * outside:.0f}% off-axes" if outside >= 0.01 else ", <1% off-axes"
            row_notes.append(note)
        notes.append(row_notes)
    image = draw_grid(
        panels,
        row_labels=[PREDICTION_LABELS.get(p, f"{p}-pred") for p in predictions],
        col_labels=[f"D = {d}" for d in dims],
        notes=notes,
        reference=reference_points(recipe_path, dims),
    )
    image.save(out / "toy_grid.png")

    total = time.perf_counter() - start
    report = {
        "recipe": str(recipe_path),
        "steps": recipes[0].train.steps,
        "num_samples": num_samples,
        "jobs": jobs,
        "total_seconds": round(total, 1),
        "cells": [
            {
                "prediction": cell.prediction,
                "dim": cell.dim,
                "key": cell.key,
                **r.scores,
                "final_loss": r.final_loss,
                "train_seconds": round(r.train_seconds, 1),
                "train_cpu_seconds": None if r.train_cpu_seconds is None else round(r.train_cpu_seconds, 1),
            }
            for cell, r in results.items()
        ],
    }
    (out / "scores.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
