"""``gen plugins`` and ``gen components``: what is installed and what each component takes."""

from __future__ import annotations

import json
from typing import Any

import attrs
import typer
from rich.markup import escape
from rich.table import Table

from gen.commands.app import app, out_console
from gen.config import fields_of, type_name
from gen.plugins import get_host, get_registry
from gen.registry import KINDS


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
    name: str | None = typer.Argument(
        None, help="One component of that kind (e.g. gen components backbone jit)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """List registered components with every config field: type, default and doc."""
    kinds = [kind] if kind else list(KINDS)
    data: dict[str, list[dict[str, Any]]] = {}
    for k in kinds:
        registry = get_registry(k)
        data[k] = []
        for c in [registry.get(name)] if name is not None else registry:
            fields = [
                {"name": f.name, "type": type_name(f.type), "default": _default_text(f.default), "doc": f.doc}
                for f in (fields_of(c.config) if c.config else [])
            ]
            entry = {"name": c.name, "plugin": c.plugin, "description": c.description, "fields": fields}
            if k == "sampler":
                entry["process"] = c.process  # which process's models it samples (None: unsaid)
            data[k].append(entry)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for k, comps in data.items():
        for c in comps:
            serves = f", process {c['process']}" if c.get("process") else ""
            table = Table(
                title=escape(f"{k} {c['name']!r} ({c['plugin']}{serves}): {c['description']}"),
                title_justify="left",
            )
            for col in ("field", "type", "default", "doc"):
                table.add_column(col, overflow="fold")
            for f in c["fields"]:
                table.add_row(*(escape(f[k]) for k in ("name", "type", "default", "doc")))
            out_console.print(table)
