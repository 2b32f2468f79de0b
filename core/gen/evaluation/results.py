"""The results of ``gen eval``: the resumable log of every scored combination, and the table of one
invocation (printed, and saved as ``.json`` and ``.txt``)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.table import Table

from gen.files import append_line, write_atomic
from gen.sampling.settings import SETTING_COLUMNS


@attrs.frozen
class ResultLog:
    """``RUN/eval/results.jsonl``: one JSON line per scored (checkpoint, settings, n, seed, metric key)."""

    path: Path

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill: that combination runs again
        return out

    def done(self) -> dict[str, dict[str, Any]]:
        """The latest result of every key (as canonical JSON) in the log."""
        return {
            json.dumps(r["key"], sort_keys=True): r for r in self.records() if "key" in r and "result" in r
        }

    def append(self, record: dict[str, Any]) -> None:
        append_line(self.path, json.dumps(record))  # one write: two gen eval of one run never interleave


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render_table(rows: list[dict[str, Any]], best: int | None, title: str, metrics: dict[str, str]) -> Table:
    """The rich table of a sweep; the best row is marked with ``*`` and bold.

    ``metrics`` maps result keys to column titles; a row's ``screen_<key>`` values, when present, get
    columns of their own.
    """
    table = Table(title=title, title_justify="left")
    setting_cols = [c for c in SETTING_COLUMNS if any(c in r for r in rows)]
    screen_cols = [k for k in metrics if any(f"screen_{k}" in r for r in rows)]
    cols = ["", *setting_cols, *(f"screen {metrics[k]}" for k in screen_cols), "images", *metrics.values()]
    for c in cols:
        table.add_column(
            c, justify="right" if c not in ("", "ema", "guide", "interval", "sampler", "grid") else "left"
        )
    for i, r in enumerate(rows):
        cells = ["*" if i == best else ""]
        for c in setting_cols:
            v = r.get(c)
            digits = 5 if c == "as_decay" else 3  # 0.99992 next to 0.9999
            cells.append(",".join(_fmt(x, 2) for x in v) if isinstance(v, list) else _fmt(v, digits))
        cells += [_fmt(r.get(f"screen_{k}")) for k in screen_cols]
        cells += [_fmt(r.get("num_images")), *(_fmt(r.get(k)) for k in metrics)]
        table.add_row(*cells, style="bold" if i == best else None)
    return table


def save_table(
    rows: list[dict[str, Any]],
    best: int | None,
    title: str,
    path: Path,
    extra: dict[str, Any],
    metrics: dict[str, str],
) -> None:
    """``path`` (.json: rows, best and context) and the same stem ``.txt`` (the table as text), each
    renamed into place whole (a kill leaves the previous file, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**extra, "rows": rows, "best": rows[best] if best is not None else None}
    write_atomic(path, json.dumps(data, indent=2))
    recorder = Console(record=True, width=160, file=io.StringIO())
    recorder.print(render_table(rows, best, title, metrics))
    write_atomic(path.with_suffix(".txt"), recorder.export_text())


__all__ = ["ResultLog", "render_table", "save_table"]
