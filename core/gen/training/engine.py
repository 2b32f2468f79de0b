"""The training loop: ``gen train`` and `gen.train`.

What makes a run reproducible and exactly resumable: the data stream is a function of the batch index,
and every random draw of the objective (times, dropped labels, noise) is keyed by (seed, step, position
in the global batch), not by the state of a generator. So N steps + resume + N steps equals 2N steps
bit for bit, and one process with gradient accumulation or N processes with DDP compute the same update
as one process with the whole global batch.

`Trainer.run` is one flat loop of named sections; each section is a method below it, in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

from gen import distributed
from gen.errors import GenError
from gen.latent_space import build_autoencoder, training_data
from gen.objective import Objective
from gen.precision import autocast, matrix_width, resolve_precision
from gen.progress import progress_bar
from gen.recipe import Recipe, build_backbone, recipe_to_toml, to_table, with_data_fields
from gen.runs import checkpoint as ckpt
from gen.runs.lock import RunLock, lock_run
from gen.runs.run_dir import RunDir
from gen.seeds import GLOBAL_RNG_LOCK, key_seed, keyed_noise
from gen.training import sharding
from gen.training.checkpointing import TrainingState
from gen.training.ema import EMA
from gen.training.flops import flops_per_sample, peak_flops
from gen.training.init_from import InitFrom, describe_kept
from gen.training.loggers import RunInfo, RunLoggers
from gen.training.loss_terms import LossTerms
from gen.training.memory import checkpoint_activations
from gen.training.optim import make_optimizer
from gen.training.plan import TrainingPlan, check_data_paths, check_dataset, dataset_size
from gen.training.provenance import provenance
from gen.training.samples import TrainingSamples, format_scores
from gen.training.schedule import LRSchedule
from gen.training.signals import StopSignals
from gen.training.stats import StepStats, TrainingWindow, UpdateGuard
from gen.training.throughput import ThroughputWatch

# Keys of the run's random streams: key_seed(seed, STREAM, ...) (2 is the grids', in training/samples.py).
INIT_RNG, STEP_DRAWS, SAMPLE_NOISE = 1, 3, 4


class Trainer:
    """Trains the recipe's backbone on its dataset with its objective.

    Args:
        recipe: A validated recipe.
        run_dir: Where the resolved recipe, metrics, grids and checkpoints go.
        resume: Continue from the latest checkpoint in ``run_dir``.
        console: Where progress and messages go (rank 0 only).
        resume_step: Continue from the checkpoint of this step instead (implies ``resume``).
    """

    def __init__(
        self,
        recipe: Recipe,
        run_dir: str | Path,
        *,
        resume: bool = False,
        console: Console | None = None,
        resume_step: int | None = None,
    ):
        self.recipe = recipe
        self.cfg = recipe.train
        self.files = RunDir(run_dir)
        self.run_dir = self.files.path
        self.resume, self.resume_step = resume or resume_step is not None, resume_step
        self.console = console or Console(stderr=True)
        self.loggers = RunLoggers()
        self.signals = StopSignals()
        self.lock: RunLock | None = None

    # == the loop =====================================================================================
    def run(self) -> dict[str, Any]:
        """Train to the end (or to a stop signal). Returns a summary (last step, metrics, paths)."""
        finished = False
        try:
            summary = self._loop()
            finished = True
            return summary
        finally:
            for problem in self.loggers.close(ok=finished):
                self._log(f"warning: {problem}")
            if finished and self.dist.enabled:
                # The sharded or DDP-wrapped model holds the process group through reference cycles:
                # drop it first, so that the group dies in teardown and not at interpreter exit.
                self.train_model = self.model = self.optimizer = self.ema = self.state = self.samples = None
            distributed.teardown(synchronize=finished and self.dist.enabled)
            if self.lock is not None:
                self.lock.release()

    def _loop(self) -> dict[str, Any]:
        self.setup()
        self.start_run_files()
        stream = self.data_stream()
        window, last, last_saved, stop = TrainingWindow(self.device), {}, self.step, False
        watch = ThroughputWatch(cpu=self.device.type == "cpu")
        self.train_model.train()
        with self.signals, progress_bar(self.console, self.dist.is_main, "train", info=True) as bar:
            task = bar.add_task("train", total=self.plan.total_steps, completed=self.step, info="")
            while self.step < self.plan.total_steps:
                # -- one optimizer step; no host sync; a non-finite step is skipped on the device -----
                local, grad_norm = self.train_step(stream)
                window.add(local, grad_norm)
                bar.update(task, completed=self.step)
                # -- metrics: the host looks (one sync, one all-reduce) every log_every steps --------
                if self.step % self.cfg.log_every == 0 or self.step == self.plan.total_steps:
                    last, stop = self.log_metrics(window), window.stop
                    bar.update(task, info=f"loss {last['loss']:.4f} · {last['images_per_s']:.1f} img/s")
                    if (slow := watch.update(last)) and self.dist.is_main:
                        self.console.print(f"warning: {slow}", markup=False)  # once: the cores are shared?
                    window = TrainingWindow(self.device)
                with window.paused():
                    self.periodic_samples()
                    self.state.snapshot(self.run_dir, self.step, self.cfg)  # power EMAs, if it is time
                # -- stop on a signal (ranks agree at metrics lines), else checkpoint ---------------
                stop = stop or (not self.dist.enabled and self.signals.received is not None)
                if stop:
                    break
                if self.step % self.cfg.ckpt_every == 0:
                    with window.paused():
                        self.save()
                    last_saved = self.step
        return self.finish(last, last_saved, stop=stop)

    # == set-up =======================================================================================
    def setup(self) -> None:
        """Processes, data, model, EMA and optimizer, then the checkpoint to resume (called by `run`)."""
        cfg = self.cfg
        self.dist = distributed.setup()
        self.lock = lock_run(self.run_dir, self.dist)  # one trainer per run directory, before any work
        self.loggers = RunLoggers.build(cfg, self.dist, self._log)  # a missing package: here, not later
        self.init = None if self.resume else InitFrom.open(cfg, self.recipe.backbone.name)
        self.device = self.dist.device
        check_data_paths(self.recipe)  # a missing folder is the recipe's line, not the dataset's
        self.dataset = self.recipe.data.build()
        autoencoder, name = build_autoencoder(self.recipe.autoencoder), self.recipe.data.name
        # Pixels, latents checked against [autoencoder], or pixels the autoencoder encodes on the device.
        self.train_data = training_data(self.dataset, autoencoder, data_name=name, device=self.device)
        self.spec = self.train_data.spec
        check_dataset(self.recipe, self.dataset)
        self.plan = TrainingPlan.make(self.recipe, self.dist.world_size, dataset_size(self.dataset))
        self.lr_schedule, self._lr_note = LRSchedule.of(self.plan, cfg), ""
        # What the run really builds, so that the run directory's recipe.toml rebuilds the same model.
        self.recipe = with_data_fields(self.recipe, self.spec)
        self.objective = Objective(self.recipe.objective, self.spec.num_classes)
        self.objective.check_shape(tuple(self.spec.shape))

        with GLOBAL_RNG_LOCK:  # seeded and drawn from as one piece, whatever other threads do
            torch.manual_seed(cfg.seed)  # the same initial weights on every rank
            self.model = build_backbone(self.recipe, self.spec).to(self.device)
            self.kept = self.init.load_into(self.model) if self.init is not None else []  # before the EMAs
            checkpoint_activations(
                self.model, cfg.activation_checkpointing, backbone=self.recipe.backbone.name
            )
            self.fsdp = cfg.parallel == "fsdp" and self.dist.enabled
            if self.fsdp:  # before the EMA and the optimizer, which then hold shards too
                sharding.shard_model(self.model, self.device, self.dist.world_size)
            self.terms = LossTerms.build(self.recipe, self.model, self.spec, self.device, self.fsdp)
            self.ema = EMA(self.model, cfg.ema_decays, cfg.ema_lengths)
            self.guard = UpdateGuard(self.device)
            self.optimizer = make_optimizer(self.terms.trained(self.model), cfg, self.plan.peak_lr)
            self.state = TrainingState(self.model, self.ema, self.optimizer, self.dist, self.terms.module)
            self.samples = TrainingSamples(
                self.recipe, self.spec, self.dataset, self.files, self.dist, self.loggers
            )
            self.step = 0
            self.resume_or_refuse()
            torch.manual_seed(key_seed(cfg.seed, INIT_RNG, self.dist.rank, self.step))  # dropout: per rank

        self.flops_per_image = flops_per_sample(self.recipe, self.spec)
        self.precision = resolve_precision(cfg.precision, self.device, matrix_width(self.model))
        self.peak_flops = peak_flops(self.device, self.precision)
        self.train_model: nn.Module = self.model
        if cfg.compile:
            self.train_model = torch.compile(self.train_model)
        if self.dist.enabled and not self.fsdp:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.train_model, device_ids=ids)

    def resume_or_refuse(self) -> None:
        """``--resume``: the newest intact checkpoint (damaged ones skipped) or the one of ``--resume-step``;
        else the run must hold none."""
        if self.resume:
            self.step, self._resumed_from = self.state.resume(self.run_dir, self._log, self.resume_step)
            self.lr_schedule, self._lr_note = self.state.resumed_schedule(  # a new train.steps changes it
                self.lr_schedule, self.cfg.resume_schedule, dataset_size(self.dataset)
            )
        elif (existing := self.files.latest_checkpoint()) is not None:
            raise GenError(
                f"{self.run_dir} already holds checkpoints (latest {existing.name}); pass --resume to continue "
                "it, or choose another --run-dir"
            )

    def start_run_files(self) -> None:
        """The resolved recipe, a provenance line, the loggers opened and the first log lines (rank 0)."""
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            header = f"resolved recipe of this run (from {self.recipe.source})"
            self.files.recipe_file.write_text(recipe_to_toml(self.recipe, header=header))
            resumed = self.step if self.resume else None
            init = self.init.describe() if self.init is not None else None
            self.files.append_json(
                self.files.provenance_file,
                provenance(self.recipe, self.dist, self.plan, resumed_from=resumed, init_from=init),
            )
        info = dict(step=self.step, total_steps=self.plan.total_steps, resumed=self.resume)
        self.loggers.open(RunInfo(files=self.files, config=to_table(self.recipe), **info), self.dist)
        if self.resume:
            self._log(f"resumed from {self._resumed_from} (step {self.step}){self._lr_note}")
        if self.init is not None:
            kept = (
                f"; kept as built (this size, this process): {describe_kept(self.kept)}" if self.kept else ""
            )
            self._log(f"initialised from {self.init.checkpoint.path} (EMA {self.init.ema or 'none'}){kept}")
        where = dict(fsdp=self.fsdp, device=self.device, run_dir=self.run_dir, precision=self.cfg.precision)
        self._log(self.plan.describe(self.recipe.backbone.name, self.model, **where))

    # == one step =====================================================================================
    def data_stream(self):  # noqa: ANN201
        """This rank's batch stream, positioned at the current step."""
        batch = self.plan.batch
        return iter(
            self.train_data.train_batches(
                batch.micro_batch,
                seed=self.cfg.seed,
                rank=self.dist.rank,
                world_size=batch.world_size,
                start_batch=self.step * batch.accum,
            )
        )

    def set_learning_rate(self) -> None:
        self.current_lr = self.lr_schedule.at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = self.current_lr

    def train_step(self, stream) -> tuple[StepStats, torch.Tensor]:  # noqa: ANN001
        """One optimizer step over the global batch without a host synchronisation: learning rate,
        forward and backward, then weights and EMAs updated, or left as they were (on the device) when
        the loss or gradient is not finite. Returns this rank's stats and the gradient norm."""
        self.set_learning_rate()
        local, grad_norm = self.forward_backward(stream)
        keep = self.guard.keep(local.loss_sum, grad_norm, self.step + 1, self.dist)
        self.optimizer.found_inf = 1.0 - keep  # the fused kernel leaves everything as it was
        self.optimizer.step()
        self.ema.update(self.model, keep)
        self.step += 1
        return local, grad_norm

    def forward_backward(self, stream) -> tuple[StepStats, torch.Tensor]:  # noqa: ANN001
        """Forward and backward over this rank's part of one global batch (no optimizer update); returns
        this rank's `StepStats` (with the stop flag) and the gradient norm (the loss terms' parts too)."""
        plan, obj = self.plan.batch, self.objective
        g_step = torch.Generator().manual_seed(key_seed(self.cfg.seed, STEP_DRAWS, self.step))
        draws_all = obj.draw(plan.global_batch, generator=g_step)  # each (G, ...), keyed by position
        drop_all = obj.arrange_drops(torch.rand(plan.global_batch, generator=g_step) < obj.config.label_drop)
        self.optimizer.zero_grad(set_to_none=True)
        stats = StepStats()
        b, w = plan.micro_batch, plan.world_size
        for j in range(plan.accum):
            x, y = next(stream)
            x = x.to(self.device, non_blocking=True)  # (b, *shape)
            y = y.to(self.device, non_blocking=True)  # (b,)
            first = j * b * w + self.dist.rank * b  # this micro-batch's positions in the global batch
            pos = torch.arange(first, first + b)  # (b,)
            draws = {k: d[pos].to(self.device) for k, d in draws_all.items()}
            if obj.num_classes > 0:
                y = torch.where(drop_all[pos].to(self.device), torch.full_like(y, obj.null_label), y)
            eps = keyed_noise(self.cfg.seed, SAMPLE_NOISE, self.step * plan.global_batch + first, x)
            eps = eps * obj.process.noise_scale  # (b, *shape)
            last = j == plan.accum - 1 or not self.dist.enabled
            with sharding.gradient_sync(self.model, self.train_model, fsdp=self.fsdp, last=last):
                with autocast(self.precision, self.device):
                    loss, s = obj.loss_at(self.train_model, x, y, draws, eps, terms=self.terms.active)
                (loss / plan.accum).backward()
            stats.add(s)
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip is not None else float("inf")
        grad_norm = self.terms.clip_gradients(self.state.trained, max_norm, self.dist)
        return stats, sharding.whole(grad_norm).float()  # under FSDP the norm is itself a shard

    # == logging and samples ==========================================================================
    def log_metrics(self, window: TrainingWindow) -> dict[str, Any]:
        """One metrics line over the window's steps, to the loggers (``jsonl``: ``metrics.jsonl``): the host
        synchronises here, and stops the run if a step was skipped for a non-finite loss."""
        stats = window.stats
        stats.stop = self.signals.received is not None
        stats = stats.reduce(self.dist)
        window.stop = stats.stop
        self.guard.raise_if_skipped(self.step, self.files.latest_checkpoint())
        line = window.metrics_line(
            stats,
            step=self.step,
            lr=self.current_lr,
            global_batch=self.plan.batch.global_batch,
            flops=(self.flops_per_image, self.peak_flops),
        )
        self.loggers.metrics(self.step, line)  # rank 0 holds the loggers; jsonl: metrics.jsonl
        return line

    def periodic_samples(self) -> None:
        cfg, step = self.cfg, self.step
        if step >= self.plan.total_steps:
            return  # the end draws and scores once, in finish()
        if cfg.sample_every and step % cfg.sample_every == 0:
            self.samples.grid(f"step_{step:08d}", step, self.model, self.ema)
        if cfg.eval_every and step % cfg.eval_every == 0:
            scores = self.samples.evaluate(step, self.model, self.ema)
            if scores:
                self._log(f"eval at step {step}: " + format_scores(scores))

    # == checkpoints ==================================================================================
    def save(self) -> Path | None:
        """A checkpoint of the current step (a collective: every rank calls it; rank 0 writes)."""
        self.guard.raise_if_skipped(self.step, self.files.latest_checkpoint())  # never save past a bad step
        path = self.state.save(
            self.run_dir,
            step=self.step,
            data_batches=self.step * self.plan.batch.accum,
            backbone=self.recipe.backbone.name,
            spec=self.spec,
            recipe_text=recipe_to_toml(self.recipe, header="resolved recipe of this checkpoint's run"),
            schedule=self.lr_schedule.to_state(),
        )
        if path is not None:
            ckpt.prune_checkpoints(self.run_dir, self.cfg.keep_last, self.cfg.milestone_every)
        distributed.barrier(self.dist)
        return path

    # == the end ======================================================================================
    def finish(self, last: dict[str, Any], last_saved: int, *, stop: bool) -> dict[str, Any]:
        """The final checkpoint; then, unless stopped by a signal, the final grid and score."""
        last = last or self.files.last_metrics()  # a resume of a finished run trains no step
        summary: dict[str, Any] = {"step": self.step, "run_dir": str(self.run_dir), "metrics": last}
        if last_saved != self.step or self.files.latest_checkpoint() is None:
            path = self.save()
            summary["checkpoint"] = str(path) if path else None
        if stop:
            self._log(
                f"stopped by {self.signals.received or 'a signal on another rank'} at step {self.step}; checkpoint "
                f"saved. Continue with: gen train {self.run_dir} --resume"
            )
            summary["stopped"] = True
            return summary
        grid = self.samples.grid("final", self.step, self.model, self.ema)
        if grid is not None:
            summary["grid"] = str(grid)
            self._log(f"samples: {grid}")
        scores = self.samples.evaluate(self.step, self.model, self.ema)
        if scores:
            summary["eval"] = scores
            self._log("eval: " + format_scores(scores))
        self._log(
            f"done: step {self.step}, loss {last.get('loss', float('nan')):.4f}; run directory {self.run_dir}"
        )
        return summary

    def _log(self, text: str) -> None:
        if self.dist.is_main:
            self.console.print(text, markup=False, highlight=False)


def train(
    recipe: Recipe,
    run_dir: str | Path,
    *,
    resume: bool = False,
    console: Console | None = None,
    resume_step: int | None = None,
) -> dict[str, Any]:
    """Train ``recipe`` into ``run_dir`` in this process (or, under ``torchrun``, in every process).

    Args:
        recipe: A validated recipe ([`gen.load_recipe`][]).
        run_dir: The run directory (created; it must hold no checkpoint unless ``resume``).
        resume: Continue from the run directory's latest checkpoint.
        console: Where progress and messages go (default: stderr).
        resume_step: Continue from the checkpoint of this step (implies ``resume``); the run must hold
            no later checkpoint or EMA snapshot.

    Returns:
        A summary: ``step``, ``run_dir``, the last ``metrics`` line, ``checkpoint``, ``grid``, ``eval``.
    """
    return Trainer(recipe, run_dir, resume=resume, console=console, resume_step=resume_step).run()


__all__ = ["Trainer", "train"]
