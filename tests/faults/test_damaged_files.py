"""Damaged checkpoints: truncated, empty, foreign or pickled weights files, a missing file. ``gen sample`` and
``gen eval`` say which file and what is wrong in one line; ``gen train --resume`` falls back to the
newest intact checkpoint with a warning naming both (and refuses in one line when none is intact)."""

from __future__ import annotations

import shutil

import pytest
import torch

from gen.recipe import load_recipe
from gen.runs import checkpoint as ckpt
from gen.training.engine import train


def damage(file, how):
    """Damage one file the way disks, copies and people do."""
    if how == "truncated":
        data = file.read_bytes()
        file.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        file.write_bytes(b"")
    elif how == "foreign":
        file.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 4096\n")
    elif how == "pickle":
        torch.save({"weight": torch.zeros(2)}, file)
    elif how == "missing":
        file.unlink()


PROBLEMS = {
    "truncated": "is truncated (",
    "empty": "is empty (0 bytes), not a safetensors file",
    "foreign": "is not a safetensors file (header too large)",
    "pickle": "is a pickle (a torch.save file), not a safetensors file; it was not loaded",
    "missing": "is missing",
}


@pytest.fixture
def copy(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    return run


@pytest.fixture(scope="module")
def straight(train_env_module, tmp_path_factory):
    """The tiny run of the ``trained`` fixture, trained straight to 7 steps."""
    run = tmp_path_factory.mktemp("straight") / "run"
    train(
        load_recipe(train_env_module, ["train.steps=7", "train.grid_samples=0", "train.eval_samples=0"]), run
    )
    return run


@pytest.mark.parametrize(
    ("command", "stem", "how"),
    [("sample", "model", how) for how in PROBLEMS] + [("eval", "ema_0.9", how) for how in PROBLEMS],
)
def test_sample_and_eval_name_the_damaged_file(g, copy, tmp_path, command, stem, how):
    latest = ckpt.checkpoint_dir(copy, 6)
    file = latest / f"{stem}.safetensors"
    damage(file, how)
    ema = ["--ema", "none"] if stem == "model" else []
    if command == "sample":
        message = g.fails("sample", copy, "--num", 2, "--out", tmp_path / "s.png", *ema)
    else:
        message = g.fails("eval", copy, "--metric", "data", "--num", 2, *ema)
    state = "incomplete" if how == "missing" else "damaged"
    assert message.startswith(f"{file} {PROBLEMS[how]}")
    assert message.endswith(
        f"; the checkpoint is {state}, use an earlier one: {ckpt.checkpoint_dir(copy, 3)}"
    )


def test_a_checkpoint_folder_of_pickles_is_refused_unloaded(g, copy, tmp_path, marker):
    """Every weights file a pickle (as other tools save them) that would run code: none is loaded."""
    latest = ckpt.checkpoint_dir(copy, 6)
    for file in latest.glob("*.safetensors"):
        torch.save({"weight": g.Evil(marker)}, file)
    message = g.fails("sample", latest, "--num", 2, "--out", tmp_path / "s.png")
    assert message.startswith(f"{latest / 'ema_0.9.safetensors'} {PROBLEMS['pickle']}")


def test_a_readable_file_of_another_model_is_one_line(g, copy, tmp_path):
    file = ckpt.checkpoint_dir(copy, 6) / "ema_0.9.safetensors"
    from safetensors.torch import save_file

    save_file({"other.weight": torch.zeros(2)}, str(file))
    message = g.fails("sample", copy, "--num", 2, "--out", tmp_path / "s.png")
    assert message.startswith(f"{file} does not hold the run's backbone (Missing key(s) in state_dict: ")
    assert message.endswith("; the checkpoint is damaged")


@pytest.mark.parametrize("what", ["model.safetensors", "ema_0.5.safetensors", "state.pt", "meta.json"])
def test_resume_falls_back_to_the_newest_intact_checkpoint(g, train_env, copy, straight, what):
    latest, previous = ckpt.checkpoint_dir(copy, 6), ckpt.checkpoint_dir(copy, 3)
    damage(latest / what, "truncated")
    result = g.succeeds("train", train_env, "train.steps=7", *g.QUIET, "--run-dir", copy, "--resume")
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and warning[0].startswith(f"warning: step_00000006 is damaged: {latest / what} ")
    assert warning[0].endswith(f"; resuming from the newest intact checkpoint, {previous}")
    assert f"resumed from {previous} (step 3)" in result.stderr
    # From step 3 again: the same weights as a run that was never damaged.
    for ema in (None, 0.9, 0.5):
        a = ckpt.load_weights(ckpt.checkpoint_dir(straight, 7), ema)
        b = ckpt.load_weights(ckpt.checkpoint_dir(copy, 7), ema)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_without_an_intact_checkpoint_is_one_line(g, train_env, copy):
    for step in (3, 6):
        damage(ckpt.checkpoint_dir(copy, step) / "model.safetensors", "empty")
    message = g.fails("train", train_env, *g.QUIET, "--run-dir", copy, "--resume")
    assert message == (
        f"--resume: no intact checkpoint in {copy / 'checkpoints'}: step_00000006 is damaged: "
        f"{ckpt.checkpoint_dir(copy, 6) / 'model.safetensors'} {PROBLEMS['empty']}; step_00000003 is damaged: "
        f"{ckpt.checkpoint_dir(copy, 3) / 'model.safetensors'} {PROBLEMS['empty']}"
    )
