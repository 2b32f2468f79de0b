"""``gen report`` through the CLI: the file it writes and its summary line; warnings for what it skipped;
bad input is one ``error:`` line with exit code 2, naming the path and the fix."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gen.commands import app

runner = CliRunner()


def fails(*args) -> str:
    """Run ``gen ARGS``, require exit code 2 and a single ``error:`` line; return it without the prefix."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


def write_run(path, metrics: list[str] | None = None):
    """A run directory with a recipe and, when given, these lines of metrics.jsonl."""
    path.mkdir(parents=True)
    (path / "recipe.toml").write_text("[train]\nsteps = 4\n")
    if metrics is not None:
        (path / "metrics.jsonl").write_text("\n".join(metrics) + "\n")
    return path


def line(step: int) -> str:
    return json.dumps({"step": step, "loss": 1.0 / step, "lr": 0.1, "images_per_s": 10.0, "mfu": None})


def test_writes_the_report_and_warns_of_what_it_skipped(tmp_path):
    run = write_run(tmp_path / "run", [line(1), "{damaged", line(2)])
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {run / 'report.html'} (3 chart(s), 0 sample grid(s))"
    assert result.stderr.strip() == (
        f"warning: {run / 'metrics.jsonl'} line 2 is not JSON (Expecting property name enclosed in double "
        "quotes at column 2): skipped"
    )
    page = (run / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'id="loss"' in page and "line 2 is not JSON" in page


def test_several_runs_into_one_file(tmp_path):
    a, b = write_run(tmp_path / "a", [line(1), line(2)]), write_run(tmp_path / "b", [line(1)])
    out = tmp_path / "reports" / "compare.html"
    result = runner.invoke(app, ["report", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "gen report: a, b" in out.read_text()


def test_a_run_with_no_metrics_yet(tmp_path):
    run = write_run(tmp_path / "fresh")
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "has no metrics yet" in result.stderr and "(0 chart(s), 0 sample grid(s))" in result.stdout
    assert "steps = 4" in (run / "report.html").read_text()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["{runs}/nope"], "{runs}/nope does not exist; give the folder gen train wrote (its --run-dir)"),
        (["{plain}"], "{plain} is not a run directory (it has no recipe.toml); give the folder gen train wrote (its --run-dir)"),
        (["{runs}"], "{runs} is not a run directory but holds runs (other, run); give them, e.g. gen report {runs}/other {runs}/run --out compare.html"),
        (["{runs}/run/recipe.toml"], "{runs}/run/recipe.toml is a file, not a run directory (its run directory is {runs}/run); give the folder gen train wrote (its --run-dir)"),
        (["{runs}/run", "{runs}/other"], "several runs: give the report's file, e.g. --out compare.html (with one run it goes to RUN/report.html)"),
        (["{runs}/run", "--out", "{plain}"], "--out {plain} is a folder; give a file, e.g. --out {plain}/report.html"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(tmp_path, args, expected):
    where = {"plain": tmp_path / "plain", "runs": tmp_path / "runs"}
    where["plain"].mkdir()
    write_run(where["runs"] / "run")
    write_run(where["runs"] / "other")
    assert fails("report", *(a.format(**where) for a in args)) == expected.format(**where)
