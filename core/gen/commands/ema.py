"""``gen ema``: choose the EMA after training. ``gen ema reconstruct RUN --sigma-rel 0.05,0.10`` writes
power-function EMAs of any length into a checkpoint, combined from the run's snapshots (EDM2's post-hoc
EMA; `gen.runs.ema_snapshots`); ``gen ema info RUN`` says what a run stores and which lengths it
can reconstruct."""

from __future__ import annotations

import typer
from rich.table import Table

from gen.commands.app import app, err_console, out_console, parse_list
from gen.errors import GenError
from gen.power_ema import (
    MAX_PROFILE_ERROR,
    EmaLength,
    check_sigma_rel,
    equivalent_decay,
    exponent_of,
    reconstructable_range,
)

ema_app = typer.Typer(
    help="Post-hoc EMA (EDM2): reconstruct power-function EMAs of any length from a run's snapshots.",
    no_args_is_help=True,
)
app.add_typer(ema_app, name="ema")


def _lengths(text: str) -> list[float]:
    values = parse_list(text, float, "--sigma-rel") or []
    if not values:
        raise GenError("--sigma-rel: give one or more lengths, e.g. --sigma-rel 0.05,0.10")
    try:
        return [check_sigma_rel(s) for s in dict.fromkeys(values)]
    except ValueError as e:
        raise GenError(f"--sigma-rel: {e}") from None


@ema_app.command("reconstruct")
def reconstruct_command(
    run: str = typer.Argument(..., help="A run directory (its latest checkpoint) or a checkpoint directory."),
    sigma_rel: str = typer.Option(
        ..., "--sigma-rel", help="EMA lengths sigma_rel to reconstruct, comma-separated (e.g. 0.05,0.10)."
    ),
    max_error: float = typer.Option(
        MAX_PROFILE_ERROR,
        "--max-error",
        help="Refuse a length whose best combination's profile is further than this (relative L2).",
    ),
) -> None:
    """Write phema_<sigma_rel>.safetensors into a checkpoint: then --ema phema_<sigma_rel> samples it."""
    from gen.files import check_writable
    from gen.runs import checkpoint as ckpt
    from gen.runs import ema_snapshots
    from gen.runs.run_dir import load_checkpoint

    lengths = _lengths(sigma_rel)
    if not 0.0 < max_error < 1.0:
        raise GenError(f"--max-error must be in (0, 1), got {max_error}")
    checkpoint = load_checkpoint(run)
    fits = ema_snapshots.plan(checkpoint.path, lengths, max_error)  # every length checked first
    ema_snapshots.check_sources(checkpoint.path)
    check_writable(
        checkpoint.path, "the checkpoint", "make it writable: the reconstructed EMAs are written into it"
    )
    tracked = set(checkpoint.meta.ema_lengths)
    todo = [s for s in lengths if s not in tracked]
    found = ema_snapshots.sources(checkpoint.path)
    err_console.print(
        f"reconstructing {len(todo)} EMA length(s) at {checkpoint.path} (step {checkpoint.step}) from "
        f"{len(found)} stored profiles ({len({s.step for s in found})} steps)",
        markup=False,
    )
    written = ema_snapshots.save_reconstructed(
        checkpoint.path, ema_snapshots.reconstruct(checkpoint.path, todo, max_error) if todo else {}
    )
    table = Table(title=f"{checkpoint.path} (step {checkpoint.step})", title_justify="left")
    for column in ("sigma_rel", "exponent", "as decay", "profile error", "weights"):
        table.add_column(column, justify="left" if column == "weights" else "right")
    files = {p.name: p for p in written}
    for s in lengths:
        name = ckpt.weights_name(EmaLength(s))
        where = "tracked in training" if s in tracked else str(files[name])
        table.add_row(
            f"{s:g}", f"{exponent_of(s):.3f}", f"{equivalent_decay(s, checkpoint.step):.6f}",
            f"{fits[s].error:.2%}", where,
        )  # fmt: skip
    out_console.print(table)
    err_console.print(
        f"sample with: gen sample {run} --ema phema_{lengths[0]!r}; sweep with: gen eval {run} "
        f"--ema-length {','.join(repr(s) for s in lengths)}",
        markup=False,
    )


@ema_app.command("info")
def info_command(
    run: str = typer.Argument(..., help="A run directory (its latest checkpoint) or a checkpoint directory."),
) -> None:
    """What a run stores for post-hoc EMA, and the lengths its checkpoint can be given."""
    from gen.runs import ema_snapshots
    from gen.runs.run_dir import load_checkpoint

    checkpoint = load_checkpoint(run)
    summary = ema_snapshots.summary(checkpoint.run_dir)
    steps = summary["steps"]
    span = (
        f" (steps {steps[0]} to {steps[-1]}, lengths {summary['lengths']}, {'/'.join(summary['dtype'])})"
        if steps
        else ""
    )
    lines = [
        f"checkpoint: {checkpoint.path} (step {checkpoint.step})",
        f"tracked power EMAs: {', '.join(map(repr, checkpoint.meta.ema_lengths)) or 'none'}",
        f"exponential EMAs: {', '.join(map(repr, checkpoint.meta.ema_decays)) or 'none'}",
        f"snapshots: {summary['snapshots']}{span}, {summary['bytes'] / 2**20:.1f} MiB in "
        f"{ema_snapshots.snapshots_dir(checkpoint.run_dir)}",
    ]
    stored = [
        e
        for e in ema_snapshots.stored_lengths(checkpoint.path)
        if e.sigma_rel not in checkpoint.meta.ema_lengths
    ]
    lines.append(f"reconstructed in this checkpoint: {', '.join(map(str, stored)) or 'none'}")
    found = ema_snapshots.sources(checkpoint.path)
    if found:
        pairs = [(float(s.step), s.sigma_rel) for s in found]
        limits = reconstructable_range(pairs, float(checkpoint.step))
        if limits is not None:
            lo, hi = limits
            lines.append(
                f"reconstructable lengths at step {checkpoint.step} (profile error <= {MAX_PROFILE_ERROR:.0%}): "
                f"{lo:.3g} to {hi:.3g} (as exponential decays {equivalent_decay(lo, checkpoint.step):.6f} to "
                f"{equivalent_decay(hi, checkpoint.step):.6f})"
            )
    for line in lines:
        out_console.print(line, markup=False)
