"""``gen sample``: images of a checkpoint to a grid, an ADM ``.npz`` or a folder (see
`gen.sample_files`). Under ``torchrun`` every process draws its own slice."""

from __future__ import annotations

import typer

from gen.commands.app import app, err_console, guide_options, parse_grid, parse_interval, parse_list
from gen.errors import GenError
from gen.plugins import get_registry


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
    cfg: float | None = typer.Option(None, "--cfg", help="Guidance scale (default: the recipe's)."),
    interval: str | None = typer.Option(
        None, "--interval", help="Guidance interval LOW,HIGH (default: the recipe's)."
    ),
    steps: int | None = typer.Option(None, "--steps", help="Solver steps (default: the recipe's)."),
    sampler_name: str | None = typer.Option(
        None, "--sampler", help="A registered sampler (default: the recipe's)."
    ),
    grid: str | None = typer.Option(
        None,
        "--grid",
        help="A time grid: a name (linear, edm) or a TOML table, e.g. '{ name = \"shifted\", shift = 2.0 }' "
        "(default: the recipe's).",
    ),
    ema: str | None = typer.Option(
        None,
        "--ema",
        help="EMA to use: a decay, phema_<sigma_rel>, or 'none' for the raw weights (default: the first EMA).",
    ),
    ema_length: float | None = typer.Option(
        None,
        "--ema-length",
        help="A power-EMA length sigma_rel (as --ema phema_<sigma_rel>): reconstructed from the run's "
        "snapshots when the checkpoint does not store it.",
    ),
    guidance: str | None = typer.Option(
        None, "--guidance", help="cfg (classifier-free) or auto (autoguidance; default: the recipe's)."
    ),
    guide_step: int | None = typer.Option(
        None,
        "--guide-step",
        help="Autoguidance: the step of the guiding checkpoint (implies --guidance auto).",
    ),
    guide_ema: str | None = typer.Option(
        None, "--guide-ema", help="Autoguidance: the guiding model's EMA (a decay, phema_<sigma_rel>, none)."
    ),
    guide_run: str | None = typer.Option(
        None,
        "--guide-run",
        help="Autoguidance: another run (or checkpoint) of the same data whose model guides.",
    ),
    split_interval: bool | None = typer.Option(
        None,
        "--split-interval/--no-split-interval",
        help="Solve each side of the guidance interval's ends on its own (default: the recipe's).",
    ),
    seed: int = typer.Option(0, "--seed", help="Sample i depends only on (seed, i)."),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Images per forward pass and process."),
) -> None:
    """Generate images from a checkpoint. Under torchrun every process draws its own slice."""
    from gen import distributed
    from gen.model_sampler import ModelSampler, class_labels
    from gen.runs.run_dir import load_checkpoint
    from gen.sample_files import output_kind, sample_to

    if batch_size < 1 or seed < 0:
        raise GenError(f"--batch-size must be >= 1 and --seed >= 0, got {batch_size} and {seed}")
    output_kind(out)
    if sampler_name is not None:
        get_registry("sampler").get(sampler_name)  # an unknown name fails with the known ones
    if ema is not None and ema_length is not None:
        raise GenError("give either --ema or --ema-length, not both")
    if ema_length is not None:
        ema = f"phema_{ema_length!r}"
    guides = guide_options(
        guidance,
        str(guide_step) if guide_step is not None else None,
        guide_ema,
        guide_run,
    )
    if guides and len(guides) > 1:
        raise GenError(f"--guidance {guidance}: gen sample takes one guidance (gen eval sweeps them)")
    checkpoint = load_checkpoint(run)
    _require_images(checkpoint)
    ys = class_labels(
        num, checkpoint.spec.num_classes, labels=parse_list(labels, int, "--labels"), per_class=per_class
    )
    with distributed.process_group() as dist:
        sampler = ModelSampler.from_checkpoint(checkpoint, dist.device)
        settings = sampler.settings(
            ema or "default",
            cfg=cfg,
            cfg_interval=parse_interval(interval) if interval is not None else None,
            steps=steps,
            sampler=sampler_name,
            grid=parse_grid(grid) if grid is not None else None,
            split_interval=split_interval,
            **(guides[0] if guides else {}),
        )
        # Loaded before any output: a damaged weights file is the only line printed.
        sampler.use_weights(settings.ema)
        if dist.is_main:
            s = settings.describe()
            err_console.print(
                f"sampling {len(ys)} images from {checkpoint.path} (step {checkpoint.step}): ema {s['ema']}, "
                f"{'autoguidance by ' + s['guide'] + ', scale' if 'guide' in s else 'cfg'} {s['cfg']}, "
                f"interval {s['interval']}{' (split)' if 'split_interval' in s else ''}, {s['steps']} {s['sampler']} steps"
                f"{' on ' + s['grid'] if 'grid' in s else ''}, seed {seed}",
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
