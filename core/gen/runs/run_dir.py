"""The run directory: what ``gen train`` writes, and reading a trained checkpoint back with its recipe.

Layout of ``RUN/``:

- ``recipe.toml``: the resolved recipe (data-derived fields filled): it rebuilds the model;
- ``provenance.jsonl``: one line per start or resume (versions, command line, batch plan);
- ``metrics.jsonl``: one line every ``train.log_every`` steps;
- ``eval.jsonl`` / ``eval.json``: the training-time scores with the dataset's metric (all / latest);
- ``samples/``: sample grids; ``checkpoints/``: see `gen.runs.checkpoint`;
- ``ema_snapshots/``: the power EMAs every ``train.ema_snapshot_every`` steps (`gen.runs.ema_snapshots`);
- ``eval/``: ``gen eval`` results (``results.jsonl``, one table per step).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import torch

from gen.errors import GenError
from gen.files import write_atomic
from gen.power_ema import EmaKey, EmaLength, parse_ema
from gen.protocols import DataSpec
from gen.recipe import Recipe, build_backbone, load_recipe, recipe_to_toml
from gen.runs import checkpoint as ckpt
from gen.runs import ema_snapshots, model_folder
from gen.runs.checkpoint import CheckpointMeta
from gen.version import __version__


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

    def last_metrics(self) -> dict[str, Any]:
        """The last complete line of ``metrics.jsonl`` ({} when there is none)."""
        if not self.metrics_file.is_file():
            return {}
        for line in reversed(self.metrics_file.read_text().splitlines()):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
        return {}

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

    def default_ema(self) -> EmaKey:
        """The first EMA (a decay, else a power EMA), or None (the raw weights) for a run without EMA."""
        return self.meta.ema_keys[0] if self.meta.ema_keys else None

    def find_ema(self, ema: str) -> EmaKey:
        """``--ema`` text as a stored EMA (None: the raw weights) — a decay, or a power EMA
        (``phema_0.05``) that is tracked, was reconstructed before, or can be reconstructed from the run's
        snapshots; else a one-line error."""
        if ema.strip().lower().startswith("phema_"):
            try:
                key = parse_ema(ema)
            except ValueError as e:
                raise GenError(f"{self.path}: --ema {ema.strip()}: {e}") from None
            self.check_length(key)  # type: ignore[arg-type]
            return key
        try:
            return self.meta.find_ema(ema)
        except GenError as e:
            raise GenError(f"{self.path}: {e}") from None

    def check_length(self, key: EmaLength) -> None:
        """That the power EMA ``key`` is stored here or can be reconstructed (one-line error else)."""
        if key not in self.meta.ema_keys and key not in ema_snapshots.stored_lengths(self.path):
            ema_snapshots.plan(self.path, [key.sigma_rel])

    def load_weights(self, ema: EmaKey):  # noqa: ANN201 - a state dict
        """The state dict of ``ema``; a power EMA that is not stored is reconstructed from the snapshots."""
        if isinstance(ema, EmaLength) and not (self.path / ckpt.weights_name(ema)).is_file():
            return ema_snapshots.reconstruct(self.path, [ema.sigma_rel])[ema]
        return ckpt.load_weights(self.path, ema)

    def check_weights(self, emas: Iterable[EmaKey]) -> None:
        """Before any work: the weights files of ``emas`` (None: the raw ones) are there and whole (their
        headers are read; for a power EMA to reconstruct, those of its sources); else a one-line
        `DamagedFileError` naming the file."""
        emas = list(emas)
        rebuilt = [
            e for e in emas if isinstance(e, EmaLength) and not (self.path / ckpt.weights_name(e)).is_file()
        ]
        ckpt.check_weights(self.path, [e for e in emas if e not in rebuilt])
        if rebuilt:
            for key in rebuilt:
                self.check_length(key)
            ema_snapshots.check_sources(self.path)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or the latest checkpoint of a run directory.

    The one place a checkpoint path is read (``gen sample``, ``gen eval``, ``train.init_from``,
    ``guide_run``): a step its run does not hold is one line listing the steps the run does hold, so a
    checkpoint pruned by ``train.keep_last`` or a mistyped step is not mistaken for a missing run.
    """
    path = Path(path)
    if ckpt.is_checkpoint(path):
        return path
    if path.is_dir():
        latest = ckpt.latest_checkpoint(path)
        if latest is not None:
            return latest
    if model_folder.is_model_folder(path):  # gen export's folder: one set of weights
        return path
    if path.parent.name == "checkpoints" and path.name.startswith(ckpt.PREFIX):
        run = path.parent.parent
        found = ckpt.list_checkpoints(run)
        what = "is not a complete checkpoint (it has no meta.json)" if path.exists() else "does not exist"
        if found:
            steps = [int(p.name[len(ckpt.PREFIX) :]) for p in found]
            listed = ", ".join(map(str, steps[:20])) + (
                f", ... ({len(steps)} in all)" if len(steps) > 20 else ""
            )
            raise GenError(
                f"{path} {what}; {run} has checkpoints of steps {listed}: give one of them (the latest is "
                f"{found[-1]}), or {run} for the latest (train.keep_last prunes older ones unless "
                "train.milestone_every keeps them)"
            )
        raise GenError(f"{path} {what}, and {run} holds no checkpoint; train it with `gen train`")
    raise GenError(
        f"{path} is neither a run directory with checkpoints nor a checkpoint (RUN/checkpoints/step_*); "
        "train one with `gen train RECIPE --run-dir RUN`"
    )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint (or a run's latest) with its resolved recipe: the one inside the checkpoint
    folder (so that a copied ``step_N/`` folder samples on its own), else its run directory's. A folder
    written by ``gen export`` reads as a checkpoint without EMA (`gen.runs.model_folder`)."""
    path = resolve_checkpoint(path)
    if model_folder.is_model_folder(path):
        found = model_folder.read_model_folder(path)
        return Checkpoint(path=path, run=RunDir(path), recipe=found.recipe, meta=found.meta, spec=found.spec)
    run = RunDir(path.parent.parent)
    inside = path / ckpt.RECIPE_FILE
    recipe_file = inside if inside.is_file() else run.recipe_file
    if not recipe_file.is_file():
        raise GenError(
            f"{path} holds no recipe.toml and neither does {run.path} (checkpoints written before gen kept "
            "the recipe inside); copy the run's recipe.toml into the checkpoint folder"
        )
    recipe = load_recipe(recipe_file)
    meta = ckpt.read_meta(path)
    # Checkpoints written before the spec was stored: ask the dataset.
    spec = meta.data_spec if meta.data_spec is not None else recipe.data.build().spec
    return Checkpoint(path=path, run=run, recipe=recipe, meta=meta, spec=spec)


def export_checkpoint(
    run_dir: str | Path,
    recipe: Recipe,
    *,
    spec: DataSpec,
    weights: dict[EmaKey, dict],
    step: int = 0,
) -> Path:
    """Write weights made elsewhere (a converted published checkpoint) as a checkpoint of ``run_dir``
    that ``gen sample``, ``gen eval`` and [`gen.ModelSampler`][] read like any other.

    The recipe goes beside it and inside it, the meta record names the EMAs; there is no training state,
    so the checkpoint samples but does not resume. The weights are checked against the recipe's backbone
    first (keys and shapes, on the meta device: nothing is allocated).

    Args:
        run_dir: The run directory to create (it must hold no checkpoint of ``step``).
        recipe: The recipe whose backbone the weights belong to.
        spec: The data the backbone was built for.
        weights: EMA decay (None: the raw weights) -> state dict.
        step: The step the weights were trained for (names the folder).
    """
    run = RunDir(run_dir)
    if ckpt.is_checkpoint(ckpt.checkpoint_dir(run.path, step)):
        raise GenError(f"{ckpt.checkpoint_dir(run.path, step)} exists; choose another run directory")
    with torch.device("meta"):
        net = build_backbone(recipe, spec)
    for ema, state in weights.items():
        try:
            net.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as e:
            name = ckpt.weights_name(ema)
            raise GenError(
                f"{name} does not fit the recipe's backbone: {' '.join(str(e).split())[:300]}"
            ) from None
    text = recipe_to_toml(recipe, header=f"resolved recipe of {run.path}")
    run.path.mkdir(parents=True, exist_ok=True)
    # Each renamed into place whole: a kill leaves no half file, and a second conversion writes the same.
    write_atomic(run.recipe_file, text)
    meta = CheckpointMeta(
        step=step,
        ema_decays=tuple(d for d in weights if d is not None and not isinstance(d, EmaLength)),
        ema_lengths=tuple(d.sigma_rel for d in weights if isinstance(d, EmaLength)),
        backbone=recipe.backbone.name,
        gen_version=__version__,
        data_spec=spec,
    )
    return ckpt.save_checkpoint(run.path, meta, weights=weights, state=None, recipe_text=text)


__all__ = ["Checkpoint", "RunDir", "export_checkpoint", "load_checkpoint", "resolve_checkpoint"]
