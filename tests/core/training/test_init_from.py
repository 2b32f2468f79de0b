"""``train.init_from``: a run starts from another run's weights (raw or an EMA) with a fresh optimizer at
step 0; fixed sin-cos tables follow a new resolution; a missing or incompatible checkpoint is one line."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from gen.commands import app
from gen.recipe import load_recipe
from gen.runs import checkpoint as ckpt
from gen.training.engine import Trainer

runner = CliRunner()
QUIET = ("train.grid_samples=0", "train.eval_samples=0")

#: A tiny JiT (4-pixel patches) on the tiny plugin's blobs: its position table is a fixed sin-cos buffer.
JIT = (
    "backbone.name=jit",
    "backbone.patch_size=4",
    "backbone.hidden_size=16",
    "backbone.depth=1",
    "backbone.num_heads=2",
    "backbone.bottleneck_dim=0",
    "backbone.in_context_len=0",
)


def fails(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return " ".join(result.stderr.split()).removeprefix("error: ")


def started(recipe, run_dir):
    """A trainer set up (not trained) in ``run_dir``: what the run starts from."""
    trainer = Trainer(recipe, run_dir)
    trainer.setup()
    trainer.lock.release()
    return trainer


@pytest.fixture
def source(train_env, tmp_path, cli):
    """A 6-step run to start from (EMAs 0.9 and 0.5): (recipe, run directory)."""
    run = tmp_path / "source"
    cli("train", train_env, *QUIET, "--run-dir", run)
    return train_env, run


@pytest.mark.parametrize(("ema", "stem"), [(None, "model"), ("0.9", "ema_0.9")])
def test_init_from_starts_from_the_weights_with_a_fresh_optimizer_at_step_0(source, tmp_path, ema, stem):
    recipe, run = source
    given = load_file(str(ckpt.latest_checkpoint(run) / f"{stem}.safetensors"))
    overrides = [f"train.init_from='{run}'", *([f"train.init_ema={ema}"] if ema else [])]
    trainer = started(load_recipe(recipe, overrides), tmp_path / "tune")
    assert trainer.step == 0 and trainer.optimizer.state_dict()["state"] == {}
    for state in (trainer.model.state_dict(), trainer.ema.state_dict(0, trainer.model)):
        assert state.keys() == given.keys() and all(torch.equal(state[k], given[k]) for k in given)


def test_fine_tuning_through_the_cli(source, tmp_path, cli):
    recipe, run = source
    tune = tmp_path / "tune"
    chosen = run / "checkpoints" / "step_00000003"
    result = cli(
        "train", recipe, *QUIET, f"train.init_from='{chosen}'", "train.init_ema=0.5", "--run-dir", tune
    )
    assert f"initialised from {chosen} (EMA 0.5)" in " ".join(result.output.split())
    latest = ckpt.latest_checkpoint(tune)
    assert latest.name == "step_00000006"  # 6 steps of its own, counted from 0
    optimizer = ckpt.load_state(latest)["optimizer"]["state"]
    assert {int(s["step"]) for s in optimizer.values()} == {6}  # a fresh AdamW: 6 updates, not 9 or 12
    provenance = json.loads((tune / "provenance.jsonl").read_text().splitlines()[0])
    assert provenance["init_from"] == {"checkpoint": str(chosen), "step": 3, "ema": "0.5"}
    # A resume continues the run's own checkpoint and reads nothing of init_from (here moved away).
    chosen.rename(tmp_path / "moved")
    cli("train", tune, "--resume", "train.steps=7")
    assert ckpt.latest_checkpoint(tune).name == "step_00000007"


def test_another_resolution_keeps_the_rebuilt_position_table(train_env, tmp_path, cli):
    small = tmp_path / "small"
    cli("train", train_env, *QUIET, *JIT, "data.size=8", "train.steps=2", "--run-dir", small)
    recipe = load_recipe(
        train_env, [*QUIET, *JIT, "data.size=16", "train.steps=1", f"train.init_from='{small}'"]
    )
    given = load_file(str(ckpt.latest_checkpoint(small) / "model.safetensors"))
    trainer = started(recipe, tmp_path / "probe")
    state = trainer.model.state_dict()
    assert state["pos_embed"].shape == (1, 16, 16) and given["pos_embed"].shape == (1, 4, 16)
    fresh = started(load_recipe(train_env, [*QUIET, *JIT, "data.size=16", "train.steps=1"]), tmp_path / "f")
    assert torch.equal(state["pos_embed"], fresh.model.state_dict()["pos_embed"])  # the 16 px table
    assert all(torch.equal(state[k], given[k]) for k in given if k != "pos_embed")
    result = cli(
        "train",
        train_env,
        *QUIET,
        *JIT,
        "data.size=16",
        "train.steps=1",
        f"train.init_from='{small}'",
        "--run-dir",
        tmp_path / "large",
    )
    assert "kept as built (this size, this process): pos_embed" in " ".join(result.output.split())


def test_a_missing_or_incompatible_init_from_is_one_line(source, tmp_path):
    recipe, run = source
    target = tmp_path / "t"
    missing = tmp_path / "nowhere"
    assert fails("train", recipe, f"train.init_from='{missing}'", "--run-dir", target) == (
        f"train.init_from = '{missing}': {missing} is neither a run directory with checkpoints nor a checkpoint "
        "(RUN/checkpoints/step_*); train one with `gen train RECIPE --run-dir RUN`"
    )
    latest = ckpt.latest_checkpoint(run)
    assert fails("train", recipe, "backbone.hidden=16", f"train.init_from='{run}'", "--run-dir", target) == (
        f"train.init_from: the weights of {latest} do not fit the recipe's backbone: 6 tensor(s) of other shapes: "
        "embed.weight (checkpoint (4, 32), model (4, 16)), inp.weight (checkpoint (32, 49), model (16, 49)), "
        "inp.bias (checkpoint (32,), model (16,)), norm.weight (checkpoint (32,), model (16,)) and 2 more. Only "
        "fixed tables (sin-cos positions) follow a new resolution; keep the rest of the architecture (patch "
        "size, width, depth, classes) as the checkpoint's"
    )
    assert fails("train", recipe, f"train.init_from='{run}'", "train.init_ema=0.7", "--run-dir", target) == (
        f"train.init_from = '{run}': {latest}: train.init_ema = 0.7: this checkpoint has no such EMA; choose one "
        "of: 0.9, 0.5, none"
    )
    assert fails("train", recipe, *JIT, f"train.init_from='{run}'", "--run-dir", target) == (
        f"train.init_from = '{run}': {latest} holds a 'tinymlp' backbone and the recipe trains 'jit'; start from "
        "a checkpoint of the same backbone"
    )
    assert fails("train", recipe, "train.init_ema=0.9", "--run-dir", target) == (
        f"{recipe}: [train]: init_ema chooses the weights of init_from, and init_from is not set"
    )
    assert not (target / "checkpoints").exists()
