"""Benchmark full training steps of a recipe: data, forward, backward, optimizer and EMA update.

Example:
    python benchmarks/train_step.py recipes/demo.toml --steps 20
    python benchmarks/train_step.py recipes/jit_b16.toml data.name=shapes data.image_size=256 \\
        train.global_batch=32 --steps 10          # JiT-B/16 at 256 px on synthetic data

    python benchmarks/train_step.py recipes/dit_xl2.toml autoencoder.name=identity \\
        "data={name='synthetic', shape=[4, 32, 32], num_classes=1000}" train.global_batch=8 --steps 2

Prints images/s over the timed steps (after ``--warmup`` untimed ones), the model FLOPs of a training
image (forward + backward, counted on the meta device), MFU against the device's peak (a table of GPUs,
``--peak-tflops`` or ``GEN_PEAK_TFLOPS``) and peak memory (``torch.cuda.max_memory_allocated`` on CUDA,
the process's peak RSS on the CPU). Runs the same code as ``gen train`` (the engine's step, the
device-side update guard included), in a temporary run directory, without checkpoints or grids.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from gen.precision import resolve_precision
from gen.recipe import load_recipe
from gen.threads import configure_threads
from gen.training.engine import Trainer
from gen.training.flops import PEAK_ENV, mfu, peak_flops
from gen.training.stats import peak_memory_mb


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*", help="SECTION.KEY=VALUE recipe overrides")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation, caches)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: as gen does)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for MFU")
    args = parser.parse_args()
    configure_threads(args.threads)
    if args.peak_tflops is not None:
        os.environ[PEAK_ENV] = str(args.peak_tflops)

    recipe = load_recipe(args.recipe, args.overrides)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(recipe, run_dir)
        trainer.setup()
        stream = trainer.data_stream()
        device = trainer.device
        timed = 0.0
        for i in range(args.warmup + args.steps):
            if i == args.warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            trainer.train_step(stream)
        if device.type == "cuda":
            torch.cuda.synchronize()
        timed = time.perf_counter() - start
    params = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    plan = trainer.plan.batch
    images = args.steps * plan.global_batch
    print(f"recipe        {args.recipe} {' '.join(args.overrides)}")
    print(f"backbone      {recipe.backbone.name}, {params / 1e6:.2f}M trainable parameters, device {device}")
    print(f"global batch  {plan.global_batch} (micro {plan.micro_batch} x {plan.accum})")
    print(f"throughput    {images / timed:.1f} images/s ({timed / args.steps * 1000:.1f} ms/step)")
    flops = trainer.flops_per_image
    util = mfu(images / timed, flops, peak_flops(device, resolve_precision(recipe.train.precision, device)))
    print(f"model FLOPs   {flops / 1e9:.2f} GFLOP per training image (forward + backward)")
    print(f"MFU           {'unknown peak (--peak-tflops)' if util is None else f'{util:.1%}'}")
    print(f"peak memory   {peak_memory_mb(device):.0f} MiB")


if __name__ == "__main__":
    main()
