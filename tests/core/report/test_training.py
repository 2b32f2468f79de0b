"""The charts of training, as data: every value of metrics.jsonl and every score of eval.jsonl against
step, one line per run."""

from __future__ import annotations

import math

from gen.report.run_logs import read_run
from gen.report.training import eval_charts, training_charts


def charts_by_id(runs):
    return {c.id: c for c in training_charts(runs)}


def test_each_logged_value_has_a_chart_and_several_runs_share_the_axes(fake_run):
    a = read_run(fake_run("a"), "a")
    b = read_run(
        fake_run("b", steps=(1, 2, 3, 4, 5, 6), extra={"loss_weighted": 0.9, "stats": [1.0, 2.0]}), "b"
    )
    charts = charts_by_id([a, b])
    assert list(charts) == ["loss", "loss-by-t", "lr", "throughput", "other-metrics"]
    (loss,) = charts["loss"].panels
    assert [line.label for line in loss.lines] == ["a", "b"] and loss.log_y
    assert loss.lines[1].x == (1, 2, 3, 4, 5, 6) and loss.lines[1].y[0] == 0.5
    # Four ranges of t, then the loss against t at the last step of each run.
    by_t = charts["loss-by-t"].panels
    assert [p.title for p in by_t] == [
        "loss at t in [0, 0.25)", "loss at t in [0.25, 0.5)", "loss at t in [0.5, 0.75)",
        "loss at t in [0.75, 1]", "loss against t at step 4, 6",
    ]  # fmt: skip
    assert math.isnan(by_t[2].lines[0].y[1])  # a range no sample fell in: a gap
    assert by_t[4].lines[0].x == (0.125, 0.375, 0.625, 0.875)
    images, mfu = charts["throughput"].panels
    assert images.lines[0].y == (101.0, 102.0, 103.0, 104.0)
    assert all(math.isnan(y) for line in mfu.lines for y in line.y) and "not measured" in mfu.empty_text
    # Anything else that is a number (or a list of numbers), generically, by its key.
    other = {p.title: p for p in charts["other-metrics"].panels}
    assert list(other) == ["grad_norm", "peak_memory_mb", "loss_weighted", "stats"]
    assert [line.label for line in other["loss_weighted"].lines] == ["b"]  # a never logs it
    assert [line.label for line in other["stats"].lines] == ["b [0]", "b [1]"]


def test_mfu_in_percent_where_measured(fake_run):
    run = read_run(fake_run("a", extra={"mfu": 0.25}), "a")
    _, mfu = charts_by_id([run])["throughput"].panels
    assert mfu.lines[0].y == (25.0,) * 4


def test_no_metrics_no_training_charts(tmp_path):
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "recipe.toml").write_text("")
    assert training_charts([read_run(run, "fresh")]) == []


def test_every_score_of_eval_jsonl_against_step(fake_run):
    a = read_run(fake_run("a"), "a")
    b = read_run(fake_run("b"), "b")
    (chart,), (table,) = eval_charts([a, b])
    (panel,) = chart.panels
    assert panel.title == "accuracy" and [line.label for line in panel.lines] == ["a", "b"]
    assert panel.lines[0].x == (2, 4) and panel.lines[0].y == (0.52, 0.54)
    assert "num_samples 6, seed 0, ema 0.9, cfg 2, interval 0, 1, steps 4, sampler euler" in chart.caption
    assert table.columns == ("run", "step", "accuracy") and len(table.rows) == 4


def test_a_run_scoring_several_emas_gets_a_line_each(fake_run, files):
    run = fake_run("a", evals=False)
    files.write(run / "eval.jsonl", [files.eval(s, ema) for s in (2, 4) for ema in ("0.9", "0.5")])
    (chart,), (table,) = eval_charts([read_run(run, "a")])
    assert [line.label for line in chart.panels[0].lines] == ["a · ema 0.9", "a · ema 0.5"]
    assert table.columns == ("run", "step", "ema", "accuracy")
