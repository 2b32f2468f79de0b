"""The training state a checkpoint saves and a resume restores: weights, EMAs, optimizer, step, RNG.

One object owns both directions, so that what is written is exactly what is read. Under FSDP saving
gathers whole tensors shard by shard (a collective: every rank calls it) and rank 0 writes; loading
hands each rank its shard. The file format itself is `gen.runs.checkpoint`; the snapshots of the
power EMAs (written every ``train.ema_snapshot_every`` steps) are `gen.runs.ema_snapshots`.

A resume checks a checkpoint's files before it loads any (every weights file's header, and the state,
which it reads anyway): when the latest is damaged — a file missing, truncated, of another format, or a
state that holds Python objects, refused — it resumes from the newest intact one, with a warning naming
both. A write that fails on rank 0 (a full disk) is raised on every rank.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gen import distributed
from gen.distributed import DistInfo
from gen.errors import DamagedFileError, GenError
from gen.power_ema import EmaKey, EmaLength
from gen.protocols import DataSpec
from gen.runs import checkpoint as ckpt
from gen.runs import ema_snapshots
from gen.runs.checkpoint import CheckpointMeta
from gen.train_config import TrainConfig
from gen.training import sharding
from gen.training.ema import EMA
from gen.training.optim import TrainedParameters
from gen.training.schedule import LRSchedule, resumed_schedule, saved_schedule
from gen.version import __version__

#: The stem of the loss terms' trainable parts in a checkpoint (``loss_terms.safetensors``).
TERMS = TrainedParameters.PREFIX


class TrainingState:
    """The model, its EMAs and the optimizer of one run, as checkpoints hold them.

    Args:
        model: The unwrapped (possibly sharded) backbone.
        ema: Its EMAs.
        optimizer: The optimizer over ``model``'s parameters (and the terms').
        dist: The processes of the run.
        terms: The loss terms' trainable parts (`gen.training.loss_terms`), or None: saved as
            ``loss_terms.safetensors`` beside the weights, never in them nor in an EMA.
    """

    def __init__(
        self,
        model: nn.Module,
        ema: EMA,
        optimizer: torch.optim.Optimizer,
        dist: DistInfo,
        terms: nn.Module | None = None,
    ):
        self.model = model
        self.terms = terms
        #: What the optimizer trains, by name (its state in a checkpoint is keyed by these names).
        self.trained = model if terms is None else TrainedParameters(model, terms)
        self.ema = ema
        self.optimizer = optimizer
        self.dist = dist
        #: The learning-rate schedule the loaded checkpoint saved (`gen.training.schedule`), if any.
        self.loaded_schedule: Any = None
        self.loaded_path, self.loaded_step = Path(), 0

    def save(
        self,
        run_dir: Path,
        *,
        step: int,
        data_batches: int,
        backbone: str,
        spec: DataSpec,
        recipe_text: str,
        schedule: dict[str, Any] | None = None,
    ) -> Path | None:
        """Write the checkpoint of ``step`` (every rank calls it); rank 0 returns its path, others None.
        ``schedule``: the learning-rate schedule, as plain numbers, for a resume to continue."""
        rng = distributed.all_gather_objects(torch.get_rng_state(), self.dist)
        main = self.dist.is_main
        # Whole tensors, gathered shard by shard under FSDP (every rank takes part); rank 0 keeps them.
        weights: dict[EmaKey, dict[str, torch.Tensor]] = {
            None: sharding.gather_state(self.model.state_dict(), main)
        }
        for i, key in enumerate(self.ema.keys):
            weights[key] = self.ema.state_dict(i, self.model, main)
        if self.terms is not None:
            weights[TERMS] = sharding.gather_state(self.terms.state_dict(), main)  # type: ignore[index]
        optimizer = sharding.optimizer_state(self.trained, self.optimizer, main)
        path, error = None, None
        if main:
            state = {"optimizer": optimizer, "step": step, "data_batches": data_batches, "rng": list(rng)}
            if schedule is not None:
                state["lr_schedule"] = schedule
            meta = CheckpointMeta(
                step=step,
                world_size=self.dist.world_size,
                ema_decays=self.ema.decays,
                ema_lengths=self.ema.lengths,
                backbone=backbone,
                gen_version=__version__,
                data_spec=spec,
            )
            try:
                path = ckpt.save_checkpoint(
                    run_dir, meta, weights=weights, state=state, recipe_text=recipe_text
                )
            except GenError as e:
                error = str(e)
        self._raise_everywhere(error)
        return path

    def _raise_everywhere(self, error: str | None) -> None:
        """Raise rank 0's ``error`` (None: none) on every rank."""
        error = distributed.all_gather_objects(error, self.dist)[0]
        if error is not None:
            raise GenError(error)

    def snapshot(self, run_dir: Path, step: int, cfg: TrainConfig) -> Path | None:
        """At a multiple of ``train.ema_snapshot_every``, write the power EMAs as the snapshot of ``step``
        (`gen.runs.ema_snapshots`; a collective: every rank calls it); rank 0 returns its path."""
        every = cfg.ema_snapshot_every
        if not every or step % every or not self.ema.lengths:
            return None
        main = self.dist.is_main
        weights = {
            key.sigma_rel: self.ema.state_dict(i, self.model, main)
            for i, key in enumerate(self.ema.keys)
            if isinstance(key, EmaLength)
        }
        path, error = None, None
        if main:
            try:
                path = ema_snapshots.write_snapshot(run_dir, step, weights, dtype=cfg.ema_snapshot_dtype)
            except GenError as e:
                error = str(e)
        self._raise_everywhere(error)
        return path

    def resume(self, run_dir: Path, warn: Callable[[str], None], step: int | None = None) -> tuple[int, Path]:
        """Restore the newest intact checkpoint of ``run_dir``, or the one of ``step``; returns (step, its
        path).

        A damaged latest checkpoint is skipped with a ``warn`` line naming it, what is wrong and the one
        used; a chosen ``step`` must exist, be intact and be the run's last result (`chosen`).
        """
        found = ckpt.list_checkpoints(run_dir)
        if not found:
            raise GenError(
                f"--resume: no checkpoint in {Path(run_dir) / 'checkpoints'}; start without --resume"
            )
        if step is not None:
            path = chosen(run_dir, found, step)
            return self._restore(run_dir, path, self.check(path), warn), path
        damaged: list[str] = []
        for path in reversed(found):
            try:
                state = self.check(path)
            except DamagedFileError as e:
                damaged.append(f"{path.name} is damaged: {e.path} {e.problem}")
                continue
            if damaged:
                warn(f"warning: {'; '.join(damaged)}; resuming from the newest intact checkpoint, {path}")
            return self._restore(run_dir, path, state, warn), path
        raise GenError(
            f"--resume: no intact checkpoint in {Path(run_dir) / 'checkpoints'}: {'; '.join(damaged)}"
        )

    def _restore(self, run_dir: Path, path: Path, state: dict[str, Any], warn: Callable[[str], None]) -> int:
        step = self.load(path, state)
        if self.dist.is_main and (gone := ema_snapshots.discard_after(run_dir, step)):
            # They belong to the steps this resume trains again (after a kill), and it writes them again.
            warn(f"removed {len(gone)} EMA snapshot(s) after step {step}, from {gone[0]} on")
        return step

    def check(self, path: Path) -> dict[str, Any]:
        """That the checkpoint ``path`` can restore this state: its meta, the EMAs of the recipe, every
        weights file's header; returns its training state. Damage is a `gen.errors.DamagedFileError`."""
        meta = ckpt.read_meta(path)
        for key, ours, theirs in (
            ("ema_decays", self.ema.decays, meta.ema_decays),
            ("ema_lengths", self.ema.lengths, meta.ema_lengths),
        ):
            missing = [d for d in ours if d not in theirs]
            if missing:
                raise GenError(
                    f"--resume: the recipe's train.{key} {list(ours)} differ from the checkpoint's {list(theirs)} "
                    f"({path} has no EMA {', '.join(map(repr, missing))}); set train.{key} = {list(theirs)} to "
                    "resume, or start a new run in another --run-dir"
                )
        ckpt.check_weights(path, (None, *self.ema.keys, *([TERMS] if self.terms is not None else [])))
        state = ckpt.load_state(path)
        lacks = [k for k in ("optimizer", "step", "rng") if not isinstance(state, dict) or k not in state]
        if lacks:
            raise DamagedFileError(path / ckpt.STATE_FILE, f"holds no training state (no {', '.join(lacks)})")
        return state

    def load(self, path: Path, state: dict[str, Any] | None = None) -> int:
        """Restore weights, EMAs and optimizer from the checkpoint ``path`` (each rank its shard), and
        this rank's RNG when the run had as many processes; returns the step. ``state``: its training
        state when already read (`check`)."""
        meta = ckpt.read_meta(path)
        model_file = path / ckpt.weights_name(None)
        sharding.load_model_state(self.model, ckpt.load_weights(path), str(model_file))
        for i, key in enumerate(self.ema.keys):
            self.ema.load(i, ckpt.load_weights(path, key))
        if self.terms is not None:
            terms_file = str(path / ckpt.weights_name(TERMS))
            sharding.load_model_state(self.terms, ckpt.load_weights(path, TERMS), terms_file)  # type: ignore[arg-type]
        state = state if state is not None else ckpt.load_state(path)
        state_file = str(path / ckpt.STATE_FILE)
        sharding.load_optimizer_state(self.trained, self.optimizer, state["optimizer"], state_file)
        if meta.world_size == self.dist.world_size:
            torch.set_rng_state(state["rng"][self.dist.rank])
        step = int(state["step"])
        self.ema.steps = step  # the power EMAs' decays continue from this step
        self.loaded_schedule, self.loaded_path, self.loaded_step = state.get("lr_schedule"), path, step
        return step

    def resumed_schedule(
        self, planned: LRSchedule, mode: str, num_samples: int | None
    ) -> tuple[LRSchedule, str]:
        """After `resume`: the learning-rate schedule from the resumed step on, given the recipe's
        ``planned`` one and ``train.resume_schedule`` (`gen.training.schedule.resumed_schedule`), and
        ``"; "`` and the line that says what a new length did to the rate (``""`` when nothing)."""
        saved = saved_schedule(self.loaded_schedule, self.loaded_path, self.dist.world_size, num_samples)
        schedule, line = resumed_schedule(planned, saved, self.loaded_step, mode)
        return schedule, f"; {line}" if line else ""


