"""The report's HTML without a browser: each section and chart is there, self-contained (no URL but
``data:``), several runs overlay, the output path's rules, and a failed write leaves the earlier report."""

from __future__ import annotations

import re

import pytest

from gen.errors import GenError
from gen.report import write as report_write
from gen.report.write import write_report


def images(page: str) -> list[str]:
    return re.findall(r'<img alt="([^"]*)"[^>]* src="data:image/(?:png|jpeg);base64,[A-Za-z0-9+/=]+"', page)


def test_a_report_of_two_runs_holds_every_section(fake_run, tmp_path):
    a, b = fake_run("a"), fake_run("b", steps=(1, 2, 3, 4, 5, 6), lr=0.002)
    report = write_report([a, b], tmp_path / "out" / "compare.html")
    page = report.path.read_text()
    assert report.path == tmp_path / "out" / "compare.html" and report.notes == []
    assert report.charts == 8 and report.grids == 3 + 4
    for section in ("training", "evaluation", "sweeps", "samples", "recipe", "provenance"):
        assert f'<section id="{section}">' in page
    for chart in ("loss", "loss-by-t", "lr", "throughput", "other-metrics", "evaluation", "sweep-1-cfg"):
        assert f'<figure class="chart" id="{chart}">' in page
    alts = images(page)
    assert alts.count("Loss") == 1 and len([x for x in alts if ": samples at " in x]) == 7
    # Self-contained: every src is a data: URI, and no network address or stylesheet URL anywhere.
    assert re.findall(r'src="(?!data:)', page) == [] and re.findall(r"https?:|url\(|<link", page) == []
    # One slider per run, its last grid shown first; the rest hidden until the slider moves.
    assert page.count('<input type="range" min="0" max="2" value="2"') == 1
    assert page.count('<input type="range" min="0" max="3" value="3"') == 1
    assert page.count('data-label="final">') == 2 and page.count("hidden>") == 2 + 3
    # The recipes side by side where they differ, each as it is; provenance as a table.
    assert "<td>train.lr</td><td>0.001</td><td>0.002</td>" in page
    assert "<pre>[backbone]\nname = &quot;tinymlp&quot;" in page
    assert "<td>argv</td><td>gen train tiny.toml</td>" in page


def test_one_run_goes_to_its_folder_and_several_need_out(fake_run, tmp_path):
    run = fake_run("a", evals=False, results=False, grids=False)
    assert write_report([run]).path == run / "report.html"
    other = fake_run("b")
    with pytest.raises(GenError, match=r"several runs: give the report's file, e.g. --out compare.html"):
        write_report([run, other])
    with pytest.raises(GenError, match=r"--out .* is a folder; give a file, e.g. --out .*/report.html"):
        write_report([run], tmp_path)


def test_a_run_with_no_metrics_yet_still_shows_its_recipe(tmp_path):
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "recipe.toml").write_text('[train]\nsteps = 6  # "<b>"\n')
    report = write_report([run])
    page = report.path.read_text()
    assert report.charts == 0 and len(report.notes) == 1 and "has no metrics yet" in report.notes[0]
    assert '<section id="notes" class="notes">' in page and "has no metrics yet" in page
    assert "no run has logged metrics yet" in page and "no sample grids in" in page
    assert "steps = 6  # &quot;&lt;b&gt;&quot;" in page  # the recipe, escaped


def test_damaged_lines_are_noted_in_the_page(fake_run):
    run = fake_run("a", evals=False, results=False, grids=False)
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 5, "loss": 0.1')  # a line cut short by a kill
    report = write_report([run])
    assert [n.split(" line ")[1] for n in report.notes] == [
        "5 is cut short (written while the run was killed, or still being written): skipped"
    ]
    assert "line 5 is cut short" in report.path.read_text()


def test_a_failed_write_leaves_the_earlier_report(fake_run, monkeypatch):
    run = fake_run("a", evals=False, results=False, grids=False)
    (run / "report.html").write_text("the earlier report")

    def fails(figure):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(report_write, "figure_png", fails)
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_report([run])
    assert (run / "report.html").read_text() == "the earlier report"
    assert sorted(p.name for p in run.iterdir() if "report" in p.name) == ["report.html"]  # no temporary file


def test_non_ascii_is_written_as_character_references(fake_run):
    run = fake_run("ré", evals=False, results=False, grids=False)
    page_bytes = write_report([run]).path.read_bytes()
    assert page_bytes.isascii() and b"r&#233;" in page_bytes


def test_odd_values_are_gaps_not_failures(tmp_path):
    """Strings, NaN, infinities, a number too large for an axis, nested values, an empty loss_by_t, a
    float step, a results record without a key: the report is written, with a note for the record."""
    run = tmp_path / "odd"
    (run / "eval").mkdir(parents=True)
    (run / "recipe.toml").write_text("[train]\nsteps = 3\n")
    (run / "metrics.jsonl").write_text(
        '{"step": 1, "loss": NaN, "loss_by_t": [], "lr": "high", "images_per_s": Infinity, "x": {"a": 1}}\n'
        '{"step": 2.5, "loss": -1, "loss_by_t": ["a", null], "lr": 0.1, "images_per_s": 1e308, "x": 3}\n'
        '{"step": 3, "loss": 0.0, "loss_by_t": [1, 2, 3, 4, 5], "lr": 0.2, "mfu": 0.5}\n'
    )
    (run / "eval" / "results.jsonl").write_text(
        '{"key": {"step": 1, "ema": "none", "cfg": true, "guide": {"a": [1]}}, "result": {"fid": "nan"}}\n'
        '{"key": {"step": 2, "ema": "phema_0.1", "cfg": 1}, "result": {"fid": 3}}\n'
        '{"key": [], "result": {}}\n'
    )
    report = write_report([run])
    assert report.charts > 0 and report.path.is_file()
    assert report.notes == [
        f"{run / 'eval' / 'results.jsonl'} line 3 is not an object with a 'key' and a 'result' object: skipped"
    ]
