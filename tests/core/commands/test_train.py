"""``gen train`` the way people resume: by run directory (its own recipe.toml), and from a chosen step —
refused, with nothing deleted, while later results are in the way."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from gen.commands import app
from gen.runs import checkpoint as ckpt

runner = CliRunner()
QUIET = ("train.grid_samples=0", "train.eval_samples=0")


def weights(checkpoint, stem="model"):
    return load_file(str(checkpoint / f"{stem}.safetensors"))


def assert_same_checkpoints(a, b):
    for stem in ("model", "ema_0.9", "ema_0.5"):
        wa, wb = weights(a, stem), weights(b, stem)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), stem
    sa, sb = ckpt.load_state(a)["optimizer"]["state"], ckpt.load_state(b)["optimizer"]["state"]
    assert all(torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) for k in sa)


def fails(*args) -> str:
    """The one error line of ``gen ARGS`` (exit code 2)."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return " ".join(result.stderr.split()).removeprefix("error: ")


def test_resume_by_run_directory_equals_resume_by_recipe(train_env, tmp_path, cli):
    by_run, by_recipe, straight = tmp_path / "by_run", tmp_path / "by_recipe", tmp_path / "straight"
    for run in (by_run, by_recipe):
        cli("train", train_env, *QUIET, "train.steps=3", "--run-dir", run)
    result = cli("train", by_run, "--resume", "train.steps=6")  # the run's own recipe, longer
    assert f"resumed from {by_run / 'checkpoints' / 'step_00000003'} (step 3)" in " ".join(
        result.output.split()
    )
    cli("train", train_env, *QUIET, "--run-dir", by_recipe, "--resume")
    cli("train", train_env, *QUIET, "--run-dir", straight)
    assert_same_checkpoints(ckpt.latest_checkpoint(by_run), ckpt.latest_checkpoint(by_recipe))
    assert_same_checkpoints(ckpt.latest_checkpoint(by_run), ckpt.latest_checkpoint(straight))
    assert ckpt.latest_checkpoint(by_run).name == "step_00000006"
    provenance = [json.loads(line) for line in (by_run / "provenance.jsonl").read_text().splitlines()]
    assert [p["resumed_from_step"] for p in provenance] == [None, 3]
    # --run-dir naming the same directory is accepted; another one is refused (a run trains in place).
    cli("train", by_run, "--resume", "--run-dir", by_run)
    other = tmp_path / "other"
    assert fails("train", by_run, "--resume", "--run-dir", other) == (
        f"{by_run} is a run directory, trained in place: drop --run-dir {other}, or give a recipe file "
        f"(e.g. {by_run / 'recipe.toml'}) to start another run in {other}"
    )
    assert not other.exists()
    # Without --resume, the run directory's checkpoints are not trained over.
    assert fails("train", by_run).startswith(f"{by_run} already holds checkpoints (latest step_00000006)")


def test_resume_from_a_chosen_step(train_env, tmp_path, cli):
    run = tmp_path / "run"
    keep = (
        "train.ckpt_every=2",
        "train.milestone_every=2",
        "train.ema_lengths=[0.1]",
        "train.ema_snapshot_every=2",
    )
    cli("train", train_env, *QUIET, *keep, "--run-dir", run)
    names = [p.name for p in ckpt.list_checkpoints(run)]
    assert names == ["step_00000002", "step_00000004", "step_00000006"]
    before = {p.name: weights(p) for p in ckpt.list_checkpoints(run)}
    # Later checkpoints and EMA snapshots would be trained over: refused, naming them; nothing deleted.
    assert fails("train", run, "--resume-step", 2) == (
        f"--resume-step 2: {run} holds results after step 2: checkpoint(s) step_00000004, step_00000006 in "
        f"{run / 'checkpoints'} and EMA snapshot(s) of steps 4 to 6 in {run / 'ema_snapshots'}; gen never "
        f"deletes results: move them out of the run directory (e.g. into {run}.after_step_2/), then resume again"
    )
    assert [p.name for p in ckpt.list_checkpoints(run)] == names
    assert len(list((run / "ema_snapshots").glob("step_*"))) == 3
    assert fails("train", run, "--resume-step", 5) == (
        f"--resume-step 5: {run / 'checkpoints'} has no checkpoint of step 5 (it has: 2, 4, 6); choose one of "
        "these (train.milestone_every keeps checkpoints that pruning would remove)"
    )
    # Moved away, the run continues from step 2 and trains steps 3-6 exactly as before.
    aside = tmp_path / "run.after_step_2"
    (aside / "checkpoints").mkdir(parents=True)
    (aside / "ema_snapshots").mkdir()
    for name in names[1:]:
        shutil.move(run / "checkpoints" / name, aside / "checkpoints" / name)
    for snapshot in sorted((run / "ema_snapshots").glob("step_*"))[1:]:
        shutil.move(snapshot, aside / "ema_snapshots" / snapshot.name)
    result = cli("train", run, "--resume-step", 2)
    assert "(step 2)" in result.output
    assert_same_checkpoints(ckpt.latest_checkpoint(run), aside / "checkpoints" / "step_00000006")
    assert all(
        torch.equal(before["step_00000002"][k], v) for k, v in weights(run / "checkpoints" / names[0]).items()
    )
    # The latest checkpoint itself is a valid choice, and with nothing after it, --resume-step is --resume.
    cli("train", run, "--resume-step", 6)


