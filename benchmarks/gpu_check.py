"""The GPU check: one command that runs what only a GPU can show, and prints one table.

    python benchmarks/gpu_check.py                 # on a CUDA machine (about 5-8 minutes on one H200)
    python benchmarks/gpu_check.py --small         # the same checks at toy sizes, on the CPU (CI)

Rows (each a check or a measurement; a failure is a row, not a crash):

- ``agree bf16/fp32``: the loss of one batch under bf16 autocast against fp32 (relative difference);
- ``agree compiled/eager``: loss and gradients of ``torch.compile`` against eager;
- ``no host sync``: steady-state training steps under ``torch.cuda.set_sync_debug_mode("error")``
  (CUDA only; on the CPU, ``tests/core/training/test_no_host_sync.py`` counts host reads instead);
- ``train <model>``: images/s, MFU and peak memory of training steps, JiT-B/16 at 256 px with
  micro-batch 64 and 128, eager and compiled, with and without activation checkpointing; JiT-L/16;
  DiT-XL/2 on 32x32x4 latents (synthetic data: the data pipeline is not what is measured);
- ``sample``: guided Heun-50 sampling (CFG 2.9 on (0.1, 1)) images/s at batch 256;
- ``torchrun ddp`` / ``torchrun fsdp``: a few steps of ``gen train`` under ``torchrun`` on one device.

Paste the table into the closing note of the issue that asked for it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import gen
from gen.precision import autocast, resolve_precision
from gen.recipe import load_recipe
from gen.threads import configure_threads
from gen.training.engine import Trainer
from gen.training.flops import mfu, peak_flops
from gen.training.stats import peak_memory_mb

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC_IMAGES = "data={name='synthetic', shape=[3, %d, %d], num_classes=1000, num_samples=1281167}"
SYNTHETIC_LATENTS = "data={name='synthetic', shape=[4, 32, 32], num_classes=1000, num_samples=1281167}"
PMF = ["objective.process.lpips_weight=0", "objective.process.convnext_weight=0"]  # no weights files here


def sizes(small: bool) -> dict[str, Any]:
    """The models and batches of the check: the real ones, or toy ones the CPU runs in seconds."""
    if small:
        tiny = [
            "backbone.preset='B/16'",
            "backbone.depth=2",
            "backbone.hidden_size=64",
            "backbone.num_heads=2",
        ]
        return {
            "image": 32,
            "jit_b": tiny + ["backbone.bottleneck_dim=32", "backbone.in_context_start=1"],
            "jit_l": tiny + ["backbone.bottleneck_dim=32", "backbone.in_context_start=1"],
            "dit": [
                "backbone.preset='S/2'",
                "backbone.depth=2",
                "backbone.hidden_size=64",
                "backbone.num_heads=2",
            ],
            "batches": (4,),
            "sample_batch": 4,
            "sample_steps": 3,
            "steps": 2,
            "warmup": 1,
        }
    return {
        "image": 256,
        "jit_b": [],
        "jit_l": ["backbone.preset='L/16'"],
        "dit": [],
        "batches": (64, 128),
        "sample_batch": 256,
        "sample_steps": 50,
        "steps": 10,
        "warmup": 3,
    }


def training_recipe(recipe: str, overrides: list[str], batch: int) -> gen.Recipe:
    return load_recipe(
        REPO / "recipes" / recipe,
        [*overrides, f"train.global_batch={batch}", "train.grid_samples=0", "train.eval_samples=0"],
    )


def time_steps(recipe: gen.Recipe, steps: int, warmup: int, *, forbid_sync: bool = False) -> dict[str, Any]:
    """images/s, MFU and peak memory of ``steps`` engine steps after ``warmup`` ones."""
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(recipe, run_dir)
        trainer.setup()
        stream, device = trainer.data_stream(), trainer.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

        def step() -> None:
            trainer.train_step(stream)

        for _ in range(warmup):
            step()
        synchronize(device)
        start = time.perf_counter()
        with sync_forbidden(device) if forbid_sync else contextlib.nullcontext():
            for _ in range(steps):
                step()
        synchronize(device)
        elapsed = time.perf_counter() - start
        trainer.lock.release()
    images_per_s = steps * trainer.plan.batch.global_batch / elapsed
    peak = peak_flops(device, resolve_precision(recipe.train.precision, device))
    return {
        "images/s": images_per_s,
        "mfu": mfu(images_per_s, trainer.flops_per_image, peak),
        "peak MiB": peak_memory_mb(device),
    }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def sync_forbidden(device: torch.device):
    """Raise on any host synchronisation inside (CUDA's sync debug mode)."""
    if device.type != "cuda":
        yield
        return
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def one_batch_loss(recipe: gen.Recipe, precision: str, compiled: bool) -> tuple[float, list[torch.Tensor]]:
    """The loss (``stats["loss"]``) and gradients of one fixed batch, same weights, under ``precision``
    and compile or not."""
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(recipe, run_dir)
        trainer.setup()
        with torch.no_grad():  # away from the zero init of the output layers, which hides everything
            g = torch.Generator().manual_seed(1)
            for p in trainer.model.parameters():
                p.add_(0.02 * torch.randn(p.shape, generator=g).to(p.device, p.dtype))
        x, y = next(trainer.data_stream())
        x, y = x.to(trainer.device), y.to(trainer.device)
        g = torch.Generator().manual_seed(0)
        draws = {k: d.to(trainer.device) for k, d in trainer.objective.draw(x.shape[0], generator=g).items()}
        eps = torch.randn(x.shape, generator=g).to(trainer.device)
        net = torch.compile(trainer.model) if compiled else trainer.model
        with autocast(precision, trainer.device):
            loss, stats = trainer.objective.loss_at(net, x, y, draws, eps)
        loss.backward()
        grads = [p.grad.float().cpu() for p in trainer.model.parameters() if p.grad is not None]
        trainer.lock.release()
    # The regression's error (the flow's loss itself; a MeanFlow's before its adaptive weight, which is ≈ 1)
    return float(stats["loss"].float().mean()), grads


def agreement(recipe: gen.Recipe, compiled: bool) -> str:
    if compiled:
        (a, ga), (b, gb) = one_batch_loss(recipe, "fp32", False), one_batch_loss(recipe, "fp32", True)
        grad = max(
            float((u - v).abs().max() / v.abs().max().clamp_min(1e-12)) for u, v in zip(ga, gb, strict=True)
        )
        return f"loss rel diff {abs(a - b) / abs(b):.2e}, grads max rel diff {grad:.2e}"
    (a, _), (b, _) = one_batch_loss(recipe, "fp32", False), one_batch_loss(recipe, "bf16", False)
    return f"fp32 {a:.5f} bf16 {b:.5f} rel diff {abs(a - b) / abs(a):.2e}"


def sampling_speed(
    small: bool, size: dict[str, Any], device: torch.device, recipe_name: str = "jit_b16.toml", **options: Any
) -> str:
    """images/s of the recipe's sampling (``options``: [sample] keys; default Heun with CFG)."""
    overrides = [SYNTHETIC_IMAGES % (size["image"], size["image"]), *size["jit_b"]]
    recipe = training_recipe(recipe_name, [*overrides, *options.pop("overrides", [])], 8)
    spec = gen.DataSpec(shape=(3, size["image"], size["image"]), num_classes=1000)
    from gen.recipe import build_backbone

    model = gen.ModelSampler(
        build_backbone(recipe, spec).to(device).eval(), recipe=recipe, spec=spec, device=device
    )
    n = size["sample_batch"]
    options = options or {
        "steps": size["sample_steps"],
        "cfg": 2.9,
        "cfg_interval": (0.1, 1.0),
        "sampler": "heun",
    }
    settings = model.settings(None, **options)
    labels = torch.arange(n) % 1000
    list(model.generate(range(n), labels, settings, seed=0, batch_size=n))  # warm-up
    synchronize(device)
    start = time.perf_counter()
    list(model.generate(range(n), labels, settings, seed=1, batch_size=n))
    synchronize(device)
    what = ", ".join(f"{k} {v}" for k, v in options.items())
    return f"{n / (time.perf_counter() - start):.1f} images/s (batch {n}, {what})"


def torchrun(parallel: str) -> str:
    with tempfile.TemporaryDirectory() as run_dir:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "gen",
               "train", str(REPO / "recipes" / "demo.toml"), "train.steps=4", "train.global_batch=8",
               f"train.parallel='{parallel}'", "train.grid_samples=0", "train.eval_samples=0", "--run-dir", run_dir]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(
            done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        )
    return "4 steps, exit 0"


