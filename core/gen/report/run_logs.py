"""What ``gen report`` reads from a run directory: the recipe, provenance, the metrics and evaluation
logs, ``gen eval``'s results and the sample grids.

A run is often read while it trains, or after a kill: a line cut short, a damaged line or a damaged
image is skipped with a note (shown at the top of the report and printed as a warning), never a failure
of the whole report. What is not a run directory at all is one line (`gen.GenError`) naming the path
and what to give instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from PIL import Image

from gen.errors import GenError
from gen.runs.run_dir import RunDir

#: The grids the training engine writes: ``samples/step_<8 digits>.png`` during training, ``final.png``
#: at the end (`gen.training.engine`).
STEP_GRID = re.compile(r"step_(\d+)\.png")
FINAL_GRID = "final.png"
#: ``gen eval``'s log of every scored combination, in ``RUN/eval/`` (`gen.evaluation.sweep`).
RESULTS_LOG = "results.jsonl"


@attrs.frozen
class Grid:
    """One sample grid of a run: ``label`` ("step 1000", "final") and its file."""

    label: str
    path: Path
    step: int | None


@attrs.frozen(kw_only=True)
class RunLogs:
    """Everything the report shows of one run, read once.

    Attributes:
        name: The run's name in legends (its folder's name, or the path where two runs share one).
        run: The run directory.
        recipe: The text of ``recipe.toml``.
        provenance: The lines of ``provenance.jsonl`` (one per start or resume).
        metrics: The lines of ``metrics.jsonl`` (each with an integer ``step``).
        evals: The lines of ``eval.jsonl`` (the scores during training).
        results: The records of ``eval/results.jsonl`` (``gen eval``), each with a ``key`` and a ``result``.
        grids: The sample grids, by step, ``final`` last.
        notes: What was skipped, and why (each a sentence naming the file).
    """

    name: str
    run: RunDir
    recipe: str
    provenance: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    evals: list[dict[str, Any]]
    results: list[dict[str, Any]]
    grids: list[Grid]
    notes: list[str]


def is_number(value: Any) -> bool:
    """A JSON number (not a bool, which JSON keeps apart and Python does not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite_or_none(value: Any) -> float | None:
    """A number as a float; None for anything else (None, NaN, a string), so that a plot leaves a gap."""
    return float(value) if is_number(value) and math.isfinite(value) else None


def check_run_dir(path: Path) -> RunDir:
    """``path`` as a run directory, or one line saying what it is and what to give instead."""
    fix = "give the folder gen train wrote (its --run-dir)"
    if not path.exists():
        raise GenError(f"{path} does not exist; {fix}")
    if path.is_file():
        parent = f" (its run directory is {path.parent})" if (path.parent / "recipe.toml").is_file() else ""
        raise GenError(f"{path} is a file, not a run directory{parent}; {fix}")
    # Before the recipe: a checkpoint folder holds the run's recipe too, but none of its logs.
    if (path / "meta.json").is_file():
        if path.parent.name == "checkpoints":
            raise GenError(
                f"{path} is a checkpoint; gen report reads its run directory: {path.parent.parent}"
            )
        raise GenError(f"{path} is a checkpoint, not a run directory (it holds no logs); {fix}")
    run = RunDir(path)
    if run.recipe_file.is_file():
        return run
    inside = sorted(
        p.name for p in path.iterdir() if (p / "recipe.toml").is_file() and not (p / "meta.json").exists()
    )
    if inside:
        listed = ", ".join(inside[:5]) + (", ..." if len(inside) > 5 else "")
        raise GenError(
            f"{path} is not a run directory but holds runs ({listed}); give them, e.g. gen report "
            f"{path / inside[0]}" + (f" {path / inside[1]} --out compare.html" if len(inside) > 1 else "")
        )
    raise GenError(f"{path} is not a run directory (it has no recipe.toml); {fix}")


@attrs.frozen
class LineShape:
    """What a line of a log must be beyond a JSON object, said as the rest of "is not ..."."""

    what: str
    holds: Callable[[dict[str, Any]], bool]


#: A line of metrics.jsonl or eval.jsonl: the step is its x.
STEP_LINE = LineShape("an object with a number 'step'", lambda row: is_number(row.get("step")))
#: A record of gen eval's results: the combination scored and its scores.
RESULT = LineShape(
    "an object with a 'key' and a 'result' object",
    lambda row: isinstance(row.get("key"), dict) and isinstance(row.get("result"), dict),
)


def read_jsonl(path: Path, notes: list[str], *, needs: LineShape | None = None) -> list[dict[str, Any]]:
    """The JSON objects of a log, one a line; a line that is not one (cut short by a kill, damaged, or
    not of the shape ``needs``) is skipped with a note naming the file and the line."""
    if not path.is_file():
        return []
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            last = number == len(lines) and not text.endswith("\n")
            why = "is cut short (written while the run was killed, or still being written)" if last else (
                f"is not JSON ({e.msg} at column {e.colno})"
            )  # fmt: skip
            notes.append(f"{path} line {number} {why}: skipped")
            continue
        if not isinstance(row, dict) or (needs is not None and not needs.holds(row)):
            notes.append(f"{path} line {number} is not {needs.what if needs else 'a JSON object'}: skipped")
            continue
        rows.append(row)
    return rows


def read_grids(run: RunDir, notes: list[str]) -> list[Grid]:
    """The run's sample grids by step, ``final`` last; an image that cannot be decoded is left out with
    a note (a browser would show a broken image)."""
    folder = run.samples_dir
    if not folder.is_dir():
        return []
    grids = []
    for path in folder.iterdir():
        match = STEP_GRID.fullmatch(path.name)
        if match:
            grids.append(Grid(f"step {int(match[1])}", path, int(match[1])))
        elif path.name == FINAL_GRID:
            grids.append(Grid("final", path, None))
    grids.sort(key=lambda g: (g.step is None, g.step or 0))
    readable = []
    for grid in grids:
        try:
            with Image.open(grid.path) as image:
                image.verify()
        except Exception as e:  # noqa: BLE001 - PIL raises many types for a damaged file
            notes.append(f"{grid.path} cannot be read as an image ({type(e).__name__}): left out")
            continue
        readable.append(grid)
    return readable


def read_run(path: Path, name: str) -> RunLogs:
    """Every file of the run directory ``path`` the report shows (see `RunLogs`)."""
    run = check_run_dir(path)
    notes: list[str] = []
    recipe = run.recipe_file.read_bytes().decode("utf-8", errors="replace")
    metrics = read_jsonl(run.metrics_file, notes, needs=STEP_LINE)
    if not run.metrics_file.is_file():
        notes.append(
            f"{path} has no metrics yet ({run.metrics_file} does not exist: no step has been logged)"
        )
    elif not metrics:
        notes.append(f"{path} has no metrics yet ({run.metrics_file} holds no line)")
    return RunLogs(
        name=name,
        run=run,
        recipe=recipe,
        provenance=read_jsonl(run.provenance_file, notes),
        metrics=sorted(metrics, key=lambda row: row["step"]),
        evals=sorted(read_jsonl(run.eval_log, notes, needs=STEP_LINE), key=lambda row: row["step"]),
        results=read_jsonl(run.results_dir / RESULTS_LOG, notes, needs=RESULT),
        grids=read_grids(run, notes),
        notes=notes,
    )


def run_names(paths: Sequence[Path]) -> list[str]:
    """A legend name per run: the folder's name, or the path as given where two runs share a name."""
    names = [p.resolve().name or str(p) for p in paths]
    return [str(p) if names.count(n) > 1 else n for p, n in zip(paths, names, strict=True)]


def read_runs(paths: Sequence[Path]) -> list[RunLogs]:
    """Each run once (a path given twice counts once), in the order given."""
    first: dict[Path, Path] = {}
    for path in paths:
        first.setdefault(path.resolve(), path)
    unique = list(first.values())
    return [read_run(p, n) for p, n in zip(unique, run_names(unique), strict=True)]


__all__ = [
    "FINAL_GRID",
    "RESULTS_LOG",
    "STEP_GRID",
    "RESULT",
    "STEP_LINE",
    "Grid",
    "LineShape",
    "RunLogs",
    "check_run_dir",
    "finite_or_none",
    "is_number",
    "read_jsonl",
    "read_run",
    "read_runs",
    "run_names",
]
