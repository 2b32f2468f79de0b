"""``gen train``: a thin command over :func:`gen.train`."""

from __future__ import annotations

from pathlib import Path

import typer

from gen.commands.app import app, err_console
from gen.recipe import load_recipe
from gen.training.engine import train


@app.command("train")
def train_command(
    recipe: str = typer.Argument(..., help="The recipe file."),
    overrides: list[str] = typer.Argument(None, help="SECTION.KEY=VALUE overrides (values are TOML)."),
    run_dir: str | None = typer.Option(
        None, "--run-dir", help="Run directory [default: runs/<recipe name>]."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from the latest checkpoint in the run directory."
    ),
) -> None:
    """Train a model. Under torchrun (`torchrun --nproc_per_node=N -m gen train ...`) every process joins."""
    resolved = load_recipe(recipe, overrides or [])
    train(resolved, run_dir or Path("runs") / Path(recipe).stem, resume=resume, console=err_console)
