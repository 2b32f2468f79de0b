"""The run directory: what ``gen train`` writes, and reading a trained checkpoint back with its recipe.

Layout of ``RUN/``:

- ``recipe.toml``: the resolved recipe (data-derived fields filled): it rebuilds the model;
- ``provenance.jsonl``: one line per start or resume (versions, command line, batch plan);
- ``metrics.jsonl``: one line every ``train.log_every`` steps;
- ``eval.jsonl`` / ``eval.json``: the training-time scores with the dataset's metric (all / latest);
- ``samples/``: sample grids; ``checkpoints/``: see :mod:`gen.runs.checkpoint`;
- ``eval/``: ``gen eval`` results (``results.jsonl``, one table per step).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from gen.errors import GenError
from gen.protocols import DataSpec
from gen.recipe import Recipe, load_recipe
from gen.runs import checkpoint as ckpt
from gen.runs.checkpoint import CheckpointMeta


@attrs.frozen
class RunDir:
    """The files of one run, by name."""

    path: Path = attrs.field(converter=Path)

    @property
    def recipe_file(self) -> Path:
        return self.path / "recipe.toml"

    @property
    def provenance_file(self) -> Path:
        return self.path / "provenance.jsonl"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def eval_log(self) -> Path:
        return self.path / "eval.jsonl"

    @property
    def eval_latest(self) -> Path:
        return self.path / "eval.json"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def results_dir(self) -> Path:
        return self.path / "eval"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    def latest_checkpoint(self) -> Path | None:
        return ckpt.latest_checkpoint(self.path)

    def append_json(self, file: Path, record: dict[str, Any]) -> None:
        """Append one JSON line to ``file`` (a line cut short by a kill is skipped by readers)."""
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(file, "a") as f:
            f.write(json.dumps(record) + "\n")


@attrs.frozen
class Checkpoint:
    """A checkpoint read back with what rebuilds its model without the training data.

    Attributes:
        path: The checkpoint directory.
        run: Its run directory.
        recipe: The run's resolved recipe.
        meta: Its ``meta.json``.
        spec: The data the backbone was built for.
    """

    path: Path
    run: RunDir
    recipe: Recipe
    meta: CheckpointMeta
    spec: DataSpec

    @property
    def step(self) -> int:
        return self.meta.step

    @property
    def run_dir(self) -> Path:
        return self.run.path

    @property
    def ema_decays(self) -> tuple[float, ...]:
        return self.meta.ema_decays

    def default_ema(self) -> float | None:
        """The first EMA, or None (the raw weights) for a run without EMA."""
        return self.ema_decays[0] if self.ema_decays else None

    def find_ema(self, ema: str) -> float | None:
        """``--ema`` text as a stored decay (None: the raw weights); an unknown one is a one-line error."""
        try:
            return self.meta.find_ema(ema)
        except GenError as e:
            raise GenError(f"{self.path}: {e}") from None

    def load_weights(self, ema: float | None):  # noqa: ANN201 - a state dict
        return ckpt.load_weights(self.path, ema)

    def check_weights(self, emas: Iterable[float | None]) -> None:
        """Before any work: the weights files of ``emas`` (None: the raw ones) are there and whole (their
        headers are read); else a one-line :class:`~gen.errors.DamagedFileError` naming the file."""
        ckpt.check_weights(self.path, emas)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or the latest checkpoint of a run directory."""
    path = Path(path)
    if ckpt.is_checkpoint(path):
        return path
    if path.is_dir():
        latest = ckpt.latest_checkpoint(path)
        if latest is not None:
            return latest
    raise GenError(
        f"{path} is neither a run directory with checkpoints nor a checkpoint (RUN/checkpoints/step_*); "
        "train one with `gen train RECIPE --run-dir RUN`"
    )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint (or a run's latest) with the run's resolved recipe."""
    path = resolve_checkpoint(path)
    run = RunDir(path.parent.parent)
    if not run.recipe_file.is_file():
        raise GenError(f"{run.recipe_file} is missing: the run directory of {path} must hold its recipe.toml")
    recipe = load_recipe(run.recipe_file)
    meta = ckpt.read_meta(path)
    # Checkpoints written before the spec was stored: ask the dataset.
    spec = meta.data_spec if meta.data_spec is not None else recipe.data.build().spec
    return Checkpoint(path=path, run=run, recipe=recipe, meta=meta, spec=spec)


__all__ = ["Checkpoint", "RunDir", "load_checkpoint", "resolve_checkpoint"]
