"""``gen train``: a thin command over `gen.train`.

``gen train RECIPE [--run-dir RUN]`` starts a run (or continues it with ``--resume``); ``gen train RUN
--resume`` continues the run directory ``RUN`` from its own ``recipe.toml``, so that nobody has to
remember which recipe and overrides started it. Overrides still apply (``train.steps=2000`` to train
longer).
"""

from __future__ import annotations

from pathlib import Path

import typer

from gen.commands.app import app, err_console
from gen.errors import GenError


def recipe_and_run_dir(recipe: str, run_dir: str | None) -> tuple[Path, Path]:
    """The recipe file and the run directory of ``gen train RECIPE_OR_RUN [--run-dir RUN]``.

    A directory that holds a ``recipe.toml`` is a run directory: its recipe is read and it is trained in
    place. Anything else is a recipe file, trained into ``--run-dir`` (default ``runs/<recipe name>``).
    """
    from gen.runs.run_dir import RunDir

    given = Path(recipe)
    run = RunDir(given)
    if given.is_dir() and run.recipe_file.is_file():
        if run_dir is not None and Path(run_dir).resolve() != given.resolve():
            raise GenError(
                f"{given} is a run directory, trained in place: drop --run-dir {run_dir}, or give a recipe "
                f"file (e.g. {run.recipe_file}) to start another run in {run_dir}"
            )
        return run.recipe_file, given
    return given, Path(run_dir) if run_dir else Path("runs") / given.stem


@app.command("train")
def train_command(
    recipe: str = typer.Argument(
        ..., help="The recipe file, or a run directory (it holds recipe.toml) to continue with --resume."
    ),
    overrides: list[str] = typer.Argument(None, help="SECTION.KEY=VALUE overrides (values are TOML)."),
    run_dir: str | None = typer.Option(
        None, "--run-dir", help="Run directory (default: runs/<recipe name>, or RECIPE when it is one)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from the latest checkpoint in the run directory."
    ),
    resume_step: int | None = typer.Option(
        None,
        "--resume-step",
        min=0,
        help="Continue from the checkpoint of this step (implies --resume); later checkpoints and EMA "
        "snapshots must be moved out of the run directory first.",
    ),
) -> None:
    """Train a model. Under torchrun (`torchrun --nproc_per_node=N -m gen train ...`) every process joins."""
    from gen.recipe import load_recipe
    from gen.training.engine import train

    recipe_file, run = recipe_and_run_dir(recipe, run_dir)
    resolved = load_recipe(recipe_file, overrides or [])
    train(resolved, run, resume=resume, resume_step=resume_step, console=err_console)
