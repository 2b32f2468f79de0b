"""The root ``gen`` Typer app. Every user error (`gen.GenError`) is printed as one ``error: ...``
line on stderr with exit code 2; ``gen --debug ...`` (or ``GEN_DEBUG=1``) shows the traceback instead.

Building the app imports no torch (``tests/core/commands/test_cli_startup.py``): a command module
declares its options at the top and imports what does the work inside the command, so that ``gen
--help`` and ``gen COMMAND --help`` answer at once.
"""

from __future__ import annotations

import errno
import itertools
import os
import sys
from typing import Any

import typer
import typer.core
from rich.console import Console

from gen.errors import GenError
from gen.plugins import get_host
from gen.threads import configure_threads
from gen.version import __version__

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


#: ``ctx.meta`` key: the rest of the command line only asks for help (see `GenGroup.resolve_command`).
HELP_ONLY = "gen.help_only"


class GenGroup(typer.core.TyperGroup):
    """The root command group: turns GenError into one line and exit code 2."""

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> tuple[str | None, Any, list[str]]:
        """Also notes in ``ctx.meta`` whether the command will only print its help (a help option before
        any ``--``, or a group without a subcommand), which the root callback runs before it knows."""
        name, command, rest = super().resolve_command(ctx, args)
        words = list(itertools.takewhile(lambda a: a != "--", rest))
        ctx.meta[HELP_ONLY] = any(w in ctx.help_option_names for w in words) or (
            isinstance(command, typer.core.TyperGroup) and not words
        )
        return name, command, rest

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GenError as e:
            if _debug(ctx):
                raise
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except OSError as e:
            if _debug(ctx) or e.errno not in _DISK_ERRORS:
                raise
            typer.echo(f"error: {_disk_error(e)}", err=True)  # a full or read-only disk no check foresaw
            raise typer.Exit(2) from None


#: errno values of an OSError that is the disk's or the folder's, not the program's: one line, not a traceback.
_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _disk_error(error: OSError) -> str:
    """``PATH: REASON; FIX, then run the command again``."""
    where = f"{error.filename}: " if error.filename else ""
    fixes = {errno.ENOSPC: "free space", errno.EDQUOT: "free space", errno.EROFS: "make it writable"}
    fix = fixes.get(error.errno, "give yourself access to it")  # EACCES, EPERM
    return f"{where}{error.strerror or error}; {fix} (or choose another path), then run the command again"


def _debug(ctx: typer.Context) -> bool:
    return bool((ctx.obj or {}).get("debug")) or os.environ.get("GEN_DEBUG", "") not in ("", "0")


app = typer.Typer(
    cls=GenGroup,
    help="Train and sample denoising generative models of images (JiT, DiT), extended by plugins.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        import torch

        typer.echo(f"gen {__version__} (torch {torch.__version__}, python {sys.version.split()[0]})")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        help="CPU threads for torch (default: OMP_NUM_THREADS, else the CPUs this process may use).",
    ),
) -> None:
    ctx.obj = {"debug": debug}
    if not ctx.meta.get(HELP_ONLY):  # setting torch's threads imports torch: not for a help text
        configure_threads(threads)
    for err in get_host().errors:
        err_console.print(f"warning: plugin {err.plugin!r}: {err.error}", markup=False)


def parse_list(text: str | None, convert: Any, option: str) -> list[Any] | None:
    """``"2.5,2.9"`` -> [2.5, 2.9] (None stays None); a bad item is a one-line error naming the option."""
    if text is None:
        return None
    try:
        return [convert(t.strip()) for t in text.split(",") if t.strip()]
    except ValueError:
        raise GenError(f"{option} {text!r}: expected a comma-separated list, e.g. {option} 1,2,3") from None


def parse_interval(text: str) -> tuple[float, float]:
    """``"0.1,1.0"`` -> (0.1, 1.0)."""
    values = parse_list(text, float, "--interval") or []
    if len(values) != 2:
        raise GenError(f"--interval {text!r}: give LOW,HIGH, e.g. --interval 0.1,1.0")
    return values[0], values[1]


def parse_grid(text: str) -> str | dict[str, Any]:
    """``--grid``: a time grid's name (``edm``), or a TOML inline table with its options
    (``{ name = "shifted", shift = 2.0 }``), as ``[sample] grid`` takes either."""
    text = text.strip()
    if not text.startswith("{"):
        return text
    from gen.recipe import tomllib

    try:
        return tomllib.loads(f"grid = {text}")["grid"]
    except tomllib.TOMLDecodeError as e:
        raise GenError(
            f"--grid {text!r}: not a TOML inline table ({e}); e.g. --grid '{{ name = \"shifted\", shift = 2.0 }}'"
        ) from None


__all__ = [
    "GenGroup",
    "app",
    "err_console",
    "out_console",
    "parse_interval",
    "parse_list",
]
