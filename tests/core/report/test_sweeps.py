"""gen eval's results as charts: each score against a swept setting, one line per combination of the
other settings that vary (and per run); records that do not compare are kept apart."""

from __future__ import annotations

import json

from gen.report.run_logs import read_run
from gen.report.sweeps import as_number, sweep_groups


def test_a_score_against_each_swept_setting_one_line_per_other(fake_run):
    (group,) = sweep_groups([read_run(fake_run("a"), "a")])
    assert group.title == "6 images, seed 0, reference ref.npz, features inception, labels balanced"
    assert [c.id for c in group.charts] == ["sweep-1-cfg", "sweep-1-steps"]
    by_cfg, by_steps = group.charts
    assert [p.title for p in by_cfg.panels] == ["fid", "is_mean"]  # num_images and seconds are no score
    fid = by_cfg.panels[0]
    assert fid.xlabel == "guidance scale (cfg)" and fid.x_ticks == (1.0, 2.0, 3.0) and not fid.log_x
    assert [line.label for line in fid.lines] == ["steps 2", "steps 8", "steps 32"]
    assert fid.lines[0].x == (1.0, 2.0, 3.0) and fid.lines[0].y == (12.5, 7.5, 10 / 3 + 2.5)
    steps_fid = by_steps.panels[0]
    assert steps_fid.log_x and steps_fid.xlabel == "sampling steps"  # 2 to 32: a log axis
    assert [line.label for line in steps_fid.lines] == ["cfg 1", "cfg 2", "cfg 3"]
    # The table: numbers sorted as numbers (2 before 8 before 32).
    assert group.table.columns == ("run", "ema", "cfg", "steps", "sampler", "fid", "is_mean")
    assert [row[3] for row in group.table.rows[:3]] == ["2", "8", "32"]


def test_several_runs_overlay_and_other_counts_are_apart(fake_run, files):
    a, b = fake_run("a"), fake_run("b")
    # b also has a screening pass at 3 images (another kind of record), and scored one combination twice.
    extra = [files.result(4, 1.0, 2, fid=99.0, num=3), files.result(4, 1.0, 2, fid=1.5)]
    with (b / "eval" / "results.jsonl").open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in extra))
    groups = sweep_groups([read_run(a, "a"), read_run(b, "b")])
    assert [g.title.split(":")[0] for g in groups] == ["a, b", "b"]
    fid = groups[0].charts[0].panels[0]
    assert [line.label for line in fid.lines][:2] == ["a · steps 2", "a · steps 8"]
    assert "b · steps 2" in [line.label for line in fid.lines]
    b_steps_2 = next(line for line in fid.lines if line.label == "b · steps 2")
    assert b_steps_2.y[0] == 1.5  # the latest score of a combination
    assert groups[1].charts == [] and len(groups[1].table.rows) == 1  # one record: a table, no chart


def test_emas_are_an_axis_unless_raw_weights_or_mixed(fake_run, files):
    run = fake_run("a", results=False)
    rows = [files.result(4, 2.0, 8, fid=f, ema=e) for e, f in (("phema_0.05", 5.0), ("phema_0.1", 4.0))]
    files.write(run / "eval" / "results.jsonl", rows)
    (group,) = sweep_groups([read_run(run, "a")])
    (chart,) = group.charts
    assert chart.panels[0].xlabel == "EMA length (sigma_rel)" and chart.panels[0].lines[0].x == (0.05, 0.1)
    files.write(run / "eval" / "results.jsonl", [*rows, files.result(4, 2.0, 8, fid=3.0, ema="none")])
    (group,) = sweep_groups([read_run(run, "a")])
    assert group.charts == [] and len(group.table.rows) == 3
    assert as_number("ema", "0.9999") == 0.9999 and as_number("ema", "none") is None
    assert as_number("interval", [0.1, 1.0]) is None and as_number("cfg", 2) == 2.0


def test_no_results_no_groups(fake_run):
    assert sweep_groups([read_run(fake_run("a", results=False), "a")]) == []
