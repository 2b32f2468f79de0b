"""Scoring a checkpoint over combinations of sampling settings (``gen eval RUN --cfg 1.5,2.5 ...``).

Every combination is scored with the model built once (EMA outermost, so each EMA's weights are loaded
once). ``screen=N, confirm=K`` scores every combination on N samples first, then the best K at ``num``
(best by the metric's ``goal``). Every result is appended to ``RUN/eval/results.jsonl`` as soon as it is
known, keyed by checkpoint step, settings, count, seed and the metric's key; a combination already
there is not computed again, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from gen.distributed import DistInfo
from gen.errors import GenError
from gen.evaluation.results import ResultLog, save_table
from gen.evaluation.score import score_model
from gen.files import check_writable
from gen.metrics.base import SampleMetric
from gen.power_ema import EmaLength, equivalent_decay
from gen.runs.lock import OutputLock, lock_on_main
from gen.sampling.model import ModelSampler
from gen.sampling.settings import SamplingSettings


def combinations(
    sampler: ModelSampler,
    *,
    emas: list[str] | None = None,
    cfgs: list[float] | None = None,
    intervals: list[tuple[float, float]] | None = None,
    steps: list[int] | None = None,
    samplers: list[str] | None = None,
    guides: list[dict[str, Any]] | None = None,
    grids: list[str | dict[str, Any]] | None = None,
    split_interval: bool | None = None,
) -> list[SamplingSettings]:
    """Every combination of the given values (None = the recipe's, the first EMA), EMA outermost, then
    the guide (each EMA and guide is loaded once); repeated values collapse. ``emas``: decays,
    ``phema_<sigma_rel>`` (power EMAs, reconstructed when not stored) or ``none``. ``guides``: ``[sample]``
    keys of the guidance (``guidance``, ``guide_step``, ``guide_ema``, ``guide_run``). ``grids``: time grids, a name or a
    ``[sample] grid`` table each. ``split_interval``: for every combination (None: the recipe's). Every value
    is checked before any work."""
    grid = itertools.product(
        emas or ["default"],
        guides or [{}],
        samplers or [None],
        grids or [None],
        steps or [None],
        intervals or [None],
        cfgs or [None],
    )
    out = [
        sampler.settings(
            ema,
            sampler=name,
            grid=g,
            steps=n,
            cfg_interval=interval,
            cfg=cfg,
            split_interval=split_interval,
            **guide,
        )
        for ema, guide, name, g, n, interval, cfg in grid
    ]
    return list(dict.fromkeys(out))


def ema_columns(settings: SamplingSettings, step: int) -> dict[str, Any]:
    """What a result row adds about a power EMA beside its name: the exponential decay of the same width
    at this step (to compare with 0.9999), not part of the row's key."""
    if not isinstance(settings.ema, EmaLength):
        return {}
    return {"as_decay": round(equivalent_decay(settings.ema.sigma_rel, step), 6)}


def best_first(rows: list[dict[str, Any]], goal: tuple[str, str]) -> Callable[[int], float]:
    """A sort key over row indices, best first by ``goal`` (a result key and "max" or "min")."""
    key, direction = goal

    def badness(i: int) -> float:
        return -rows[i][key] if direction == "max" else rows[i][key]

    return badness


def evaluate_checkpoint(
    sampler: ModelSampler,
    settings_list: list[SamplingSettings],
    metric: SampleMetric,
    *,
    num: int,
    seed: int,
    batch_size: int,
    screen: int | None = None,
    confirm: int = 1,
    out: str | Path | None = None,
    force: bool = False,
    dist: DistInfo | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Score every combination of ``settings_list`` (see the module doc); rank 0 saves the table to
    ``out`` (default ``RUN/eval/step_<step>.json``). Returns the table: ``rows``, ``best`` and context."""
    checkpoint = sampler.checkpoint
    if checkpoint is None:
        raise GenError("evaluate_checkpoint needs a sampler of a checkpoint (ModelSampler.from_checkpoint)")
    if screen is not None and (screen < 2 or metric.goal is None):
        raise GenError(
            f"--screen must be >= 2 images, got {screen}"
            if screen < 2
            else "--screen needs to know which result is best, and this metric declares no goal "
            "(a dataset without primary_metric)"
        )
    if confirm < 1:
        raise GenError(f"--confirm must be >= 1, got {confirm}")
    dist = dist or DistInfo.local(sampler.device)
    path = Path(out) if out else checkpoint.run.results_dir / f"step_{checkpoint.step:08d}.json"
    # Before any sampling: a read-only run is one line (every result goes to its results.jsonl), and a
    # second gen eval writing the same table is refused, naming the first.
    fix = "make it writable: gen eval keeps every result there (results.jsonl), whatever --out says"
    check_writable(checkpoint.run.results_dir, "the results folder", fix)
    lock = lock_on_main(OutputLock(path), dist)
    try:
        return _evaluate(sampler, settings_list, metric, path, num=num, seed=seed, batch_size=batch_size,
                         screen=screen, confirm=confirm, force=force, dist=dist, console=console)  # fmt: skip
    finally:
        if lock is not None:
            lock.release()


def _evaluate(
    sampler: ModelSampler,
    settings_list: list[SamplingSettings],
    metric: SampleMetric,
    path: Path,
    *,
    num: int,
    seed: int,
    batch_size: int,
    screen: int | None,
    confirm: int,
    force: bool,
    dist: DistInfo,
    console: Console | None,
) -> dict[str, Any]:
    """`evaluate_checkpoint` once its table ``path`` is locked: the sweep, the log, the table."""
    checkpoint = sampler.checkpoint
    assert checkpoint is not None  # checked by evaluate_checkpoint
    log = ResultLog(checkpoint.run.results_dir / "results.jsonl")
    base_key = {"step": checkpoint.step, "seed": seed, **metric.key(), "labels": "balanced"}
    finished = {} if force else log.done()  # read once: every rank skips the same combinations

    def score(settings: SamplingSettings, n: int, label: str) -> dict[str, Any]:
        key = {**base_key, **settings.describe(), "num_images": n}
        done = finished.get(json.dumps(key, sort_keys=True))
        if done is not None:
            if console is not None and dist.is_main:
                console.print(f"{label}: done before, skipped ({log.path})", markup=False)
            return done["result"]
        start = time.perf_counter()
        result = score_model(
            sampler,
            settings,
            metric,
            num=n,
            seed=seed,
            batch_size=batch_size,
            dist=dist,
            console=console,
            label=label,
        )
        result["seconds"] = round(time.perf_counter() - start, 3)
        if dist.is_main:
            record = {"key": key, "result": result, "checkpoint": str(checkpoint.path)}
            log.append({**record, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return result

    rows, best = _sweep(settings_list, metric, score, num=num, screen=screen, confirm=confirm)
    for row, settings in zip(rows, settings_list, strict=True):
        row.update(ema_columns(settings, checkpoint.step))
    title = f"{checkpoint.path} (step {checkpoint.step}), {num} images, seed {seed}"
    extra = {
        "checkpoint": str(checkpoint.path),
        "step": checkpoint.step,
        "seed": seed,
        "num_images": num,
        "screen": screen,
        **metric.info(),
        "metric": metric.name,
    }
    if dist.is_main:
        save_table(rows, best, title, path, extra, metric.columns(rows))
    return {
        **extra,
        "rows": rows,
        "best": rows[best] if best is not None else None,
        "path": str(path),
        "title": title,
    }


def _sweep(
    settings_list: list[SamplingSettings],
    metric: SampleMetric,
    score: Callable[[SamplingSettings, int, str], dict[str, Any]],
    *,
    num: int,
    screen: int | None,
    confirm: int,
) -> tuple[list[dict[str, Any]], int | None]:
    """The rows (settings + results) of a sweep and the index of the best (None: no goal)."""
    total = len(settings_list)
    rows: list[dict[str, Any]] = [dict(s.describe()) for s in settings_list]
    finalists = list(range(total))
    goal = metric.goal
    if screen is not None and total > 1 and goal is not None:
        screened = [score(s, screen, f"screen {i + 1}/{total}") for i, s in enumerate(settings_list)]
        for row, result in zip(rows, screened, strict=True):
            row[f"screen_{goal[0]}"] = result[goal[0]]
        finalists = sorted(sorted(range(total), key=best_first(screened, goal))[:confirm])
    for j, i in enumerate(finalists):
        rows[i].update(score(settings_list[i], num, f"eval {j + 1}/{len(finalists)}"))
    if goal is None:
        return rows, None
    if goal[0] == "fid" and any(rows[i].get("fid") is None for i in finalists):
        goal = ("is_mean", "max")  # an unscored FID (no reference) ranks by IS
    return rows, min(finalists, key=best_first(rows, goal))  # the first of equals


__all__ = ["best_first", "combinations", "ema_columns", "evaluate_checkpoint"]
