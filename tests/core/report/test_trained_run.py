"""The report of a run trained for real and swept by ``gen eval``: the files the trainer and the sweep
write are the files the report reads (its tests elsewhere write them by hand)."""

from __future__ import annotations

from gen.recipe import load_recipe
from gen.report.run_logs import read_run
from gen.report.sweeps import sweep_groups
from gen.report.training import eval_charts, training_charts
from gen.training.engine import train


def test_a_trained_and_swept_run(train_env_module, tmp_path, cli):
    run = tmp_path / "run"
    overrides = ["train.sample_every=3", "train.eval_samples=6", "train.eval_every=3", "train.grid_samples=6"]
    train(load_recipe(train_env_module, overrides), run)
    cli("eval", run, "--metric", "data", "--num", "6", "--cfg", "1,2", "--steps", "2,4", "--batch-size", "6")
    cli("report", run)

    logs = read_run(run, "run")
    assert logs.notes == [] and [g.label for g in logs.grids] == [
        "step 3",
        "final",
    ]  # the last step draws final only
    charts = {c.id: c for c in training_charts([logs])}
    assert list(charts) == ["loss", "loss-by-t", "lr", "throughput", "other-metrics"]
    assert charts["loss"].panels[0].lines[0].x == (1, 2, 3, 4, 5, 6)  # train.log_every = 1
    (evaluation,), _ = eval_charts([logs])
    assert [p.title for p in evaluation.panels] == ["mean"] and evaluation.panels[0].lines[0].x == (3, 6)
    (group,) = sweep_groups([logs])
    assert [c.id for c in group.charts] == ["sweep-1-cfg", "sweep-1-steps"] and len(group.table.rows) == 4
    page = (run / "report.html").read_text()
    assert page.count('<figure class="chart"') == 8 and page.count('data-label="') == 2
