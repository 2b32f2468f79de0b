"""The ``gen`` command line: thin Typer commands over the library, one module per command group.

Importing this package builds the app: each command module registers its commands on
`gen.commands.app.app`, then the plugins add theirs through ``register_commands``.
"""

from gen.commands import ema, eval, export, inspect, invert, recipe, report, sample, train  # noqa: F401 - each registers its commands
from gen.commands.app import app
from gen.plugins import get_host

get_host().add_commands(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="gen")


__all__ = ["app", "main"]
