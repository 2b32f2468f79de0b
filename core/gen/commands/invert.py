"""``gen invert``: images back to the start noise the model's sampler maps onto them (an ``.npz`` that
``gen sample --noise`` regenerates from; docs/inversion.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from gen.commands import sample_options as opt
from gen.commands.app import app, err_console, parse_list
from gen.errors import GenError


@app.command("invert")
def invert_command(
    run: str = typer.Argument(..., help="A run directory (its latest checkpoint) or a checkpoint directory."),
    images: list[str] = typer.Argument(..., help="Image files, or folders of them, of the model's size."),
    out: str = typer.Option(..., "--out", "-o", help="The noise file to write (NAME.npz)."),
    labels: str | None = typer.Option(
        None,
        "--labels",
        help="Class ids, comma-separated, repeated over the images (default: the null label, the "
        "unconditional field).",
    ),
    fixed_point: int = typer.Option(
        1,
        "--fixed-point",
        help="Fixed-point iterations per solver step (0: the explicit reverse step alone).",
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="Regenerate from the noise and print the round trip's PSNR (as many evaluations again).",
    ),
    cfg: opt.Cfg = None,
    interval: opt.Interval = None,
    steps: opt.Steps = None,
    sampler_name: opt.Sampler = None,
    grid: opt.Grid = None,
    ema: opt.Ema = None,
    split_interval: opt.SplitInterval = None,
    seed: int = typer.Option(0, "--seed", help="Keys the encoder's draw of a latent model."),
    batch_size: opt.BatchSize = 64,
) -> None:
    """Invert images to the noise from which `gen sample --noise` with the same settings draws them back."""
    import torch

    from gen.components import to_table
    from gen.files import check_writable
    from gen.runs.run_dir import load_checkpoint
    from gen.sampling.inversion import image_files, invert_batches, psnr, read_images, write_noise_file
    from gen.sampling.model import ModelSampler

    if not out.endswith(".npz"):
        raise GenError(f"--out {out}: the noise file is an .npz; e.g. --out noise.npz")
    if batch_size < 1 or seed < 0 or fixed_point < 0:
        raise GenError(
            f"--batch-size must be >= 1, --seed and --fixed-point >= 0, got {batch_size}, {seed} and {fixed_point}"
        )
    check_writable(Path(out).parent, "the output folder", "make it writable, or give another --out")
    files = image_files(images)
    checkpoint = load_checkpoint(run)
    model = ModelSampler.from_checkpoint(checkpoint)
    x = read_images(files, tuple(model.output_spec.shape))  # (N, C, H, W) in [-1, 1]
    given = parse_list(labels, int, "--labels")
    ys = model.labels_for(given, len(files))
    settings = model.settings(
        ema or "default",
        **opt.one_setting(cfg, interval, steps, sampler_name, grid, split_interval),
    )
    model.use_weights(settings.ema)  # a damaged weights file is the only line printed
    # The process refuses a solver it cannot invert on the first batch, before any output.
    parts = invert_batches(model, x, ys, settings, batch_size=batch_size, fixed_point=fixed_point, seed=seed)
    noise = torch.cat([z for _, z in parts])
    s = settings.describe()
    err_console.print(
        f"inverted {len(files)} images with {checkpoint.path} (step {checkpoint.step}): ema {s['ema']}, cfg "
        f"{s['cfg']}, interval {s['interval']}, {s['steps']} {s['sampler']} steps"
        f"{' on ' + s['grid'] if 'grid' in s else ''}, {fixed_point} fixed-point iteration(s) a step",
        markup=False,
    )
    recorded = {"ema": s["ema"], "sample": to_table(settings.sample), "fixed_point": fixed_point}
    write_noise_file(out, noise, ys, recorded, [str(f) for f in files])
    err_console.print(f"wrote {out}: noise {tuple(noise.shape)}, std {float(noise.std()):.3f}", markup=False)
    if check:
        again = torch.cat(
            [
                y
                for _, y in model.generate(
                    range(len(noise)), ys, settings, seed=0, batch_size=batch_size, noise=noise
                )
            ]
        )
        db = psnr(again, x)
        err_console.print(
            f"round trip: PSNR {float(db.mean()):.2f} dB (min {float(db.min()):.2f} dB) over {len(files)} images",
            markup=False,
        )