def checkpoint_step(path: Path) -> int:
    """The step of a checkpoint folder, from its name (``step_00000300`` -> 300)."""
    return int(path.name[len(ckpt.PREFIX) :])


def chosen(run_dir: Path, found: list[Path], step: int) -> Path:
    """``--resume-step``: the checkpoint of ``step`` among ``found``, refused while the run holds results
    after it (later checkpoints or EMA snapshots), which training from ``step`` would overwrite or
    contradict: gen never deletes results, so the user moves them away first."""
    steps = [checkpoint_step(p) for p in found]
    root = Path(run_dir) / "checkpoints"
    if step not in steps:
        raise GenError(
            f"--resume-step {step}: {root} has no checkpoint of step {step} (it has: {', '.join(map(str, steps))}); "
            "choose one of these (train.milestone_every keeps checkpoints that pruning would remove)"
        )
    later = [p.name for p in found if checkpoint_step(p) > step]
    snapshots = [s.step for s in ema_snapshots.list_snapshots(run_dir) if s.step > step]
    if later or snapshots:
        held = [f"checkpoint(s) {', '.join(later)} in {root}"] if later else []
        if snapshots:
            where = ema_snapshots.snapshots_dir(run_dir)
            held.append(f"EMA snapshot(s) of steps {snapshots[0]} to {snapshots[-1]} in {where}")
        raise GenError(
            f"--resume-step {step}: {run_dir} holds results after step {step}: {' and '.join(held)}; gen never "
            f"deletes results: move them out of the run directory (e.g. into {Path(run_dir)}.after_step_{step}/), "
            "then resume again"
        )
    return found[steps.index(step)]


__all__ = ["TrainingState", "checkpoint_step", "chosen"]
