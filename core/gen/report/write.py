"""``gen report``'s work: read the runs, turn them into charts and tables, draw the charts with
matplotlib and write the page, renamed into place whole (`gen.files.write_atomic`), so that a failure
leaves an earlier report as it was."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from gen.errors import GenError
from gen.files import check_writable, write_atomic
from gen.plots import COLOURS, figure_png, plot_panels
from gen.report.content import Chart
from gen.report.page import (
    chart_html,
    empty,
    esc,
    page_html,
    provenance_html,
    recipe_html,
    slider_html,
    table_html,
)
from gen.report.recipes import recipe_differences
from gen.report.run_logs import RunLogs, check_run_dir, read_runs
from gen.report.sweeps import SweepGroup, sweep_groups
from gen.report.training import eval_charts, training_charts
from gen.version import __version__

#: The report's file in a run directory when ``--out`` is not given (one run).
REPORT_NAME = "report.html"


@attrs.frozen
class Report:
    """A written report: its file, what it shows, and what was skipped."""

    path: Path
    charts: int
    grids: int
    notes: list[str]


def output_path(runs: Sequence[Path], out: Path | None) -> Path:
    """``out``, or ``RUN/report.html`` for one run; checked before any work (a folder, an unwritable one)."""
    if out is None:
        if len({p.resolve() for p in runs}) > 1:
            raise GenError(
                "several runs: give the report's file, e.g. --out compare.html (with one run it goes to "
                "RUN/report.html)"
            )
        out = check_run_dir(runs[0]).path / REPORT_NAME
    if out.is_dir():
        raise GenError(f"--out {out} is a folder; give a file, e.g. --out {out / REPORT_NAME}")
    check_writable(out.parent, "the report's folder", "make it writable, or give another --out")
    return out


def render_charts(charts: Sequence[Chart], colours: dict[str, str], level: int = 3) -> list[str]:
    """Each chart drawn (PNG) into its HTML figure; a run is the same colour in every chart."""
    out = []
    for chart in charts:
        figure = plot_panels(
            chart.panels, columns=chart.columns, panel_size=chart.panel_size, colours=colours
        )
        out.append(chart_html(chart, figure_png(figure), level))
    return out


def sweeps_html(groups: Sequence[SweepGroup], colours: dict[str, str]) -> list[str]:
    """Each group of comparable ``gen eval`` records under its heading: its charts, then its table."""
    return [
        f"<h3>{esc(g.title)}</h3>" + "".join(render_charts(g.charts, colours, level=4)) + table_html(g.table)
        for g in groups
    ]


def _section(parts: Sequence[str], when_empty: str) -> str:
    return "".join(parts) if parts else empty(when_empty)


def build_page(runs: Sequence[RunLogs]) -> tuple[str, int]:
    """The report's HTML and its number of charts."""
    colours = {r.name: COLOURS[i % len(COLOURS)] for i, r in enumerate(runs)}
    training = training_charts(runs)
    evaluation, eval_tables = eval_charts(runs)
    sweeps = sweep_groups(runs)
    names = ", ".join(r.name for r in runs)
    no_metrics = "no run has logged metrics yet (metrics.jsonl: a line every train.log_every steps)"
    sections = [
        ("training", "Training", _section(render_charts(training, colours), no_metrics)),
        (
            "evaluation",
            "Evaluation during training",
            _section(
                render_charts(evaluation, colours) + [table_html(t) for t in eval_tables],
                "no scores during training (eval.jsonl): set train.eval_samples (and train.eval_every)",
            ),
        ),
        (
            "sweeps",
            "gen eval sweeps",
            _section(
                sweeps_html(sweeps, colours),
                "no gen eval results (RUN/eval/results.jsonl): e.g. gen eval RUN --metric data --cfg 1,2,3",
            ),
        ),
        ("samples", "Samples", "".join(slider_html(r) for r in runs)),
    ]
    differences = recipe_differences(runs)
    recipes = [table_html(differences)] if differences is not None else []
    recipes += [recipe_html(r, open_=len(runs) == 1) for r in runs]
    sections += [
        ("recipe", "Recipe", "".join(recipes)),
        ("provenance", "Provenance", "".join(provenance_html(r) for r in runs)),
    ]
    header = [
        "Runs: " + ", ".join(f"<b>{esc(r.name)}</b> ({esc(r.run.path)})" for r in runs),
        f"Written {esc(time.strftime('%Y-%m-%d %H:%M:%S %z'))} by gen {esc(__version__)} (gen report).",
    ]
    notes = [n for r in runs for n in r.notes]
    page = page_html(f"gen report: {names}", header, sections, notes)
    return page, len(training) + len(evaluation) + sum(len(g.charts) for g in sweeps)


def write_report(runs: Sequence[str | Path], out: str | Path | None = None) -> Report:
    """Write the report of ``runs`` (run directories) to ``out`` (default: ``RUN/report.html`` for one
    run; required for several) and return what it holds. Every input is read, and the output checked,
    before anything is drawn; the file is renamed into place whole."""
    if not runs:
        raise GenError("give at least one run directory")
    paths = [Path(r) for r in runs]
    logs = read_runs(paths)
    path = output_path(paths, Path(out) if out is not None else None)
    page, charts = build_page(logs)
    path.parent.mkdir(parents=True, exist_ok=True)
    # ASCII with character references: the same bytes whatever the locale's encoding of write_atomic.
    write_atomic(path, page.encode("ascii", "xmlcharrefreplace").decode("ascii"))
    notes = [n for r in logs for n in r.notes]
    return Report(path=path, charts=charts, grids=sum(len(r.grids) for r in logs), notes=notes)


__all__ = ["REPORT_NAME", "Report", "build_page", "output_path", "render_charts", "write_report"]
