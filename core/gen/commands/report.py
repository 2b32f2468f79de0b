"""``gen report RUN [RUN ...]``: one self-contained HTML file of one or several runs (curves,
evaluations, ``gen eval`` sweeps, sample grids, recipe and provenance); the work is `gen.report`."""

from __future__ import annotations

import typer

from gen.commands.app import app, err_console, out_console


@app.command("report")
def report_command(
    runs: list[str] = typer.Argument(..., help="Run directories; several are overlaid on the same axes."),
    out: str | None = typer.Option(
        None,
        "--out",
        "-o",
        help="The HTML file to write (default: RUN/report.html for one run; needed for several).",
    ),
) -> None:
    """Write one HTML file (opens offline, no server) with a run's curves, scores, sweeps and grids."""
    from gen.report.write import write_report  # matplotlib and torch: only when a report is written

    report = write_report(runs, out)
    for note in report.notes:
        err_console.print(f"warning: {note}", markup=False)
    out_console.print(
        f"wrote {report.path} ({report.charts} chart(s), {report.grids} sample grid(s))", markup=False
    )
