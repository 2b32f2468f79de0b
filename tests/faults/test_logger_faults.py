"""Loggers gone wrong. One that cannot start (an unwritable W&B folder, a plugin's ``open`` that raises) stops
the run before its first step, in one line, with every checkpoint intact; one that raises later is left
out with one warning and training goes on to the end (a dashboard never costs a run)."""

from __future__ import annotations

import json
import sys
import types

import gen
from gen.plugins import get_host
from gen.runs import checkpoint as ckpt


class Flaky:
    """A logger that raises where it is told to (``open``, or ``metrics`` at ``step``)."""

    instances: list = []

    def __init__(self, fail_in, step=2):
        self.fail_in, self.step, self.lines, self.closed = fail_in, step, [], None
        Flaky.instances.append(self)

    def open(self, run):
        if self.fail_in == "open":
            raise RuntimeError("no token for the dashboard")

    def metrics(self, step, values):
        if self.fail_in == "metrics" and step >= self.step:
            raise ConnectionError("dashboard down")
        self.lines.append(step)

    def image(self, step, tag, image):
        pass

    def scores(self, step, scores, record):
        pass

    def close(self, ok):
        self.closed = ok


class FlakyPlugin:
    @gen.hookimpl
    def register_loggers(self, register):
        register("flaky_open", lambda cfg: Flaky("open"), description="Raises in open (tests).")
        register("flaky_metrics", lambda cfg: Flaky("metrics"), description="Raises at step 2 (tests).")


def intact(run):
    """The steps of the run's checkpoints, every file of each read back whole."""
    steps = []
    for path in ckpt.list_checkpoints(run):
        meta = ckpt.read_meta(path)
        for ema in (None, *meta.ema_keys):
            ckpt.load_weights(path, ema)
        ckpt.load_state(path)
        steps.append(meta.step)
    return steps


def test_an_unwritable_wandb_folder_stops_the_run_before_its_first_step(g, train_env, tmp_path, monkeypatch):
    run = tmp_path / "run"
    g.succeeds("train", train_env, "train.steps=3", *g.QUIET, "--run-dir", run)
    (run / "wandb").write_text("not a folder")  # RUN/wandb cannot be written
    stub = types.ModuleType("wandb")  # never reached: the folder fails first
    stub.init = lambda **kwargs: (_ for _ in ()).throw(AssertionError("wandb.init called"))
    monkeypatch.setitem(sys.modules, "wandb", stub)
    message = g.fails(
        "train", train_env, "train.loggers=['wandb']", *g.QUIET, "--run-dir", run, "--resume", only=False
    )
    assert message.startswith("the wandb logger could not start: FileExistsError: ")
    assert str(run / "wandb") in message
    assert message.endswith("; fix that, or leave wandb out of train.loggers")
    assert intact(run) == [3] and not (run / ".lock").exists()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3  # no step was trained
    g.succeeds("train", train_env, *g.QUIET, "--run-dir", run, "--resume")
    assert intact(run) == [3, 6]


def test_a_logger_that_raises_in_open_is_one_line(g, train_env, tmp_path):
    get_host().register(FlakyPlugin(), name="flaky")
    run = tmp_path / "run"
    message = g.fails(
        "train", train_env, "train.loggers=['flaky_open']", *g.QUIET, "--run-dir", run, only=False
    )
    assert message == (
        "the flaky_open logger could not start: RuntimeError: no token for the dashboard; fix that, or leave "
        "flaky_open out of train.loggers"
    )
    assert intact(run) == [] and not (run / ".lock").exists()


def test_a_logger_that_raises_later_is_left_out_and_training_goes_on(g, train_env, tmp_path):
    get_host().register(FlakyPlugin(), name="flaky")
    Flaky.instances.clear()
    run = tmp_path / "run"
    result = g.succeeds("train", train_env, "train.loggers=['flaky_metrics']", *g.QUIET, "--run-dir", run)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: the flaky_metrics logger failed at step 2 (ConnectionError: dashboard down); it is left out "
        "for the rest of the run, which goes on"
    ]
    assert intact(run) == [3, 6]
    lines = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines == [1, 2, 3, 4, 5, 6]  # the run's own record lost nothing
    [flaky] = Flaky.instances
    assert flaky.lines == [1] and flaky.closed is True  # closed at the end like every opened logger
