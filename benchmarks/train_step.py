"""Benchmark full training steps of a recipe: data, forward, backward, optimizer and EMA update.

Example:
    python benchmarks/train_step.py recipes/demo.toml --steps 20
    python benchmarks/train_step.py recipes/jit_b16.toml data.name=shapes data.image_size=256 \\
        train.global_batch=32 --steps 10          # JiT-B/16 at 256 px on synthetic data

Prints images/s over the timed steps (after ``--warmup`` untimed ones) and peak memory
(``torch.cuda.max_memory_allocated`` on CUDA, the process's peak RSS on the CPU). Runs the same code as
``gen train`` (the engine's step), in a temporary run directory, without checkpoints or grids.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from gen.recipe import load_recipe
from gen.training.engine import Trainer
from gen.training.stats import peak_memory_mb


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*", help="SECTION.KEY=VALUE recipe overrides")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation, caches)")
    args = parser.parse_args()

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
            trainer.set_learning_rate()
            trainer.forward_backward(stream)
            trainer.optimizer.step()
            trainer.ema.update(trainer.model)
            trainer.step += 1
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
    print(f"peak memory   {peak_memory_mb(device):.0f} MiB")


if __name__ == "__main__":
    main()
