"""``gen recipe show`` and ``gen recipe check``."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from gen.commands.app import app
from gen.errors import GenError, RecipeError
from gen.version import __version__

recipe_app = typer.Typer(help="Inspect and check recipes.", no_args_is_help=True)
app.add_typer(recipe_app, name="recipe")


@recipe_app.command("show")
def recipe_show(
    recipe: str = typer.Argument(..., help="The recipe file."),
    overrides: list[str] = typer.Argument(None, help="SECTION.KEY=VALUE overrides (values are TOML)."),
) -> None:
    """Print the fully resolved recipe (extends, overrides and defaults applied) as TOML."""
    from gen.recipe import load_recipe, recipe_to_toml

    resolved = load_recipe(recipe, overrides or [])
    typer.echo(recipe_to_toml(resolved, header=f"resolved from {recipe} by gen {__version__}"), nl=False)


def is_override(arg: str) -> bool:
    """``SECTION.KEY=VALUE`` (an override of every recipe checked), not a file name."""
    key, eq, _ = arg.partition("=")
    return bool(eq) and re.fullmatch(r"[A-Za-z_][\w.]*", key) is not None and not Path(arg).exists()


@recipe_app.command("check")
def recipe_check(
    recipes: list[str] = typer.Argument(
        ...,
        help="Recipe files to validate, then SECTION.KEY=VALUE overrides applied to each, as gen train "
        "takes them (values are TOML).",
    ),
    world_size: int = typer.Option(
        1, "--world-size", min=1, help="Processes the run will have (torchrun's nproc x nodes)."
    ),
    data_check: bool = typer.Option(
        True,
        "--data-check/--no-data-check",
        help="Check that the local data paths ([data] root, urls...) exist; --no-data-check for a recipe "
        "checked away from its data.",
    ),
) -> None:
    """Validate recipes as `gen train` would before reading data; one line per file, exit 2 if any is
    wrong, and a warning line for what is legal but surely not meant."""
    from gen.recipe import load_recipe
    from gen.training.plan import check_recipe

    overrides = [arg for arg in recipes if is_override(arg)]
    files = [arg for arg in recipes if not is_override(arg)]
    if not files:
        raise GenError(
            "gen recipe check: give a recipe file before the overrides (gen recipe check FILE KEY=VALUE)"
        )
    failed = 0
    for path in files:
        try:
            recipe = load_recipe(
                path, overrides
            )  # its errors name the file (and the section and key) already
            try:
                plan = check_recipe(recipe, world_size=world_size, data=data_check)
            except RecipeError as e:
                raise (
                    e if e.file else RecipeError(e.message, file=path, section=e.section, key=e.key)
                ) from None
            except GenError as e:
                raise GenError(f"{path}: {e}") from None
        except GenError as e:
            failed += 1
            typer.echo(f"error: {e}", err=True)
        else:
            typer.echo(f"ok: {path}")
            if plan is not None and (warning := plan.warning()):
                typer.echo(f"warning: {path}: {warning}", err=True)
    if failed:
        raise typer.Exit(2)
