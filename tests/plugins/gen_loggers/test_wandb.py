"""The wandb logger, run as the tests run it: WANDB_MODE=offline, every file under the run directory.
Scalars, the grids and the scores reach the W&B run; a resume continues the same W&B run id."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from gen.commands import app

runner = CliRunner()


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """W&B offline, its settings and caches in the test's folder (nothing in the home directory)."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home" / var.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")


def history(records):
    """step -> {key: value} of every history row of an offline W&B run file's records."""
    from wandb.proto import wandb_internal_pb2

    rows = {}
    for data in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            items = record.history.item
            row = {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in items}
            rows.setdefault(record.history.step.num, {}).update(row)
    return rows


def test_wandb_offline_logs_scalars_grids_and_scores_under_the_run(
    train_env, tmp_path, offline, cli, read_wandb
):
    run = tmp_path / "run"
    loggers = 'train.loggers=[{name = "wandb", project = "gen-tests", tags = ["tiny"]}]'
    cli("train", train_env, loggers, "train.sample_every=3", "--run-dir", run)
    run_id = (run / "wandb" / "gen_run_id").read_text().strip()
    [folder] = (run / "wandb").glob(f"offline-run-*-{run_id}")
    rows = history(read_wandb(folder / f"run-{run_id}.wandb"))
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sorted(rows) == [1, 2, 3, 4, 5, 6]
    assert [rows[m["step"]]["train/loss"] for m in lines] == pytest.approx([m["loss"] for m in lines])
    assert rows[6]["eval/mean"] == pytest.approx(json.loads((run / "eval.json").read_text())["mean"])
    assert {rows[3]["samples/_type"], rows[6]["samples/_type"]} == {"image-file"}
    assert len(list((folder / "files" / "media" / "images").glob("samples_*.png"))) == 2
    # A resume by run directory continues the same W&B run (a second offline folder of the same id).
    cli("train", run, "--resume", "train.steps=7", "train.grid_samples=0", "train.eval_samples=0")
    assert (run / "wandb" / "gen_run_id").read_text().strip() == run_id
    folders = sorted((run / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(folders) in (1, 2)  # two starts in one second share a folder name
    assert 7 in history(read_wandb(folders[-1] / f"run-{run_id}.wandb"))


def test_wandb_missing_is_one_clear_error(train_env, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import now raises ImportError
    result = runner.invoke(
        app, ["train", str(train_env), "train.loggers=['wandb']", "--run-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: the wandb logger (train.loggers) needs the wandb package: pip install 'gen[wandb]', or leave the "
        "logger out"
    )
    assert not (tmp_path / "r" / "checkpoints").exists()