def lr_of(run, step):
    """The learning rate metrics.jsonl recorded for ``step`` (the last line of that step)."""
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [line["lr"] for line in lines if line["step"] == step][-1]


def test_a_longer_resume_says_what_happens_to_the_learning_rate(train_env, tmp_path, cli):
    # Cosine over 6 steps after 2 of warm-up, peak 1e-3; resumed at 3 (its step-6 checkpoint moved
    # away) for 12 steps. Saved schedule at step index 3: 1e-3 * (1 + cos(pi/4)) / 2.
    cosine = (*QUIET, "train.lr_schedule='cosine'")
    saved, restretched = 1e-3 * (1 + math.cos(math.pi / 4)) / 2, 1e-3 * (1 + math.cos(math.pi / 10)) / 2
    runs = {}
    for mode in ("restretch", "continue"):
        run = runs[mode] = tmp_path / mode
        cli("train", train_env, *cosine, f"train.resume_schedule='{mode}'", "--run-dir", run)
        assert lr_of(run, 4) == pytest.approx(saved)
        shutil.rmtree(run / "checkpoints" / "step_00000006")
        out = " ".join(cli("train", run, "--resume", "train.steps=12").output.split())
        assert (
            f"resumed from {run / 'checkpoints' / 'step_00000003'} (step 3); learning rate of step 4: " in out
        )
        assert f"{saved:.4g} on the saved schedule of 6 steps" in out, out
        now = restretched if mode == "restretch" else saved
        assert f'{now:.4g} now; resume_schedule = "{mode}"' in out, out
        assert lr_of(run, 4) == pytest.approx(now)  # the step trained right after the resume
        assert lr_of(run, 12) < lr_of(run, 11) < lr_of(run, 5)  # and down from there to min_lr at 12
    # "continue": from the saved rate at 3 down to 0 at 12, a half-cosine.
    assert lr_of(runs["continue"], 8) == pytest.approx(saved * (1 + math.cos(math.pi * 4 / 9)) / 2)
    # A resume at the run's own length keeps the run's schedule, the continued one included: exact.
    run = runs["continue"]
    before = [lr_of(run, s) for s in (10, 11, 12)]
    shutil.rmtree(run / "checkpoints" / "step_00000012")
    out = " ".join(cli("train", run, "--resume").output.split())
    assert "(step 9)" in out and "learning rate of step" not in out
    assert [lr_of(run, s) for s in (10, 11, 12)] == before


def test_a_checkpoint_without_its_schedule_takes_it_from_its_recipe(train_env, tmp_path, cli):
    run = tmp_path / "run"
    cli("train", train_env, *QUIET, "train.lr_schedule='cosine'", "--run-dir", run)
    state_file = run / "checkpoints" / "step_00000006" / ckpt.STATE_FILE
    state = torch.load(state_file, weights_only=True)
    state.pop("lr_schedule")  # as written before gen saved the schedule
    torch.save(state, state_file)
    out = " ".join(cli("train", run, "--resume", "train.steps=12").output.split())
    restretched = 1e-3 * (1 + math.cos(math.pi * 4 / 10)) / 2
    assert f"learning rate of step 7: 0 on the saved schedule of 6 steps, {restretched:.4g} now" in out, out
