"""The learning-rate schedule of a run, saved in its checkpoints, and what a resume that changes the run's
length (``gen train RUN --resume train.steps=N``) does to it (``train.resume_schedule``).

The schedule (`LRSchedule`) is a function of the step alone, so a resume at an unchanged length is
bit-identical. A new length changes it, one of two ways:

- ``restretch`` (the default): warm-up and cosine are computed for the new total, as if the run had been
  planned that long from the start. The learning rate jumps at the resume (up, for a longer run: the
  cosine at step 3000 of 4000 is higher than at step 3000 of 3000).
- ``continue``: the learning rate goes on from where the saved schedule had it, and a half-cosine takes it
  from there down to ``min_lr`` at the new total. No jump; but a finished cosine run has reached
  ``min_lr`` (0 by default), and then so stays every later step.

Either way ``gen train`` says so in one line with the rate before and after.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs

from gen.errors import GenError
from gen.recipe import load_recipe
from gen.runs import checkpoint as ckpt
from gen.train_config import TrainConfig
from gen.training.optim import lr_at
from gen.training.plan import TrainingPlan


@attrs.frozen
class LRSchedule:
    """The learning rate of every optimizer step of a run.

    Attributes:
        peak: The rate after warm-up.
        warmup: Linear warm-up steps.
        total: The run's steps (the cosine reaches ``min_lr`` there).
        kind: ``constant`` or ``cosine`` after warm-up (``train.lr_schedule``).
        min_lr: The cosine's final rate.
        start: From this step on, the cosine starts again from ``start_lr`` (a ``continue`` resume).
        start_lr: The rate at ``start``; None: the plain schedule throughout.
    """

    peak: float
    warmup: int
    total: int
    kind: str
    min_lr: float = 0.0
    start: int = 0
    start_lr: float | None = None

    @classmethod
    def of(cls, plan: TrainingPlan, cfg: TrainConfig) -> LRSchedule:
        """The plain schedule of a run planned as ``plan``."""
        return cls(plan.peak_lr, plan.warmup, plan.total_steps, cfg.lr_schedule, cfg.min_lr)

    def at(self, step: int) -> float:
        """The rate of optimizer step ``step`` (0-based)."""
        if self.start_lr is None or step < self.start:
            return lr_at(
                step,
                peak=self.peak,
                warmup=self.warmup,
                total=self.total,
                schedule=self.kind,
                min_lr=self.min_lr,
            )
        progress = min(1.0, (step - self.start) / max(1, self.total - self.start))
        return self.min_lr + (self.start_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def to_state(self) -> dict[str, Any]:
        """Plain numbers for a checkpoint's training state."""
        return attrs.asdict(self)

    @classmethod
    def from_state(cls, state: Any) -> LRSchedule | None:
        """The schedule a checkpoint saved; None when it saved none (written before gen saved it)."""
        if not isinstance(state, dict):
            return None
        try:
            return cls(**state)
        except TypeError:
            return None


def saved_schedule(
    state: Any, checkpoint: Path, world_size: int, num_samples: int | None
) -> LRSchedule | None:
    """The schedule the run had when ``checkpoint`` was written: its training state's, else (a checkpoint
    written before the state held it) the one its own resolved recipe plans; None when neither tells."""
    saved = LRSchedule.from_state(state)
    if saved is not None:
        return saved
    recipe_file = Path(checkpoint) / ckpt.RECIPE_FILE
    if not recipe_file.is_file():
        return None
    try:
        old = load_recipe(recipe_file)
        return LRSchedule.of(TrainingPlan.make(old, world_size, num_samples), old.train)
    except GenError:  # a recipe this installation cannot read tells nothing
        return None


def resumed_schedule(
    planned: LRSchedule, saved: LRSchedule | None, step: int, mode: str
) -> tuple[LRSchedule, str | None]:
    """The schedule of a run resumed at ``step``, and the line that says what a new length did to the
    learning rate (None when the schedule is the saved one).

    Args:
        planned: The plain schedule of the recipe as resumed (its ``train.steps`` may be new).
        saved: The schedule the checkpoint was trained with (None: not known, the planned one is used).
        step: The step resumed at.
        mode: ``train.resume_schedule``: ``restretch`` or ``continue``.
    """
    plain = attrs.evolve(saved, start=0, start_lr=None) if saved is not None else None
    if saved is None or plain == planned:
        return saved or planned, None  # the same run: exactly its own schedule (a continued one too)
    before = saved.at(step)
    schedule = planned
    if mode == "continue" and planned.kind == "cosine" and step > planned.warmup:
        schedule = attrs.evolve(planned, start=step, start_lr=before)
    after = schedule.at(step)
    if before == after and planned.kind == "constant":
        return schedule, None  # a constant rate does not depend on the length
    if schedule.start_lr is not None:
        how = f'resume_schedule = "continue": from there down to {planned.min_lr:.3g} at step {planned.total}'
        if before <= planned.min_lr:
            how += "; the saved schedule had ended, so every new step trains at min_lr (restretch would not)"
    else:
        how = (
            f'resume_schedule = "restretch": warm-up and {planned.kind} recomputed for {planned.total} steps '
            '("continue" would keep the rate where it was)'
        )
    line = (
        f"learning rate of step {step + 1}: {before:.4g} on the saved schedule of {saved.total} steps, "
        f"{after:.4g} now; {how}"
    )
    return schedule, line


__all__ = ["LRSchedule", "resumed_schedule", "saved_schedule"]
