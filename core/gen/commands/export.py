"""``gen export``: one set of a trained model's weights as a folder a model hub takes as it is (see
`gen.export.writer`)."""

from __future__ import annotations

import typer

from gen.commands.app import app, err_console


@app.command("export")
def export_command(
    run: str = typer.Argument(
        ..., help="A run directory (its latest checkpoint), a checkpoint directory, or an earlier export."
    ),
    out: str = typer.Argument(..., help="The folder to write (it must not exist, unless --force)."),
    ema: str = typer.Option(
        "default",
        "--ema",
        help="Which weights: default (the first EMA, as gen sample picks it), a decay (0.9999), a power EMA "
        "(phema_0.05) or none (the raw weights).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace OUT (an earlier export or an empty folder) once the new one is complete.",
    ),
    format_name: str = typer.Option(
        "gen",
        "--format",
        help="gen (gen.load and gen sample read it), or an exporter a plugin registers: diffusers (a "
        "DiTPipeline folder, for DiT models).",
    ),
    override: list[str] = typer.Option(
        [],
        "--set",
        "-o",
        help="sample.KEY=VALUE: the exported model's sampling defaults, e.g. sample.cfg=1.5 (repeatable).",
    ),
) -> None:
    """Export a trained model: weights, config and a model card, as a model hub takes a folder."""
    from gen.export.writer import export_model

    done = export_model(run, out, ema=ema, format=format_name, force=force, overrides=override)
    source = done.source
    err_console.print(
        f"exported {source.checkpoint.path} (step {source.step}, ema {source.ema_name}) as {done.format}: "
        f"{done.path}",
        markup=False,
    )
    grid = done.grid or "none of that step in the run"
    err_console.print(
        f"model card: {done.path}/README.md (sample grid: {grid}; {done.scores} score table(s))", markup=False
    )
    err_console.print(
        f"to publish it (huggingface_hub, after hf auth login): hf upload USER/{done.path.name} {done.path} .",
        markup=False,
    )
