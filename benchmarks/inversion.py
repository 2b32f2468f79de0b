"""Invert-then-regenerate on a trained flow model: round-trip PSNR against evaluations and against CFG.

Example:
    python benchmarks/inversion.py runs/demo --threads 1
    python benchmarks/inversion.py runs/demo --images some/folder --labels 3

Images: ``--images`` (files or folders of the model's size), else ``--num`` held-out images of the run's
own dataset drawn with another seed (``--data-seed``; the ``shapes`` data of the demo renders any
number). Each row inverts them (`gen.ModelSampler.invert`) with one solver, grid, step count and
number of fixed-point iterations, regenerates from the noise with the same settings, and prints the
evaluations each way (the rows the network sees per image, counted: a guided evaluation is two), the PSNR of the
regeneration against the images (mean and worst, dB, images in [-1, 1]) and the std of the noise.
The second table sweeps the guidance scale at ``--cfg-steps`` on the best grid.
"""

from __future__ import annotations

import argparse
import time

import attrs
import numpy as np
import torch

import gen
from gen.sampling.inversion import image_files, psnr, read_images
from gen.threads import configure_threads

ROWS = [
    (sampler, grid, steps, k)
    for grid in ("linear", "edm")
    for sampler, steps, iterations in (
        ("euler", 8, (0, 1, 2)),
        ("euler", 16, (0, 1, 2)),
        ("heun", 8, (0, 1)),
        ("heun", 16, (0, 1)),
    )
    for k in iterations
]


class Counter:
    """Counts the rows a network's forward sees (so the evaluations per sample, whatever the batching)."""

    def __init__(self, net: torch.nn.Module):
        self.rows = 0
        net.register_forward_pre_hook(self.hook)

    def hook(self, module, args):  # noqa: ANN001, ANN201, ARG002
        self.rows += args[0].shape[0]


def held_out(model: gen.ModelSampler, num: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """``num`` images of the run's dataset drawn with another seed, and their labels."""
    table = attrs.asdict(model.recipe.data.config)
    table["seed"] = seed
    data = gen.build("dataset", model.recipe.data.name, **table)
    if not hasattr(data, "render"):
        raise SystemExit(f"the {model.recipe.data.name} data cannot draw held-out images; give --images")
    x, y = data.render(np.arange(num))
    return x, y.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", help="a run directory or checkpoint of a flow model")
    parser.add_argument("--images", nargs="*", help="image files or folders (default: held-out data)")
    parser.add_argument(
        "--labels", default=None, help="class ids for --images, comma-separated (default: null)"
    )
    parser.add_argument("--num", type=int, default=64)
    parser.add_argument("--data-seed", type=int, default=777)
    parser.add_argument("--cfg", default="1.0,1.5,2.0,3.0", help="the guidance scales of the second table")
    parser.add_argument("--cfg-steps", type=int, default=16, help="heun steps of the second table")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the affinity's)")
    args = parser.parse_args()
    configure_threads(args.threads)
    model = gen.load(args.run)
    if args.images:
        x = read_images(image_files(args.images), tuple(model.output_spec.shape))
        labels = None if args.labels is None else [int(v) for v in args.labels.split(",")]
    else:
        x, labels = held_out(model, args.num, args.data_seed)
    counter = Counter(model.model)
    n = x.shape[0]
    print(
        f"{n} images of {tuple(x.shape[1:])}, {'labels' if labels is not None else 'null label'}; run {args.run}"
    )

    def trip(**sample) -> tuple[int, int, torch.Tensor, torch.Tensor, float]:
        k = sample.pop("fixed_point")
        start, counter.rows = time.perf_counter(), 0
        noise = model.invert(x, labels, fixed_point=k, **sample)
        back_rows, counter.rows = counter.rows, 0
        again = model.regenerate(noise, labels, **sample)
        return back_rows // n, counter.rows // n, psnr(again, x), noise, time.perf_counter() - start

    print(
        "\nsampler  grid    steps  iterations  evaluations (invert / regenerate)  PSNR mean  worst  noise std"
    )
    best: dict[str, float] = {}
    for sampler, grid, steps, k in ROWS:
        inv, gen_, db, noise, _ = trip(sampler=sampler, grid=grid, steps=steps, cfg=1.0, fixed_point=k)
        best[grid] = max(best.get(grid, 0.0), float(db.mean()))
        print(
            f"{sampler:8s} {grid:7s} {steps:5d}  {k:10d}  {inv:13d} / {gen_:<18d} {float(db.mean()):9.2f}  "
            f"{float(db.min()):5.2f}  {float(noise.std()):9.3f}"
        )
    grid = max(best, key=best.get)
    print(f"\nguidance on {grid}, {args.cfg_steps} heun steps, 1 iteration; the recipe's interval")
    print("cfg    evaluations (invert / regenerate)  PSNR mean  worst  noise std")
    for cfg in (float(v) for v in args.cfg.split(",")):
        inv, gen_, db, noise, _ = trip(
            sampler="heun", grid=grid, steps=args.cfg_steps, cfg=cfg, fixed_point=1
        )
        print(
            f"{cfg:4.1f}  {inv:13d} / {gen_:<18d} {float(db.mean()):9.2f}  {float(db.min()):5.2f}  {float(noise.std()):9.3f}"
        )


if __name__ == "__main__":
    main()
