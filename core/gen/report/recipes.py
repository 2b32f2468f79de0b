"""What tells several runs' recipes apart: the keys whose values differ, side by side."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from gen.report.content import Table, cell
from gen.report.run_logs import RunLogs

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-3}}`` -> ``{"train.lr": 1e-3}``; lists and values stay whole."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def recipe_differences(runs: Sequence[RunLogs]) -> Table | None:
    """The recipe keys whose values differ between the runs (None for one run, or when a recipe is not
    valid TOML: its text is still shown as it is)."""
    if len(runs) < 2:
        return None
    try:
        flat = [flatten(tomllib.loads(r.recipe)) for r in runs]
    except tomllib.TOMLDecodeError:
        return None
    keys = list(dict.fromkeys(k for f in flat for k in f))
    missing = object()
    differ = [
        k for k in keys if len({json.dumps(f.get(k, missing), sort_keys=True, default=str) for f in flat}) > 1
    ]
    return Table(
        columns=["key", *(r.name for r in runs)],
        rows=[[k, *(cell(f[k]) if k in f else "(not set)" for f in flat)] for k in differ],
        caption="The recipe keys whose values differ between the runs."
        if differ
        else "The runs' recipes are the same.",
    )


__all__ = ["flatten", "recipe_differences"]