def rows(args: argparse.Namespace) -> list[tuple[str, Callable[[], Any]]]:
    size, small = sizes(args.small), args.small
    image = SYNTHETIC_IMAGES % (size["image"], size["image"])
    jit_b = [image, *size["jit_b"]]
    out: list[tuple[str, Callable[[], Any]]] = [
        ("agree bf16/fp32", lambda: agreement(training_recipe("jit_b16.toml", jit_b, 4), False)),
        ("agree compiled/eager", lambda: agreement(training_recipe("jit_b16.toml", jit_b, 4), True)),
        ("no host sync", lambda: time_steps(training_recipe("jit_b16.toml", jit_b, size["batches"][0]), 3, 2, forbid_sync=True)),
    ]  # fmt: skip
    for batch in size["batches"]:
        for compiled in (False, True):
            for ac in ("none", "blocks"):
                name = f"train JiT-B/16 mb {batch}{' compile' if compiled else ''}{' AC' if ac != 'none' else ''}"
                extra = [f"train.compile={str(compiled).lower()}", f"train.activation_checkpointing='{ac}'"]
                recipe = lambda b=batch, e=extra: training_recipe("jit_b16.toml", [*jit_b, *e], b)  # noqa: E731
                out.append((name, lambda r=recipe: time_steps(r(), size["steps"], size["warmup"])))
    jit_l = [image, *size["jit_l"]] if not small else [image, *size["jit_l"]]
    batch = size["batches"][0]
    out += [
        ("train JiT-L/16", lambda: time_steps(training_recipe("jit_b16.toml", jit_l, batch), size["steps"], size["warmup"])),
        ("train DiT-XL/2 latents", lambda: time_steps(training_recipe("dit_xl2.toml", [SYNTHETIC_LATENTS, "autoencoder.name='identity'", *size["dit"]], batch), size["steps"], size["warmup"])),
        ("sample JiT-B/16", lambda: sampling_speed(small, size, torch.device("cuda" if torch.cuda.is_available() else "cpu"))),
        # The MeanFlow rows (docs/one_step.md): pMF-B/16 without its perceptual networks (local weights).
        ("agree pMF bf16/fp32", lambda: agreement(training_recipe("pmf_b16.toml", [*jit_b, *PMF], 4), False)),
        ("train pMF-B/16 (JVP)", lambda: time_steps(training_recipe("pmf_b16.toml", [*jit_b, *PMF], batch), size["steps"], size["warmup"])),
        ("sample pMF-B/16 1 step compile", lambda: sampling_speed(small, size, torch.device("cuda" if torch.cuda.is_available() else "cpu"), "pmf_b16.toml", overrides=PMF, steps=1, cfg=2.0, compile=True)),
        ("sample pMF-B/16 2 steps", lambda: sampling_speed(small, size, torch.device("cuda" if torch.cuda.is_available() else "cpu"), "pmf_b16.toml", overrides=PMF, steps=2, cfg=2.0)),
        ("torchrun ddp", lambda: torchrun("ddp")),
        ("torchrun fsdp", lambda: torchrun("fsdp")),
    ]  # fmt: skip
    return [(n, f) for n, f in out if not any(s in n for s in args.skip)]


def show(value: Any) -> str:
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            if k == "mfu":
                parts.append("MFU " + ("n/a" if v is None else f"{v:.1%}"))
            else:
                parts.append(f"{v:.1f} {k}")
        return ", ".join(parts)
    return str(value)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="toy sizes (the CPU, CI)")
    parser.add_argument("--skip", nargs="*", default=[], help="skip rows whose name contains any of these")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    configure_threads(args.threads)
    device = "cuda: " + torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(
        f"gen {gen.__version__}, torch {torch.__version__}, {device}, {'small' if args.small else 'full'} sizes"
    )
    print(f"| {'check':<34} | {'result':<80} | {'s':>6} |")
    print(f"| {'-' * 34} | {'-' * 80} | {'-' * 6} |")
    failed = 0
    for name, fn in rows(args):
        start = time.perf_counter()
        try:
            result = show(fn())
        except Exception as e:  # noqa: BLE001 - a failing check is a row of the table
            failed += 1
            result = f"FAIL {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[
                :80
            ]
            if os.environ.get("GEN_DEBUG"):
                traceback.print_exc()
        print(f"| {name:<34} | {result:<80} | {time.perf_counter() - start:6.1f} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
