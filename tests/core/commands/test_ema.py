"""`gen ema reconstruct` / `gen ema info`, and post-hoc EMA lengths in `gen sample` and `gen eval`, through
the CLI; bad input is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from gen.commands import app
from gen.power_ema import EmaLength, equivalent_decay
from gen.recipe import load_recipe
from gen.runs import checkpoint as ckpt
from gen.runs import ema_snapshots
from gen.training.engine import train

runner = CliRunner()


def fails(*args) -> str:
    """Run ``gen ARGS``, require exit code 2 and a single ``error:`` line; return it without the prefix."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


@pytest.fixture(scope="module")
def phema_run(train_env_module, tmp_path_factory):
    """12 steps tracking lengths 0.05 and 0.10, a snapshot every 2 steps."""
    run = tmp_path_factory.mktemp("phema") / "run"
    overrides = ["train.steps=12", "train.ckpt_every=6", "train.grid_samples=0", "train.eval_samples=0",
                 "train.ema_lengths=[0.05, 0.1]", "train.ema_snapshot_every=2"]  # fmt: skip
    train(load_recipe(train_env_module, overrides), run)
    return run


def test_reconstruct_writes_an_ema_that_sample_and_eval_use(cli, phema_run, tmp_path):
    result = cli("ema", "reconstruct", phema_run, "--sigma-rel", "0.07,0.1")
    last = ckpt.latest_checkpoint(phema_run)
    assert (last / "phema_0.07.safetensors").is_file()
    assert "tracked in training" in result.stdout  # 0.1 was tracked: not written again
    assert f"{equivalent_decay(0.07, 12):.6f}" in result.stdout
    written = ckpt.load_weights(last, EmaLength(0.07))
    again = ema_snapshots.reconstruct(last, [0.07])[EmaLength(0.07)]
    assert all(np.array_equal(written[k].numpy(), again[k].numpy()) for k in written)
    # gen sample by --ema phema_0.07 (stored) equals --ema-length 0.07.
    cli("sample", phema_run, "--num", 4, "--ema", "phema_0.07", "--out", tmp_path / "a.npz")
    cli("sample", phema_run, "--num", 4, "--ema-length", "0.07", "--out", tmp_path / "b.npz")
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert np.array_equal(a["arr_0"], b["arr_0"])
    info = cli("ema", "info", phema_run).stdout
    assert "snapshots: 6 (steps 2 to 12" in info and "reconstructed in this checkpoint: phema_0.07" in info
    assert "reconstructable lengths at step 12" in info


def test_eval_sweeps_reconstructed_lengths_and_resumes(cli, phema_run, tmp_path):
    """``--ema-length`` reconstructs lengths the checkpoint does not store, in memory; the table shows
    the exponential decay of the same width; a second run reads the results back."""
    out = tmp_path / "sweep.json"
    args = ("eval", phema_run, "--metric", "data", "--num", 6, "--ema-length", "0.06,0.08", "--ema", "0.9")
    cli(*args, "--out", out)
    table = json.loads(out.read_text())
    assert [r["ema"] for r in table["rows"]] == ["0.9", "phema_0.06", "phema_0.08"]
    assert table["rows"][1]["as_decay"] == round(equivalent_decay(0.06, 12), 6)
    assert "as_decay" not in table["rows"][0]
    assert not (ckpt.latest_checkpoint(phema_run) / "phema_0.06.safetensors").exists()  # not written
    again = cli(*args, "--out", tmp_path / "again.json")
    assert again.stderr.count("done before, skipped") == 3


def test_post_hoc_ema_errors_are_one_line(cli, phema_run, train_env_module, tmp_path):
    last = ckpt.latest_checkpoint(phema_run)
    message = fails("ema", "reconstruct", phema_run, "--sigma-rel", "0.01")
    assert message.startswith("EMA length 0.01 is ") and "reconstruct lengths " in message
    assert f"the power EMAs of {last} (lengths 0.05, 0.1 at 6 step(s), 2 to 12)" in message
    assert fails("ema", "reconstruct", phema_run, "--sigma-rel", "0.5").startswith(
        "--sigma-rel: an EMA length sigma_rel must be in (0, 0.2887]"
    )
    assert fails("eval", phema_run, "--metric", "data", "--num", 4, "--ema-length", "0.01").startswith(
        "EMA length 0.01 is "
    )
    assert fails("sample", phema_run, "--out", tmp_path / "x.png", "--ema", "phema_0.9").startswith(
        f"{last}: --ema phema_0.9: an EMA length sigma_rel must be in"
    )
    # A run without power EMAs: one line saying what to set.
    plain = tmp_path / "plain"
    train(
        load_recipe(train_env_module, ["train.steps=2", "train.grid_samples=0", "train.eval_samples=0"]),
        plain,
    )
    message = fails("ema", "reconstruct", plain, "--sigma-rel", "0.05")
    assert message == (
        f"{ckpt.latest_checkpoint(plain)} has no power-function EMA to reconstruct from: its run tracked no "
        f"train.ema_lengths and {plain / 'ema_snapshots'} holds no snapshot before it; train with "
        "train.ema_lengths = [0.05, 0.10] and train.ema_snapshot_every = N to choose the EMA after training"
    )
    info = cli("ema", "info", plain).stdout
    assert "tracked power EMAs: none" in info and "snapshots: 0, 0.0 MiB" in info
    assert fails("eval", plain, "--metric", "data", "--num", 4, "--ema-length", "0.05").startswith(
        f"{ckpt.latest_checkpoint(plain)} has no power-function EMA to reconstruct from"
    )


def test_a_damaged_snapshot_is_named_before_any_work(cli, phema_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(phema_run, run)
    victim = ema_snapshots.list_snapshots(run)[1].file(0.05)
    victim.write_bytes(victim.read_bytes()[:100])
    message = fails("eval", run, "--metric", "data", "--num", 4, "--ema-length", "0.08")  # not stored
    assert message.startswith(f"{victim} is truncated")
