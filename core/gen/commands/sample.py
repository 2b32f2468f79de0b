"""``gen sample``: images of a checkpoint to a grid, an ADM ``.npz`` or a folder (see
`gen.sample_files`). Under ``torchrun`` every process draws its own slice."""

from __future__ import annotations

from pathlib import Path

import typer

from gen.commands import sample_options as opt
from gen.commands.app import app, err_console, parse_list
from gen.errors import GenError


@app.command("sample")
def sample_command(
    run: str = typer.Argument(..., help="A run directory (its latest checkpoint) or a checkpoint directory."),
    out: str = typer.Option(
        ..., "--out", "-o", help="NAME.png (grid), NAME.npz (ADM arrays) or a folder (one PNG per image)."
    ),
    num: int = typer.Option(64, "--num", "-n", help="Number of images (ignored with --per-class)."),
    labels: str | None = typer.Option(
        None, "--labels", help="Class ids, comma-separated, repeated over the images."
    ),
    per_class: int | None = typer.Option(None, "--per-class", help="This many images of every class."),
    noise_file: str | None = typer.Option(
        None,
        "--noise",
        help="Start from the noise of gen invert (its labels and settings, unless options override them).",
    ),
    cfg: opt.Cfg = None,
    interval: opt.Interval = None,
    steps: opt.Steps = None,
    sampler_name: opt.Sampler = None,
    grid: opt.Grid = None,
    ema: opt.Ema = None,
    ema_length: opt.EmaLength = None,
    guidance: opt.Guidance = None,
    guide_step: opt.GuideStep = None,
    guide_ema: opt.GuideEma = None,
    guide_run: opt.GuideRun = None,
    split_interval: opt.SplitInterval = None,
    seed: opt.Seed = 0,
    batch_size: opt.BatchSize = 64,
) -> None:
    """Generate images from a checkpoint. Under torchrun every process draws its own slice."""
    from gen import distributed
    from gen.files import check_writable
    from gen.runs.run_dir import load_checkpoint
    from gen.sampling.files import output_kind, sample_to
    from gen.sampling.inversion import read_noise_file
    from gen.sampling.model import ModelSampler, class_labels

    if batch_size < 1 or seed < 0:
        raise GenError(f"--batch-size must be >= 1 and --seed >= 0, got {batch_size} and {seed}")
    kind = output_kind(out)
    folder = Path(out) if kind == "dir" else Path(out).parent
    check_writable(folder, "the output folder", "make it writable, or give another --out")  # before any work
    given = opt.one_setting(cfg, interval, steps, sampler_name, grid, split_interval)
    if ema is not None and ema_length is not None:
        raise GenError("give either --ema or --ema-length, not both")
    ema = opt.one(opt.ema_list(ema, ema_length), "--ema")
    guides = opt.guide_options(guidance, guide_step, guide_ema, guide_run)
    if guides and len(guides) > 1:
        raise GenError(f"--guidance {guidance}: gen sample takes one guidance (gen eval sweeps them)")
    checkpoint = load_checkpoint(run)
    _require_images(checkpoint)
    noise, recorded = None, {}
    if noise_file is not None:
        if labels is not None or per_class is not None:
            raise GenError(
                "--noise brings its own labels (those it was inverted with); drop --labels/--per-class"
            )
        noise, ys, recorded = read_noise_file(noise_file, tuple(checkpoint.spec.shape))
        ema = ema or recorded.get("ema")
    else:
        ys = class_labels(
            num, checkpoint.spec.num_classes, labels=parse_list(labels, int, "--labels"), per_class=per_class
        )
    with distributed.process_group() as dist:
        sampler = ModelSampler.from_checkpoint(checkpoint, dist.device)
        given.update(guides[0] if guides else {})
        # An inversion's settings regenerate its images; an option given here replaces its value.
        given = {**recorded.get("sample", {}), **{k: v for k, v in given.items() if v is not None}}
        settings = sampler.settings(ema or "default", **given)
        # Loaded before any output: a damaged weights file is the only line printed.
        sampler.use_weights(settings.ema)
        if dist.is_main:
            s = settings.describe()
            err_console.print(
                f"sampling {len(ys)} images from {checkpoint.path} (step {checkpoint.step}): ema {s['ema']}, "
                f"{'autoguidance by ' + s['guide'] + ', scale' if 'guide' in s else 'cfg'} {s['cfg']}, "
                f"interval {s['interval']}{' (split)' if 'split_interval' in s else ''}, {s['steps']} {s['sampler']} steps"
                f"{' on ' + s['grid'] if 'grid' in s else ''}, seed {seed}, precision "
                f"{sampler.describe_precision(settings.sample)}",
                markup=False,
            )
        path = sample_to(
            out,
            sampler,
            settings,
            ys,
            seed=seed,
            batch_size=batch_size,
            dist=dist,
            console=err_console,
            nrow=per_class,
            noise=noise,
        )
        if dist.is_main:
            err_console.print(f"wrote {path}", markup=False)


def _require_images(checkpoint) -> None:  # noqa: ANN001
    if not checkpoint.spec.is_image:
        raise GenError(
            f"{checkpoint.path}: the model draws vectors of shape {checkpoint.spec.shape}, not images, and "
            "gen sample writes images; score it with gen eval RUN --metric data, and gen toy run plots the "
            "toy experiment"
        )
