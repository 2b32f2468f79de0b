"""A MeanFlow training step against a flow step of the same backbone, side by side.

Example:
    python benchmarks/meanflow_step.py                      # the demo's JiT, batch 32
    python benchmarks/meanflow_step.py backbone.hidden_size=384 backbone.depth=6 backbone.num_heads=6

Builds one trainer per objective from ``recipes/demo_meanflow.toml`` (the flow: the same recipe with
``objective.process='flow'``), then times their engine steps interleaved — one step of each in turn,
``--rounds`` times — and prints the minimum per step and the ratio to the flow's. The variants:

- ``mf u``: MeanFlow's u-form without guidance (the JVP alone);
- ``mf u, guided``: with MF's trained-in guidance (one more batched forward, 2B);
- ``pmf v, conditioned``: pMF as ``demo_meanflow`` trains it (the model's own velocity and iMF's
  guidance targets: one 3B forward, then the JVP).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gen.recipe import load_recipe
from gen.threads import configure_threads
from gen.training.engine import Trainer

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "flow": ["objective.process='flow'", "sample.sampler='heun'", "sample.steps=20"],
    "mf u": ["objective.process.variant='mf'", "objective.process.guidance='none'", "sample.cfg=1.0"],
    "mf u, guided": [
        "objective.process.variant='mf'",
        "objective.process.guidance='fixed'",
        "sample.cfg=1.0",
    ],
    "pmf v, conditioned": [],
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="SECTION.KEY=VALUE overrides of both recipes")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the affinity's)")
    args = parser.parse_args()
    configure_threads(args.threads)
    common = [
        *args.overrides,
        f"train.global_batch={args.batch}",
        "train.grid_samples=0",
        "train.eval_samples=0",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        trainers, streams = {}, {}
        for name, extra in VARIANTS.items():
            recipe = load_recipe(REPO / "recipes" / "demo_meanflow.toml", [*common, *extra])
            trainer = Trainer(recipe, Path(tmp) / name.replace(" ", "_").replace(",", ""))
            trainer.setup()
            trainers[name], streams[name] = trainer, trainer.data_stream()
            for _ in range(2):  # warm-up
                trainer.train_step(streams[name])
        best = dict.fromkeys(trainers, float("inf"))
        for _ in range(args.rounds):
            for name, trainer in trainers.items():
                start = time.perf_counter()
                trainer.train_step(streams[name])
                best[name] = min(best[name], time.perf_counter() - start)
        for trainer in trainers.values():
            trainer.lock.release()
    print(f"batch {args.batch}, min of {args.rounds} interleaved steps, overrides {args.overrides or 'none'}")
    print(f"| {'objective':<20} | {'ms/step':>8} | {'x flow':>6} |")
    print(f"| {'-' * 20} | {'-' * 8} | {'-' * 6} |")
    for name, seconds in best.items():
        print(f"| {name:<20} | {seconds * 1e3:8.1f} | {seconds / best['flow']:6.2f} |")


if __name__ == "__main__":
    main()
