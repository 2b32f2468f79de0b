"""The training loop: ``gen train``.

What makes a run reproducible and exactly resumable: the data stream is a function of the batch index,
and every random draw of the objective (times, dropped labels, noise) is keyed by (seed, step, position
in the global batch), not by the state of a generator. So N steps + resume + N steps equals 2N steps
bit for bit, and one process with gradient accumulation or N processes with DDP compute the same update
as one process with the whole global batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import nn

import gen
from gen.data import DataSpec
from gen.errors import GenError
from gen.images import make_grid, save_grid, to_uint8
from gen.objective import Objective
from gen.recipe import Recipe, recipe_to_toml, with_data_fields
from gen.sampling import sample_from_config, sample_noise
from gen.training import checkpoint as ckpt
from gen.training import distributed, sharding
from gen.training.ema import EMA
from gen.training.optim import lr_at, make_optimizer, peak_lr
from gen.training.tensorboard import TensorBoardLog, require_tensorboard

T_BINS = 4  # loss is also logged per quarter of t in [0, 1]


def key_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (numpy's SeedSequence hash), for keyed random draws."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint64)[0] >> 1)


def build_backbone(recipe: Recipe, spec: DataSpec) -> nn.Module:
    """Build the recipe's backbone with its data-derived fields filled from ``spec`` (see
    :func:`gen.recipe.with_data_fields`)."""
    section = with_data_fields(recipe, spec).backbone
    component = gen.get_registry("backbone").get(section.name)
    try:
        return component.factory(section.config)
    except ValueError as e:
        raise GenError(f"[backbone] {section.name}: {e}") from None


@attrs.frozen
class BatchPlan:
    """How the global batch is split: ``global_batch = world_size * accum * micro_batch``."""

    global_batch: int
    world_size: int
    micro_batch: int
    accum: int

    @classmethod
    def make(cls, global_batch: int, world_size: int, micro_batch: int | None) -> BatchPlan:
        if global_batch % world_size:
            raise GenError(
                f"train.global_batch = {global_batch} does not split over {world_size} processes; "
                f"use a multiple of {world_size}"
            )
        per_rank = global_batch // world_size
        micro = micro_batch or per_rank
        if per_rank % micro:
            raise GenError(
                f"train.micro_batch = {micro} does not divide the per-process batch {per_rank} "
                f"(global_batch {global_batch} / {world_size} processes); choose a divisor of {per_rank}"
            )
        return cls(global_batch, world_size, micro, per_rank // micro)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class Trainer:
    """Trains the recipe's backbone on its dataset with its objective.

    Args:
        recipe: A validated recipe.
        run_dir: Where the resolved recipe, metrics, grids and checkpoints go.
        resume: Continue from the latest checkpoint in ``run_dir``.
        console: Where progress and messages go (rank 0 only).
    """

    def __init__(
        self, recipe: Recipe, run_dir: str | Path, *, resume: bool = False, console: Console | None = None
    ):
        self.recipe = recipe
        self.cfg = recipe.train
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.console = console or Console(stderr=True)
        self._stop_signal: str | None = None

    # -- set-up -------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Open the data, build the model, optimizer and EMA (and resume); called by :meth:`run`."""
        cfg = self.cfg
        self.dist = distributed.setup()
        self.device = self.dist.device
        self.plan = BatchPlan.make(cfg.global_batch, self.dist.world_size, cfg.micro_batch)

        self.dataset = self.recipe.data.build()
        self.spec: DataSpec = self.dataset.spec
        if cfg.eval_samples and not hasattr(self.dataset, "evaluate_samples"):
            raise GenError(
                f"train.eval_samples = {cfg.eval_samples}: [data] {self.recipe.data.name} has no metric of its "
                "own (evaluate_samples); set eval_samples = 0 and score FID with gen eval RUN --ref STATS"
            )
        # What the run really builds, so that the run directory's recipe.toml rebuilds the same model.
        self.recipe = with_data_fields(self.recipe, self.spec)
        self.objective = Objective(self.recipe.objective, self.spec.num_classes)
        self.objective.check_shape(tuple(self.spec.shape))

        num_samples = getattr(self.dataset, "num_samples", None)
        if cfg.epochs is not None:
            if not num_samples:
                raise GenError(
                    f"train.epochs needs a dataset of known size, and [data] {self.recipe.data.name} does not "
                    "say its size; set train.steps instead"
                )
            self.total_steps = math.ceil(cfg.epochs * num_samples / cfg.global_batch)
        else:
            self.total_steps = int(cfg.steps)
        steps_per_epoch = num_samples / cfg.global_batch if num_samples else None
        if cfg.warmup_epochs is not None:
            if steps_per_epoch is None:
                raise GenError("train.warmup_epochs needs a dataset of known size; set train.warmup_steps")
            self.warmup = round(cfg.warmup_epochs * steps_per_epoch)
        else:
            self.warmup = cfg.warmup_steps
        self.peak_lr = peak_lr(cfg)

        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        self.model = build_backbone(self.recipe, self.spec).to(self.device)
        self.fsdp = cfg.parallel == "fsdp" and self.dist.enabled
        if self.fsdp:  # before the EMA and the optimizer, which then hold shards too
            sharding.shard_model(self.model, self.device, self.dist.world_size)
        self.ema = EMA(self.model, cfg.ema_decays)
        self.optimizer = make_optimizer(self.model, cfg, self.peak_lr)
        self.step = 0

        existing = ckpt.latest_checkpoint(self.run_dir)
        if self.resume:
            if existing is None:
                raise GenError(
                    f"--resume: no checkpoint in {self.run_dir / 'checkpoints'}; start without --resume"
                )
            self._load(existing)
        elif existing is not None:
            raise GenError(
                f"{self.run_dir} already holds checkpoints (latest {existing.name}); pass --resume to continue "
                "it, or choose another --run-dir"
            )
        torch.manual_seed(key_seed(cfg.seed, 1, self.dist.rank, self.step))  # dropout differs across ranks

        self.train_model: nn.Module = self.model
        if cfg.compile:
            self.train_model = torch.compile(self.train_model)
        if self.dist.enabled and not self.fsdp:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.train_model, device_ids=ids)
        self.autocast = self._autocast()
        if cfg.tensorboard:
            require_tensorboard()
        self.tensorboard: TensorBoardLog | None = None

        # Fixed noise and labels: grids are comparable across the run and across resumes.
        n = cfg.grid_samples
        self.grid_noise = sample_noise(
            range(n),
            tuple(self.spec.shape),
            seed=key_seed(cfg.seed, 2),
            noise_scale=self.recipe.objective.noise_scale,
        )
        k = self.spec.num_classes
        self.grid_labels = torch.arange(n) % k if k else torch.zeros(n, dtype=torch.long)

    def _autocast(self) -> contextlib.AbstractContextManager:
        precision = self.cfg.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        if precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _write_run_files(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        text = recipe_to_toml(self.recipe, header=f"resolved recipe of this run (from {self.recipe.source})")
        (self.run_dir / "recipe.toml").write_text(text)
        provenance = {
            "recipe_source": self.recipe.source,
            "recipe_sha256": hashlib.sha256(recipe_to_toml(self.recipe).encode()).hexdigest(),
            "git_commit": _git_commit(),
            "gen_version": gen.__version__,
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "world_size": self.dist.world_size,
            "device": str(self.device),
            "batch_plan": attrs.asdict(self.plan),
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup,
            "peak_lr": self.peak_lr,
            "argv": sys.argv,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "resumed_from_step": self.step if self.resume else None,
        }
        with open(self.run_dir / "provenance.jsonl", "a") as f:
            f.write(json.dumps(provenance) + "\n")

    # -- checkpoints --------------------------------------------------------------------------------
    def _save(self) -> Path | None:
        rng = distributed.all_gather_objects(torch.get_rng_state(), self.dist)
        # Whole tensors, gathered shard by shard under FSDP (every rank takes part); rank 0 keeps them.
        main = self.dist.is_main
        weights = {"model": sharding.gather_state(self.model.state_dict(), main)}
        for i in range(len(self.ema.decays)):
            weights[self.ema.name(i)] = self.ema.state_dict(i, self.model, main)
        optimizer = sharding.optimizer_state(self.model, self.optimizer, main)
        if not main:
            distributed.barrier(self.dist)
            return None
        state = {
            "optimizer": optimizer,
            "step": self.step,
            "data_batches": self.step * self.plan.accum,
            "rng": list(rng),
        }
        meta = {
            "world_size": self.dist.world_size,
            "ema_decays": list(self.ema.decays),
            "backbone": self.recipe.backbone.name,
            "gen_version": gen.__version__,
            # What the data filled into the backbone config; sampling rebuilds the model without the data.
            "data_spec": {"shape": list(self.spec.shape), "num_classes": self.spec.num_classes},
        }
        path = ckpt.save_checkpoint(self.run_dir, self.step, weights=weights, state=state, meta=meta)
        ckpt.prune_checkpoints(self.run_dir, self.cfg.keep_last, self.cfg.milestone_every)
        distributed.barrier(self.dist)
        return path

    def _load(self, path: Path) -> None:
        meta = ckpt.read_meta(path)
        model_file = path / "model.safetensors"
        sharding.load_model_state(self.model, ckpt.load_weights(model_file), str(model_file))
        for i in range(len(self.ema.decays)):
            self.ema.load(i, ckpt.load_weights(path / f"{self.ema.name(i)}.safetensors"))
        state = ckpt.load_state(path)
        sharding.load_optimizer_state(self.model, self.optimizer, state["optimizer"], str(path / "state.pt"))
        self.step = int(state["step"])
        if meta.get("world_size") == self.dist.world_size:
            torch.set_rng_state(state["rng"][self.dist.rank])
        self._resumed_from = path

    # -- one step -----------------------------------------------------------------------------------
    def data_stream(self):
        """This rank's batch stream, positioned at the current step."""
        return iter(
            self.dataset.train_batches(
                self.plan.micro_batch,
                seed=self.cfg.seed,
                rank=self.dist.rank,
                world_size=self.plan.world_size,
                start_batch=self.step * self.plan.accum,
            )
        )

    def _train_step(self, stream) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward over one global batch (no optimizer update).

        Returns this rank's [loss sum, count, loss sum per t-bin..., count per t-bin...] and the grad norm.
        """
        plan, cfg, obj = self.plan, self.cfg, self.objective
        g_step = torch.Generator().manual_seed(key_seed(cfg.seed, 3, self.step))
        t_all = obj.sample_time(plan.global_batch, generator=g_step)  # (G,) keyed by position
        drop_all = torch.rand(plan.global_batch, generator=g_step) < obj.config.label_drop  # (G,)
        for group in self.optimizer.param_groups:
            group["lr"] = self.current_lr
        self.optimizer.zero_grad(set_to_none=True)
        stats = torch.zeros(2 + 2 * T_BINS, dtype=torch.float64)
        b, w = plan.micro_batch, plan.world_size
        for j in range(plan.accum):
            x, y = next(stream)
            x = x.to(self.device, non_blocking=True)  # (b, *shape)
            y = y.to(self.device, non_blocking=True)  # (b,)
            pos = j * b * w + self.dist.rank * b + torch.arange(b)  # (b,) positions in the global batch
            t = t_all[pos].to(self.device)
            if obj.num_classes > 0:
                y = torch.where(drop_all[pos].to(self.device), torch.full_like(y, obj.null_label), y)
            eps = self._noise(pos, x)
            sync = j == plan.accum - 1 or not self.dist.enabled
            if self.fsdp:
                self.model.set_requires_gradient_sync(sync)
                ctx = contextlib.nullcontext()
            else:
                ctx = contextlib.nullcontext() if sync else self.train_model.no_sync()
            with ctx:
                with self.autocast:
                    loss, s = obj.loss_at(self.train_model, x, y, t, eps)
                (loss / plan.accum).backward()
            per = s["loss"].double().cpu()  # (b,)
            bins = (s["t"].double().cpu() * T_BINS).long().clamp(0, T_BINS - 1)  # (b,)
            stats[0] += per.sum()
            stats[1] += per.numel()
            stats[2 : 2 + T_BINS] += torch.zeros(T_BINS, dtype=torch.float64).index_add_(0, bins, per)
            stats[2 + T_BINS :] += torch.bincount(bins, minlength=T_BINS).double()
        max_norm = cfg.grad_clip if cfg.grad_clip is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        return stats, sharding.gather(grad_norm).float()  # under FSDP the norm is itself a shard

    def _noise(self, pos: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """eps for the samples at global-batch positions ``pos``: each keyed by (seed, step, position)."""
        base = self.step * self.plan.global_batch
        rows = []
        for p in pos.tolist():
            g = torch.Generator(device=x.device).manual_seed(key_seed(self.cfg.seed, 4, base + p))
            rows.append(torch.randn(x.shape[1:], generator=g, device=x.device, dtype=x.dtype))
        return torch.stack(rows) * self.objective.config.noise_scale  # (b, *shape)

    # -- sampling -----------------------------------------------------------------------------------
    def _ema_index(self) -> int | None:
        if not self.ema.decays:
            return None
        decay = self.cfg.grid_ema if self.cfg.grid_ema is not None else self.ema.decays[0]
        return self.ema.decays.index(decay)

    def sampling_model(self) -> nn.Module | None:
        """A plain (unsharded) copy of the backbone with the grid EMA's weights, in eval mode, on rank 0.

        A collective under FSDP (every rank calls it; the others get None).
        """
        index = self._ema_index()
        main = self.dist.is_main
        if index is None:
            state = sharding.gather_state(self.model.state_dict(), main)
        else:
            state = self.ema.state_dict(index, self.model, main)
        if not main:
            return None
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            net = build_backbone(self.recipe, self.spec)  # its random init must not move the training RNG
        net.load_state_dict(state)
        return net.to(self.device).eval()

    @torch.no_grad()
    def generate(
        self, net: nn.Module, noise: torch.Tensor, labels: torch.Tensor, batch: int = 256
    ) -> torch.Tensor:
        out = []
        for i in range(0, noise.shape[0], batch):
            z = noise[i : i + batch].to(self.device)
            y = labels[i : i + batch].to(self.device)
            with self.autocast:
                x = sample_from_config(
                    net, z, y, self.recipe.sample, self.recipe.objective, num_classes=self.spec.num_classes
                )
            out.append(x.float().cpu())
        return torch.cat(out)

    def _grid(self, name: str) -> Path | None:
        if self.cfg.grid_samples == 0 or not self.spec.is_image:
            return None
        net = self.sampling_model()
        if net is None:
            return None
        images = self.generate(net, self.grid_noise, self.grid_labels)
        if self.tensorboard is not None:
            self.tensorboard.grid(make_grid(to_uint8(images)), self.step)
        return save_grid(images, self.run_dir / "samples" / f"{name}.png")

    def _evaluate(self) -> dict[str, float]:
        n = self.cfg.eval_samples
        score = getattr(self.dataset, "evaluate_samples", None)
        if n == 0 or score is None:
            return {}
        net = self.sampling_model()
        if net is None:
            return {}
        k = self.spec.num_classes
        noise = sample_noise(
            range(n),
            tuple(self.spec.shape),
            seed=key_seed(self.cfg.seed, 5),
            noise_scale=self.recipe.objective.noise_scale,
        )
        labels = torch.arange(n) % k if k else torch.zeros(n, dtype=torch.long)
        samples = self.generate(net, noise, labels)
        result = {k: float(v) for k, v in score(samples, labels).items()}
        if self.tensorboard is not None:
            self.tensorboard.scores(result, self.step)
        record = {"step": self.step, "num_samples": n, **result}
        with open(self.run_dir / "eval.jsonl", "a") as f:  # every score of the run, one line each
            f.write(json.dumps(record) + "\n")
        (self.run_dir / "eval.json").write_text(json.dumps(record, indent=2))  # the latest score
        return result

    # -- the loop -----------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:  # noqa: ANN001, ARG002
        self._stop_signal = signal.Signals(signum).name

    def run(self) -> dict[str, Any]:
        """Train to the end (or to a stop signal). Returns a summary (last step, metrics, paths)."""
        finished = False
        try:
            summary = self._run()
            finished = True
            return summary
        finally:
            if getattr(self, "tensorboard", None) is not None:
                self.tensorboard.close()
            if finished and self.dist.enabled:
                # The sharded or DDP-wrapped model holds the process group through reference cycles:
                # drop it first, so that the group dies in teardown and not at interpreter exit.
                self.train_model = self.model = self.optimizer = self.ema = None
            distributed.teardown(synchronize=finished and self.dist.enabled)

    def _log(self, text: str) -> None:
        if self.dist.is_main:
            self.console.print(text, markup=False, highlight=False)

    def _run(self) -> dict[str, Any]:
        self.setup()
        cfg, plan = self.cfg, self.plan
        if self.dist.is_main:
            self._write_run_files()
            if cfg.tensorboard:
                self.tensorboard = TensorBoardLog(self.run_dir / "tensorboard")
        distributed.barrier(self.dist)
        if self.resume:
            self._log(f"resumed from {self._resumed_from} (step {self.step})")
        self._log(
            f"training {self.recipe.backbone.name} for {self.total_steps} steps: global batch {plan.global_batch} "
            f"= {plan.world_size} process(es) x {plan.accum} accumulation x {plan.micro_batch}"
            f"{' (FSDP: parameters, gradients, optimizer state and EMA sharded)' if self.fsdp else ''}, "
            f"lr {self.peak_lr:.3g}, {sum(p.numel() for p in self.model.parameters()) / 1e6:.2f}M parameters, "
            f"device {self.device}; run directory {self.run_dir}"
        )
        stream = self.data_stream()
        old_handlers = {}
        if threading_is_main():
            for sig in (signal.SIGTERM, signal.SIGINT):
                old_handlers[sig] = signal.signal(sig, self._on_signal)
        metrics_path = self.run_dir / "metrics.jsonl"
        window = torch.zeros(2 + 2 * T_BINS, dtype=torch.float64)
        window_start, window_steps, last_saved = time.perf_counter(), 0, self.step
        last: dict[str, Any] = {}
        stop = False
        self.train_model.train()
        progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.dist.is_main,
            transient=False,
        )
        try:
            with progress:
                task = progress.add_task("train", total=self.total_steps, completed=self.step, info="")
                while self.step < self.total_steps:
                    self.current_lr = lr_at(
                        self.step,
                        peak=self.peak_lr,
                        warmup=self.warmup,
                        total=self.total_steps,
                        schedule=cfg.lr_schedule,
                        min_lr=cfg.min_lr,
                    )
                    stats, grad_norm = self._train_step(stream)
                    # One reduction per step carries the loss, the bins, NaN and stop flags of every rank.
                    flags = torch.tensor([float(self._stop_signal is not None)], dtype=torch.float64)
                    packed = torch.cat([stats, flags]).to(self.device)
                    if self.dist.enabled:
                        torch.distributed.all_reduce(packed)
                    packed = packed.cpu()
                    stats, stop = packed[:-1], bool(packed[-1] > 0)
                    loss = float(stats[0] / stats[1])
                    if not math.isfinite(loss) or not math.isfinite(float(grad_norm)):
                        latest = ckpt.latest_checkpoint(self.run_dir)
                        kept = (
                            f"the last good checkpoint, {latest}, is intact"
                            if latest
                            else "no checkpoint was written"
                        )
                        raise GenError(
                            f"loss is {loss} (grad norm {float(grad_norm)}) at step {self.step + 1}; training "
                            f"stopped before the update and {kept}. Lower train.blr/lr, set train.grad_clip, or check the data"
                        )
                    self.optimizer.step()
                    self.ema.update(self.model)
                    self.step += 1
                    window += stats
                    window_steps += 1
                    progress.update(task, completed=self.step, info=f"loss {loss:.4f}")
                    if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                        elapsed = time.perf_counter() - window_start
                        last = {
                            "step": self.step,
                            "loss": float(window[0] / window[1]),
                            "loss_by_t": [
                                float(window[2 + i] / window[2 + T_BINS + i])
                                if window[2 + T_BINS + i] > 0
                                else None
                                for i in range(T_BINS)
                            ],
                            "grad_norm": float(grad_norm),
                            "lr": self.current_lr,
                            "images_per_s": window_steps * plan.global_batch / max(elapsed, 1e-9),
                            "peak_memory_mb": _peak_memory_mb(self.device),
                        }
                        if self.dist.is_main:
                            with open(metrics_path, "a") as f:
                                f.write(json.dumps(last) + "\n")
                            if self.tensorboard is not None:
                                self.tensorboard.metrics(last)
                        window.zero_()
                        window_start, window_steps = time.perf_counter(), 0
                    if (
                        cfg.sample_every
                        and self.step % cfg.sample_every == 0
                        and self.step < self.total_steps
                    ):
                        self._grid(f"step_{self.step:08d}")
                    if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < self.total_steps:
                        scores = self._evaluate()
                        if scores:
                            self._log(f"eval at step {self.step}: " + _format_scores(scores))
                    if stop:
                        break
                    if self.step % cfg.ckpt_every == 0:
                        self._save()
                        last_saved = self.step
        finally:
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
        summary: dict[str, Any] = {"step": self.step, "run_dir": str(self.run_dir), "metrics": last}
        if last_saved != self.step or ckpt.latest_checkpoint(self.run_dir) is None:
            path = self._save()
            summary["checkpoint"] = str(path) if path else None
        if stop:
            self._log(
                f"stopped by {self._stop_signal or 'a signal on another rank'} at step {self.step}; checkpoint "
                f"saved. Continue with: gen train {self.recipe.source} --run-dir {self.run_dir} --resume"
            )
            summary["stopped"] = True
            return summary
        grid = self._grid("final")
        if grid is not None:
            summary["grid"] = str(grid)
            self._log(f"samples: {grid}")
        scores = self._evaluate()
        if scores:
            summary["eval"] = scores
            self._log("eval: " + _format_scores(scores))
        self._log(
            f"done: step {self.step}, loss {last.get('loss', float('nan')):.4f}; run directory {self.run_dir}"
        )
        return summary


def _format_scores(scores: dict[str, float]) -> str:
    return ", ".join(f"{k} = {v:.4f}" for k, v in scores.items())


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def train(
    recipe: Recipe, run_dir: str | Path, *, resume: bool = False, console: Console | None = None
) -> dict:
    """Train ``recipe`` into ``run_dir`` (see :class:`Trainer`)."""
    return Trainer(recipe, run_dir, resume=resume, console=console).run()


__all__ = ["BatchPlan", "Trainer", "build_backbone", "key_seed", "train"]
