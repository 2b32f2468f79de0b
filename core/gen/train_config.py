"""The ``[train]`` section of a recipe."""

from __future__ import annotations

from typing import Literal

import attrs
from attrs import validators as v

from gen.components import ComponentSpec
from gen.config import component_list_field, field
from gen.power_ema import check_sigma_rel, parse_ema


@attrs.frozen(kw_only=True)
class TrainConfig:
    """How to train: length, batch, optimizer, EMA, logging and checkpoints."""

    steps: int | None = field(
        None, doc="Optimizer steps to train; exclusive with epochs.", validator=v.optional(v.ge(1))
    )
    epochs: float | None = field(
        None, doc="Epochs to train (needs a dataset with a known size).", validator=v.optional(v.gt(0))
    )
    global_batch: int = field(256, doc="Images per optimizer step across all processes.", validator=v.ge(1))
    micro_batch: int | None = field(
        None,
        doc="Images per forward pass per process; None derives it (no accumulation when it fits).",
        validator=v.optional(v.ge(1)),
    )
    blr: float = field(
        5e-5, doc="Base learning rate: lr = blr * global_batch / 256 (unless lr is set).", validator=v.gt(0)
    )
    lr: float | None = field(
        None, doc="Absolute learning rate; overrides blr.", validator=v.optional(v.gt(0))
    )
    warmup_steps: int = field(0, doc="Linear warm-up steps (from 0 to lr).", validator=v.ge(0))
    warmup_epochs: float | None = field(
        None, doc="Warm-up in epochs; overrides warmup_steps.", validator=v.optional(v.ge(0))
    )
    lr_schedule: Literal["constant", "cosine"] = field("constant", doc="LR after warm-up.")
    min_lr: float = field(0.0, doc="Final LR of the cosine schedule.", validator=v.ge(0))
    resume_schedule: Literal["restretch", "continue"] = field(
        "restretch",
        doc="When a resume changes the run's length (--resume train.steps=N): restretch recomputes warm-up "
        "and cosine for the new total (the LR jumps, as if the run had been planned that long); continue "
        "keeps the LR where the saved schedule had it and decays it from there to min_lr at the new total.",
    )
    betas: tuple[float, float] = field((0.9, 0.95), doc="AdamW betas.")
    weight_decay: float = field(
        0.0, doc="AdamW weight decay (never applied to biases and norms).", validator=v.ge(0)
    )
    grad_clip: float | None = field(
        None, doc="Clip the gradient norm to this value; None = no clipping.", validator=v.optional(v.gt(0))
    )
    ema_decays: tuple[float, ...] = field((0.9999, 0.9996), doc="EMA decays kept alongside the weights.")
    ema_lengths: tuple[float, ...] = field(
        (),
        doc="Power-function EMAs (EDM2) kept alongside the weights, by length sigma_rel in (0, 0.2887], "
        "e.g. [0.05, 0.10]; with ema_snapshot_every, any other length can be reconstructed after training "
        "(gen ema reconstruct, gen eval --ema-length).",
    )
    ema_snapshot_every: int | None = field(
        None,
        doc="Steps between snapshots of the ema_lengths profiles in RUN/ema_snapshots (never pruned); "
        "None = none. Each snapshot holds one model per length.",
        validator=v.optional(v.ge(1)),
    )
    ema_snapshot_dtype: Literal["fp32", "fp16"] = field(
        "fp32",
        doc="Precision of the EMA snapshots: fp16 halves their disk use (see docs/ema_and_guidance.md).",
    )
    seed: int = field(0, doc="Seed of initialisation, data order, noise and time sampling.")
    init_from: str | None = field(
        None,
        doc="Start from the weights of this run directory (its latest checkpoint) or checkpoint folder "
        "(RUN/checkpoints/step_N), with a fresh optimizer at step 0: fine-tuning, or training at another "
        "resolution (fixed sin-cos position tables are rebuilt for the new size; any other tensor that "
        "does not fit is an error). --resume ignores it: the run's own checkpoint is newer.",
    )
    init_ema: str | float | None = field(
        None,
        doc="Which weights of init_from start the model (and every EMA of the new run): None = the raw "
        'weights; an EMA decay (0.9999) or a power EMA ("phema_0.05", reconstructed from its snapshots '
        "when not stored).",
    )
    precision: Literal["auto", "fp32", "bf16"] = field(
        "auto",
        doc="auto = bf16 autocast on CUDA; on a CPU with bf16 matrix units (AMX, AVX-512 BF16) for a model "
        "of width >= 256, else fp32 (gen.precision).",
    )
    compile: bool = field(False, doc="torch.compile the backbone.")
    activation_checkpointing: Literal["none", "blocks", "attention"] = field(
        "none",
        doc="Recompute activations in the backward pass to save memory: each transformer block, or only "
        "its attention (none: keep them all).",
    )
    parallel: Literal["ddp", "fsdp"] = field(
        "ddp",
        doc="With several processes: ddp keeps a whole model on each; fsdp shards parameters, gradients, "
        "optimizer state and EMA over them (for models too big for one device). Checkpoints are whole either way.",
    )
    loggers: tuple[ComponentSpec, ...] = component_list_field(
        "logger",
        doc="Where metrics lines, sample grids and scores also go (rank 0), besides jsonl, which is always "
        "on (RUN/metrics.jsonl, eval.jsonl, eval.json): logger names or tables with their options, e.g. "
        '["tensorboard", {name = "wandb", project = "jit"}].',
    )
    tensorboard: bool = field(
        False,
        doc="Shorthand for adding tensorboard to loggers: event files in RUN/tensorboard (needs pip "
        "install 'gen[tensorboard]').",
    )
    log_every: int = field(50, doc="Steps between metric lines in metrics.jsonl.", validator=v.ge(1))
    sample_every: int | None = field(
        None,
        doc="Steps between sample grids; 0 (or unset: TOML has no null) = only at the end.",
        validator=v.optional(v.ge(0)),
    )
    ckpt_every: int = field(1000, doc="Steps between checkpoints.", validator=v.ge(1))
    keep_last: int = field(2, doc="How many recent checkpoints to keep.", validator=v.ge(1))
    milestone_every: int | None = field(
        None,
        doc="Also keep every checkpoint whose step is a multiple of this.",
        validator=v.optional(v.ge(1)),
    )
    grid_samples: int = field(
        64, doc="Images in each sample grid (fixed noise and labels).", validator=v.ge(0)
    )
    grid_ema: float | None = field(
        None,
        doc="EMA decay whose weights draw the grids; None = the first of ema_decays, else of ema_lengths, "
        "else the raw weights.",
    )
    eval_samples: int = field(
        0,
        doc="At the end, score this many samples with the dataset's own metric (0 = skip).",
        validator=v.ge(0),
    )
    eval_every: int | None = field(
        None,
        doc="Also score eval_samples samples every this many steps (a line of RUN/eval.jsonl each); "
        "0 (or unset) = only at the end. Nothing is scored while eval_samples = 0.",
        validator=v.optional(v.ge(0)),
    )

    def __attrs_post_init__(self):
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("set exactly one of steps and epochs (e.g. steps = 1000)")
        if self.grid_ema is not None and self.grid_ema not in self.ema_decays:
            raise ValueError(f"grid_ema = {self.grid_ema} is not one of ema_decays = {list(self.ema_decays)}")
        if self.micro_batch is not None and self.micro_batch > self.global_batch:
            raise ValueError(f"micro_batch ({self.micro_batch}) exceeds global_batch ({self.global_batch})")
        if self.micro_batch is not None and self.global_batch % self.micro_batch:
            # Whatever the number of processes, the per-process batch is a divisor of global_batch.
            raise ValueError(
                f"micro_batch ({self.micro_batch}) does not divide global_batch ({self.global_batch}); "
                "choose a divisor of it"
            )
        for d in self.ema_decays:
            if not 0.0 <= d < 1.0:
                raise ValueError(f"ema_decays must be in [0, 1), got {d}")
        for length in self.ema_lengths:
            check_sigma_rel(length)
        if len(set(self.ema_lengths)) != len(self.ema_lengths):
            raise ValueError(f"ema_lengths has a length twice: {list(self.ema_lengths)}")
        if self.init_ema is not None:
            if self.init_from is None:
                raise ValueError("init_ema chooses the weights of init_from, and init_from is not set")
            try:
                parse_ema(str(self.init_ema))
            except ValueError:
                raise ValueError(
                    f"init_ema = {self.init_ema!r}: expected an EMA decay (0.9999), a power EMA "
                    '("phema_0.05") or "none" (the raw weights)'
                ) from None
        if self.ema_snapshot_every is not None and not self.ema_lengths:
            raise ValueError(
                "ema_snapshot_every snapshots the power-function EMAs, and ema_lengths is empty; "
                "set e.g. ema_lengths = [0.05, 0.10]"
            )
