"""Loggers are plugins: an installed third-party logger receives a run's metrics lines, grids and scores
(rank 0 only), ``jsonl`` is always on, and every mistake in ``train.loggers`` is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.distributed import DistInfo
from gen.plugins import get_host
from gen.recipe import load_recipe, recipe_to_toml, to_table
from gen.training.loggers import RunInfo, RunLoggers

runner = CliRunner()


class Recorder:
    """A third-party logger: keeps every call."""

    def __init__(self, config, calls):
        self.config = config
        self.calls = calls

    def open(self, run):
        self.calls.append(("open", run))

    def metrics(self, step, values):
        self.calls.append(("metrics", step, dict(values)))

    def image(self, step, tag, image):
        self.calls.append(("image", step, tag, image))

    def scores(self, step, scores, record):
        self.calls.append(("scores", step, dict(scores), dict(record)))

    def close(self, ok):
        self.calls.append(("close", ok))


class RecorderPlugin:
    """Registers ``recorder`` (with an option) and ``broken`` (whose factory returns no logger)."""

    def __init__(self):
        self.calls: list[tuple] = []

    @gen.hookimpl
    def register_loggers(self, register):
        import attrs

        @attrs.frozen(kw_only=True)
        class RecorderConfig:
            label: str = gen.field("rec", doc="A label.")

        register("recorder", lambda config: Recorder(config, self.calls), config=RecorderConfig)
        register("broken", lambda config: object(), description="Not a logger.")
        register("stuck", lambda config: Stuck(config, self.calls), description="Fails to close.")
        register("offline", lambda config: Offline(config, self.calls), description="Cannot start.")


class Offline(Recorder):
    def open(self, run):
        raise gen.GenError("the dashboard cannot be reached; log offline")


class Stuck(Recorder):
    def close(self, ok):
        raise RuntimeError("the server went away")


@pytest.fixture
def recorder(train_env):
    """The recorder plugin, installed beside the tiny training plugin; returns (recipe, plugin)."""
    plugin = RecorderPlugin()
    assert get_host().register(plugin, name="recorder_plugin")
    yield train_env, plugin
    get_host().unregister("recorder_plugin")


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_third_party_logger_receives_metrics_grids_and_scores(recorder, tmp_path, cli):
    recipe, plugin = recorder
    run = tmp_path / "run"
    loggers = 'train.loggers=[{name = "recorder", label = "x"}]'
    cli("train", recipe, loggers, "train.sample_every=3", "train.eval_every=3", "--run-dir", run)
    calls = plugin.calls
    assert [c[0] for c in calls][:2] == ["open", "metrics"] and calls[-1] == ("close", True)
    info = calls[0][1]
    assert isinstance(info, RunInfo) and (info.step, info.total_steps, info.resumed) == (0, 6, False)
    assert info.path == run and info.files.metrics_file == run / "metrics.jsonl"
    assert info.config == to_table(load_recipe(run / "recipe.toml"))  # the resolved recipe, as a table
    assert info.config["train"]["loggers"] == [{"name": "recorder", "label": "x"}]
    # Every metrics line, as metrics.jsonl holds it (jsonl is always on).
    metrics = [c for c in calls if c[0] == "metrics"]
    assert [(s, v) for _, s, v in metrics] == [(m["step"], m) for m in lines(run / "metrics.jsonl")]
    assert [s for _, s, _ in metrics] == [1, 2, 3, 4, 5, 6]
    # The grids of steps 3 and 6 (the final one), as (H, W, C) uint8: 6 images of 4 x 4, a class per row.
    images = [c for c in calls if c[0] == "image"]
    assert [(s, tag) for _, s, tag, _ in images] == [(3, "samples"), (6, "samples")]
    grid = images[-1][3]
    assert isinstance(grid, np.ndarray) and grid.dtype == np.uint8 and grid.shape == (3 * 6 + 2, 2 * 6 + 2, 3)
    assert np.array_equal(grid, np.asarray(Image.open(run / "samples" / "final.png")))  # what the PNG holds
    # The scores, with the eval.jsonl line they belong to.
    scores = [c for c in calls if c[0] == "scores"]
    assert [(s, rec) for _, s, _, rec in scores] == [(r["step"], r) for r in lines(run / "eval.jsonl")]
    assert scores[-1][2] == {"mean": json.loads((run / "eval.json").read_text())["mean"]}


def test_loggers_close_with_the_failure_and_jsonl_counts_once(recorder, tmp_path):
    recipe, plugin = recorder
    run = tmp_path / "nan"
    result = runner.invoke(
        app,
        [
            "train",
            str(recipe),
            "train.loggers=['jsonl', 'recorder']",
            "data.nan_batch=4",
            "--run-dir",
            str(run),
        ],
    )
    assert result.exit_code == 2 and "error: loss is nan" in result.stderr
    assert plugin.calls[-1] == ("close", False)
    assert [m["step"] for m in lines(run / "metrics.jsonl")] == [1, 2, 3, 4]  # one line each, not two


def test_the_recipe_keeps_its_loggers(recorder, tmp_path):
    recipe, _ = recorder
    loaded = load_recipe(recipe, ['train.loggers=["tensorboard", {name = "recorder", label = "y"}]'])
    assert [s.name for s in loaded.train.loggers] == ["tensorboard", "recorder"]
    assert loaded.train.loggers[1].config.label == "y"
    text = recipe_to_toml(loaded)
    assert '{ name = "recorder", label = "y" }' in text
    (tmp_path / "back.toml").write_text(text)
    assert load_recipe(tmp_path / "back.toml") == loaded


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "['recorder', 'nope']",
            "[train.loggers.1] name: unknown logger 'nope'.",
        ),
        ("['recorder', 'recorder']", "[train] loggers: logger 'recorder' is listed twice; list it once"),
        ("'recorder'", "[train] loggers: expected a list of logger names or tables, got str 'recorder'"),
        ("[{name = 'recorder', colour = 1}]", "[train.loggers.0] colour: unknown key."),
    ],
)
def test_a_wrong_logger_list_is_one_line(recorder, tmp_path, value, message):
    recipe, _ = recorder
    result = runner.invoke(
        app, ["train", str(recipe), f"train.loggers={value}", "--run-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert result.stderr.count("error:") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_a_factory_that_builds_no_logger_is_one_line(recorder, tmp_path):
    recipe, _ = recorder
    result = runner.invoke(
        app, ["train", str(recipe), "train.loggers=['broken']", "--run-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: logger 'broken' (plugin 'recorder_plugin') built a object, which is not a gen.Logger: it lacks "
        "open, metrics, image, scores, close"
    )
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_only_rank_0_holds_loggers(recorder):
    recipe, plugin = recorder
    cfg = load_recipe(recipe, ["train.loggers=['recorder']"]).train
    main = RunLoggers.build(cfg, DistInfo(0, 1, 0, torch.device("cpu")))
    assert main.names == ["jsonl", "recorder"]
    # A rank other than 0 (its world of one: no collective to join) builds none, so it logs nothing.
    other = RunLoggers.build(cfg, DistInfo(1, 1, 0, torch.device("cpu")))
    assert other.names == []
    other.metrics(1, {"step": 1, "loss": 0.5})
    assert plugin.calls == []


def test_the_tensorboard_shorthand_adds_the_logger(recorder):
    recipe, _ = recorder
    cfg = load_recipe(recipe, ["train.tensorboard=true"]).train
    assert RunLoggers.build(cfg, DistInfo.local()).names == ["jsonl", "tensorboard"]
    cfg = load_recipe(recipe, ["train.tensorboard=true", "train.loggers=['tensorboard']"]).train
    assert RunLoggers.build(cfg, DistInfo.local()).names == ["jsonl", "tensorboard"]


def test_a_logger_that_fails_to_close_is_a_warning(recorder, tmp_path, cli):
    recipe, plugin = recorder
    run = tmp_path / "run"
    result = cli(
        "train", recipe, "train.loggers=['stuck', 'recorder']", "train.eval_samples=0", "--run-dir", run
    )
    assert "warning: the stuck logger did not close: RuntimeError: the server went away" in result.output
    assert plugin.calls[-1] == ("close", True)  # the next logger still closed
    assert (run / "checkpoints" / "step_00000006").is_dir()


def test_a_logger_that_cannot_start_is_one_line_before_training(recorder, tmp_path):
    recipe, plugin = recorder
    run = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(recipe), "train.loggers=['recorder', 'offline']", "--run-dir", str(run)]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: the dashboard cannot be reached; log offline"
    assert plugin.calls == [("open", plugin.calls[0][1]), ("close", False)]  # the one opened is closed
    assert not (run / "checkpoints").exists()
