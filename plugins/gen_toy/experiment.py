"""The toy grid: train one model per (prediction, D) cell, sample it, score it, draw the figure.

Each cell is an ordinary run of the base recipe with three overrides (``objective.prediction``,
``data.dim`` and optionally ``train.steps``), trained in this process by `gen.train` into
``OUT/runs/<prediction>_D<dim>`` (its output in the run's ``train.log``); with ``--jobs N`` N cells
train at the same time in threads, torch's CPU threads split between them (and whatever draws from
torch's global RNG, such as a cell's initial weights, one at a time). The cell's samples are then
drawn by `gen.ModelSampler` from the run's latest checkpoint, with the weights, the ``[sample]``
section and the seed the training engine draws its grids with, and scored by the dataset's
``evaluate_samples`` (distance to the spiral).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from rich.console import Console

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
    train_cpu_seconds: float | None  # measured only with one cell training at a time (jobs = 1)
    final_loss: float | None  # the training loss last logged


def parse_list(text: str, *, what: str, convert: Callable[[str], Any] = str) -> list[Any]:
    """``"2,8,16"`` -> ``[2, 8, 16]``; a bad item is a `gen.GenError` naming the option."""
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


def grid_ema(recipe: gen.Recipe) -> str:
    """The weights the training engine draws its grids with, named as `gen.ModelSampler.settings`
    takes them: ``train.grid_ema`` if set, else the first of ``train.ema_decays``, else ``none`` (raw)."""
    train = recipe.train
    if train.grid_ema is not None:
        return repr(train.grid_ema)
    return "default" if train.ema_decays else "none"


def one_line(error: BaseException) -> str:
    """The first line of an exception's message, with its type unless it is a `gen.GenError`."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else "(no message)"
    return text if isinstance(error, gen.GenError) else f"{type(error).__name__}: {text}"


def train_cell(
    recipe: gen.Recipe,
    cell: Cell,
    run_dir: Path,
    *,
    measure_cpu: bool,
) -> tuple[float, float | None, float | None]:
    """Train one cell in this process with `gen.train`, its output going to ``run_dir/train.log``.

    Args:
        recipe: The cell's recipe (the base recipe with `Cell.overrides`).
        measure_cpu: Measure the CPU seconds of the training (the process's CPU time, so only right when
            nothing else runs in the process meanwhile: no other cell training at the same time).

    Returns:
        (wall seconds, CPU seconds or None when not measured, the last logged training loss or None).

    Raises:
        gen.GenError: One line naming the cell when its training fails (the traceback goes to the log)
            or is stopped by a signal.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "train.log"
    start, cpu_start = time.perf_counter(), time.process_time()
    with open(log_path, "w") as log:
        console = Console(file=log, width=100, highlight=False)
        try:
            summary = gen.train(recipe, run_dir, console=console)
        except Exception as e:
            console.print_exception()
            raise gen.GenError(f"training {cell.key} failed: {one_line(e)} (full log: {log_path})") from e
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if summary.get("stopped"):
        raise gen.GenError(
            f"training {cell.key} was stopped by a signal at step {summary['step']}; the grid is incomplete "
            f"(log: {log_path})"
        )
    loss = summary.get("metrics", {}).get("loss")
    return seconds, cpu if measure_cpu else None, None if loss is None else float(loss)


def sample_cell(run_dir: Path, num_samples: int) -> dict:
    """Samples (N, D), their 2-D projections and the dataset's scores for a trained cell.

    The samples are drawn as the training engine draws its grids: from the run's latest checkpoint with
    its grid EMA (`grid_ema`), the recipe's ``[sample]`` section and ``train.seed``; sample ``i``
    depends only on (seed, i).
    """
    sampler = gen.ModelSampler.from_checkpoint(str(run_dir))
    recipe = sampler.recipe
    settings = sampler.settings(grid_ema(recipe))
    labels = torch.zeros(num_samples, dtype=torch.long)  # unconditional
    batches = sampler.generate(
        range(num_samples), labels, settings, seed=recipe.train.seed, batch_size=num_samples
    )
    samples = torch.cat([x for _, x in batches])  # (N, D)
    dataset = recipe.data.build()
    scores = {k: float(v) for k, v in dataset.evaluate_samples(samples, labels).items()}
    return {"samples": samples, "points": dataset.project(samples), "scores": scores}


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """``torch.set_num_threads(count)`` for the duration."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
        jobs: Cells trained at the same time, in threads (torch then uses ``cpu_count // jobs`` CPU
            threads, restored at the end). With 1, the cells train one after the other on this thread,
            and their CPU seconds are measured (None with more: the process's CPU time is shared).
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
    recipes = {cell: gen.load_recipe(recipe_path, cell.overrides(steps)) for cell in cells}
    busy = [c.key for c in cells if (out / "runs" / c.key / "checkpoints").exists()]
    if busy:
        raise gen.GenError(
            f"{out / 'runs'} already holds runs of {', '.join(busy)}; choose another --out or delete them"
        )
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    def train(cell: Cell, recipe: gen.Recipe) -> tuple[float, float | None, float | None]:
        run_dir = out / "runs" / cell.key
        return train_cell(recipe, cell, run_dir, measure_cpu=jobs == 1)

    def finish(cell: Cell, trained: tuple[float, float | None, float | None]) -> None:
        seconds, cpu_seconds, loss = trained
        drawn = sample_cell(out / "runs" / cell.key, num_samples)
        result = CellResult(
            cell=cell,
            samples=drawn["samples"],
            points=drawn["points"],
            scores=drawn["scores"],
            train_seconds=seconds,
            train_cpu_seconds=cpu_seconds,
            final_loss=loss,
        )
        results[cell] = result
        if on_done is not None:
            on_done(result)

    results: dict[Cell, CellResult] = {}
    if jobs == 1:  # on this thread, where the engine's SIGINT/SIGTERM handlers stop a run cleanly
        for cell in cells:
            finish(cell, train(cell, recipes[cell]))
    else:  # threads: torch's kernels release the GIL; the CPU threads are split between the cells
        with (
            torch_threads(max(1, (os.cpu_count() or 1) // jobs)),
            ThreadPoolExecutor(max_workers=jobs) as pool,
        ):
            futures = {cell: pool.submit(train, cell, recipes[cell]) for cell in cells}
            try:
                for cell in cells:  # sample in grid order as the trainings finish
                    finish(cell, futures[cell].result())
            except BaseException:
                for future in futures.values():  # do not start the cells still waiting
                    future.cancel()
                raise

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
        "steps": recipes[cells[0]].train.steps,
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
