"""The report as one HTML page that needs nothing else: images are ``data:`` URIs, the style and the
few lines of script (the sample grids' slider) are inline, and nothing is fetched from a network."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from typing import Any

from PIL import Image

from gen.report.content import Chart, Table, cell
from gen.report.run_logs import Grid, RunLogs

#: Grids wider than this are shown downscaled (as JPEG): a 2048 px grid of 256 px images at every
#: checkpoint would make the page hundreds of MB; the full files stay in RUN/samples.
MAX_GRID_WIDTH = 1024
#: At most this many grids per run in the slider (evenly spaced, the first, the last and final kept).
MAX_GRIDS = 60

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1280px;
       padding: 0 24px 48px; color: #1a1a1a; background: #fff; line-height: 1.45; }
header { border-bottom: 1px solid #ddd; margin-bottom: 8px; }
nav a { margin-right: 14px; }
h2 { border-bottom: 1px solid #eee; padding-bottom: 4px; margin-top: 36px; }
figure { margin: 16px 0 24px; }
figure.chart img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.table { overflow-x: auto; margin: 12px 0 24px; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f5f5f5; } td:first-child, th:first-child, table.text td { text-align: left; }
caption { text-align: left; color: #555; padding: 2px 0; }
pre { background: #f7f7f7; padding: 12px; overflow-x: auto; font-size: 0.85em; }
.notes { background: #fff8e1; border: 1px solid #f0d890; padding: 8px 16px; }
.empty { color: #666; font-style: italic; }
.slider input { width: min(640px, 100%); vertical-align: middle; }
.slider output { margin-left: 12px; font-weight: 600; }
.slider img { max-width: 100%; height: auto; image-rendering: pixelated; border: 1px solid #eee; }
"""

