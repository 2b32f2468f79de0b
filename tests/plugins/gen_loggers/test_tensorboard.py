"""The tensorboard logger: scalars, grids and scores in RUN/tensorboard; train.tensorboard = true is its
shorthand; a resume drops the events of the steps it trains again; a missing package is one line."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from gen.commands import app

runner = CliRunner()


def events_of(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


@pytest.mark.parametrize("select", ["train.loggers=['tensorboard']", "train.tensorboard=true"])
def test_tensorboard_logs_the_metrics_grids_and_scores(train_env, tmp_path, cli, select):
    run = tmp_path / "tb"
    cli("train", train_env, select, "train.sample_every=3", "--run-dir", run)
    events = events_of(run)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [m["step"] for m in lines] == [1, 2, 3, 4, 5, 6]
    assert [e.value for e in loss] == pytest.approx([m["loss"] for m in lines], rel=1e-6)
    assert [e.value for e in events.Scalars("train/lr")] == pytest.approx([m["lr"] for m in lines], rel=1e-6)
    tags = events.Tags()["scalars"]
    assert {"train/grad_norm", "perf/images_per_s", "loss_by_t/0.00-0.25", "loss_by_t/0.25-0.50"} <= set(tags)
    score = json.loads((run / "eval.json").read_text())["mean"]
    assert events.Scalars("eval/mean")[0].value == pytest.approx(score, rel=1e-6)
    grids = events.Images("samples")
    assert [g.step for g in grids] == [3, 6]
    assert grids[0].width == 2 * (4 + 2) + 2  # 6 images of 3 classes: 2 per row


def test_a_resume_draws_each_step_once(train_env, tmp_path, cli):
    run = tmp_path / "tb"
    quiet = ("train.grid_samples=0", "train.eval_samples=0", "train.loggers=['tensorboard']")
    cli("train", train_env, *quiet, "train.steps=3", "train.ckpt_every=2", "--run-dir", run)
    # Steps 1-3 were logged; the checkpoint is step 2: the resume trains step 3 again and logs it anew.
    cli("train", run, "--resume", "train.steps=5")
    steps = [e.step for e in events_of(run).Scalars("train/loss")]
    assert steps == [1, 2, 3, 4, 5]


def test_tensorboard_missing_is_one_clear_error(train_env, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now raises ImportError
    for select in ("train.tensorboard=true", "train.loggers=['tensorboard']"):
        result = runner.invoke(app, ["train", str(train_env), select, "--run-dir", str(tmp_path / "r")])
        assert result.exit_code == 2
        assert result.stderr.strip() == (
            "error: the tensorboard logger (train.loggers, or train.tensorboard = true) needs the tensorboard "
            "package: pip install 'gen[tensorboard]', or leave the logger out"
        )
        assert not (tmp_path / "r" / "checkpoints").exists()
