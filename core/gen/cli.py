"""The ``gen`` command line (Typer). Plugins add commands through the ``register_commands`` hook.

Every user error (:class:`gen.GenError`) is printed as one ``error: ...`` line on stderr with exit code
2; ``gen --debug ...`` (or ``GEN_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import attrs
import typer
import typer.core
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import gen
from gen.config import fields_of, type_name
from gen.errors import GenError
from gen.plugins import get_host
from gen.registry import KINDS, get_registry

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


class GenGroup(typer.core.TyperGroup):
    """The root command group: turns GenError into one line and exit code 2."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GenError as e:
            if _debug(ctx):
                raise
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None


def _debug(ctx: typer.Context) -> bool:
    return bool((ctx.obj or {}).get("debug")) or os.environ.get("GEN_DEBUG", "") not in ("", "0")


app = typer.Typer(
    cls=GenGroup,
    help="Train and sample denoising generative models of images (JiT, DiT), extended by plugins.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
recipe_app = typer.Typer(help="Inspect and check recipes.", no_args_is_help=True)
app.add_typer(recipe_app, name="recipe")


def _version(value: bool) -> None:
    if value:
        import torch

        typer.echo(f"gen {gen.__version__} (torch {torch.__version__}, python {sys.version.split()[0]})")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    ctx.obj = {"debug": debug}
    for err in get_host().errors:
        err_console.print(f"warning: plugin {err.plugin!r}: {err.error}", markup=False)


# -- gen plugins / gen components -----------------------------------------------------------------


@app.command("plugins")
def plugins_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the loaded plugins, their versions, hooks and components (and plugins that failed)."""
    host = get_host()
    infos = host.plugins()
    if as_json:
        data = {
            "plugins": [attrs.asdict(p) for p in infos],
            "errors": [attrs.asdict(e) for e in host.errors],
        }
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title="gen plugins")
    for col in ("plugin", "version", "hooks", "components"):
        table.add_column(col)
    for p in infos:
        comps = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in p.components.items())
        table.add_row(p.name, p.version or "-", ", ".join(p.hooks), comps)
    out_console.print(table)
    for e in host.errors:
        out_console.print(f"[red]failed[/red] {e.plugin}: {e.error}", markup=True)


def _default_text(default: Any) -> str:
    if default is attrs.NOTHING:
        return "(required)"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return "(default)"
    return repr(default)


@app.command("components")
def components_command(
    kind: str | None = typer.Argument(None, help=f"One of: {', '.join(KINDS)}."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """List registered components with every config field: type, default and doc."""
    kinds = [kind] if kind else list(KINDS)
    data: dict[str, list[dict[str, Any]]] = {}
    for k in kinds:
        registry = get_registry(k)
        data[k] = []
        for c in registry:
            fields = [
                {"name": f.name, "type": type_name(f.type), "default": _default_text(f.default), "doc": f.doc}
                for f in (fields_of(c.config) if c.config else [])
            ]
            data[k].append(
                {"name": c.name, "plugin": c.plugin, "description": c.description, "fields": fields}
            )
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for k, comps in data.items():
        for c in comps:
            table = Table(
                title=f"{k} {c['name']!r} ({c['plugin']}): {c['description']}", title_justify="left"
            )
            for col in ("field", "type", "default", "doc"):
                table.add_column(col, overflow="fold")
            for f in c["fields"]:
                table.add_row(*(escape(f[k]) for k in ("name", "type", "default", "doc")))
            out_console.print(table)


# -- gen recipe ------------------------------------------------------------------------------------


@recipe_app.command("show")
def recipe_show(
    recipe: str = typer.Argument(..., help="The recipe file."),
    overrides: list[str] = typer.Argument(None, help="SECTION.KEY=VALUE overrides (values are TOML)."),
) -> None:
    """Print the fully resolved recipe (extends, overrides and defaults applied) as TOML."""
    from gen.recipe import load_recipe, recipe_to_toml

    resolved = load_recipe(recipe, overrides or [])
    typer.echo(recipe_to_toml(resolved, header=f"resolved from {recipe} by gen {gen.__version__}"), nl=False)


@recipe_app.command("check")
def recipe_check(recipes: list[str] = typer.Argument(..., help="Recipe files to validate.")) -> None:
    """Validate recipes; print one line per file and exit 2 if any is wrong."""
    from gen.recipe import load_recipe

    failed = 0
    for path in recipes:
        try:
            load_recipe(path)
        except GenError as e:
            failed += 1
            typer.echo(f"error: {e}", err=True)
        else:
            typer.echo(f"ok: {path}")
    if failed:
        raise typer.Exit(2)


# -- gen train -------------------------------------------------------------------------------------


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
    from pathlib import Path

    from gen.recipe import load_recipe
    from gen.training.engine import train

    resolved = load_recipe(recipe, overrides or [])
    train(resolved, run_dir or Path("runs") / Path(recipe).stem, resume=resume, console=err_console)


# -- gen sample / gen eval (defined in gen.generate and gen.sweep) ------------------------------------

from gen.generate import sample_command  # noqa: E402
from gen.sweep import eval_app  # noqa: E402

app.command("sample")(sample_command)
app.add_typer(eval_app, name="eval")


get_host().add_commands(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="gen")


if __name__ == "__main__":  # pragma: no cover
    main()