#: Shows the grid a slider points at; without script the page shows each run's last grid.
SCRIPT = """
document.querySelectorAll(".slider").forEach(function (slider) {
  var input = slider.querySelector("input"), label = slider.querySelector("output");
  var frames = slider.querySelectorAll("figure.frame");
  function show() {
    frames.forEach(function (frame, i) { frame.hidden = i !== Number(input.value); });
    label.textContent = frames[Number(input.value)].dataset.label;
  }
  input.addEventListener("input", show);
  show();
});
"""


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def grid_uri(grid: Grid) -> tuple[str, int, str]:
    """(the grid as a data URI, the width to show it at, a note when it is shown smaller than its file).

    A small grid (32 px images) is shown two or three times its size, pixels kept square (CSS
    ``pixelated``); a large one is downscaled to `MAX_GRID_WIDTH`."""
    data = grid.path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        if image.width <= MAX_GRID_WIDTH:
            scale = max(1, min(3, 768 // max(image.width, 1)))
            return data_uri(data, Image.MIME.get(image.format or "PNG", "image/png")), image.width * scale, ""
        size = (MAX_GRID_WIDTH, max(1, round(image.height * MAX_GRID_WIDTH / image.width)))
        small = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=90)
    return data_uri(out.getvalue(), "image/jpeg"), size[0], f"shown at {size[0]} px; the file is {grid.path}"


def chart_html(chart: Chart, png: bytes, level: int = 3) -> str:
    """The chart's figure: its heading (``<h{level}>``), the PNG, the caption."""
    caption = f"<figcaption>{esc(chart.caption)}</figcaption>" if chart.caption else ""
    return (
        f'<figure class="chart" id="{esc(chart.id)}"><h{level}>{esc(chart.title)}</h{level}>'
        f'<img alt="{esc(chart.title)}" src="{data_uri(png, "image/png")}">{caption}</figure>'
    )


def table_html(table: Table, kind: str = "") -> str:
    """The table; ``kind`` a CSS class (``text``: cells of text, aligned left)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    caption = f"<caption>{esc(table.caption)}</caption>" if table.caption else ""
    return (
        f'<div class="table"><table class="{esc(kind)}">{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>'


def chosen_grids(grids: Sequence[Grid]) -> list[Grid]:
    """At most `MAX_GRIDS`, evenly spaced, keeping the first and the last two (the last step, final)."""
    if len(grids) <= MAX_GRIDS:
        return list(grids)
    keep = {round(i * (len(grids) - 3) / (MAX_GRIDS - 3)) for i in range(MAX_GRIDS - 2)}
    keep |= {len(grids) - 2, len(grids) - 1}
    return [g for i, g in enumerate(grids) if i in keep]


def slider_html(run: RunLogs) -> str:
    """The run's sample grids under a slider (the last one shown first)."""
    if not run.grids:
        return f"<h3>{esc(run.name)}</h3>" + empty(f"no sample grids in {run.run.samples_dir} yet")
    grids = chosen_grids(run.grids)
    frames = []
    for i, grid in enumerate(grids):
        uri, width, note = grid_uri(grid)
        hidden = "" if i == len(grids) - 1 else " hidden"
        caption = f"<figcaption>{esc(note)}</figcaption>" if note else ""
        frames.append(
            f'<figure class="frame" data-label="{esc(grid.label)}"{hidden}>'
            f'<img alt="{esc(run.name)}: samples at {esc(grid.label)}" width="{width}" src="{uri}">'
            f"{caption}</figure>"
        )
    left_out = len(run.grids) - len(grids)
    more = f" ({left_out} more in {run.run.samples_dir})" if left_out else ""
    return (
        f'<div class="slider" data-run="{esc(run.name)}"><h3>{esc(run.name)}</h3>'
        f'<p><input type="range" min="0" max="{len(grids) - 1}" value="{len(grids) - 1}" step="1" '
        f'aria-label="{esc(run.name)}: sample grid"><output>{esc(grids[-1].label)}</output>'
        f" {len(grids)} grid(s){esc(more)}</p>{''.join(frames)}</div>"
    )


def recipe_html(run: RunLogs, open_: bool) -> str:
    state = " open" if open_ else ""
    return (
        f"<details{state}><summary>{esc(run.name)}: {esc(run.run.recipe_file)}</summary>"
        f"<pre>{esc(run.recipe)}</pre></details>"
    )


def provenance_html(run: RunLogs) -> str:
    """One column per start or resume of the run, one row per key."""
    if not run.provenance:
        return f"<h3>{esc(run.name)}</h3>" + empty(f"no provenance ({run.run.provenance_file} is missing)")
    keys = list(dict.fromkeys(k for line in run.provenance for k in line))
    heads = ["started" if line.get("resumed_from_step") is None else "resumed" for line in run.provenance]

    def show(value: Any) -> str:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return " ".join(value)  # argv reads as the command line it was
        return json.dumps(value, sort_keys=True) if isinstance(value, dict) else cell(value)

    table = Table(
        columns=["", *heads],
        rows=[[k, *(show(line.get(k)) for line in run.provenance)] for k in keys],
    )
    return f"<h3>{esc(run.name)}</h3>{table_html(table, 'text')}"


def notes_html(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return f'<section id="notes" class="notes"><h2>Notes</h2><ul>{items}</ul></section>'


def page_html(
    title: str, header: Sequence[str], sections: Sequence[tuple[str, str, str]], notes: Sequence[str]
) -> str:
    """The whole page: ``header`` lines (HTML), the notes, then ``sections`` as (id, heading, HTML body)."""
    nav = " ".join(f'<a href="#{esc(sid)}">{esc(heading)}</a>' for sid, heading, _ in sections)
    lines = "".join(f"<p>{line}</p>" for line in header)
    body = "".join(
        f'<section id="{esc(sid)}"><h2>{esc(heading)}</h2>{inner}</section>'
        for sid, heading, inner in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No request may leave the page: a report is read offline, and a stray URL would be a leak.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{esc(title)}</h1>{lines}<nav>{nav}</nav></header>"
        f"{notes_html(notes)}{body}<script>{SCRIPT}</script></body></html>\n"
    )


__all__ = [
    "MAX_GRIDS",
    "MAX_GRID_WIDTH",
    "chart_html",
    "chosen_grids",
    "data_uri",
    "empty",
    "esc",
    "grid_uri",
    "notes_html",
    "page_html",
    "provenance_html",
    "recipe_html",
    "slider_html",
    "table_html",
]
