"""Post-hoc EMA gone wrong: a damaged or missing snapshot is one line naming the file and what to do (in
``gen ema reconstruct``, ``gen sample --ema phema_*`` and ``gen eval --ema-length``), a kill while a
reconstructed EMA is written leaves nothing under its name and a re-run writes the same bytes, and a full
disk while training writes a snapshot is one line that keeps every earlier snapshot and checkpoint."""

from __future__ import annotations

import errno
import json
import shutil

import pytest

from gen.recipe import load_recipe
from gen.runs import checkpoint as ckpt
from gen.runs import ema_snapshots
from gen.training.engine import train

PHEMA = ["train.ema_lengths=[0.05, 0.1]", "train.ema_snapshot_every=2", "train.ckpt_every=3"]


@pytest.fixture(scope="module")
def phema_run(train_env_module, tmp_path_factory):
    """6 steps tracking power EMAs 0.05 and 0.1, snapshots at 2, 4 and 6, checkpoints at 3 and 6."""
    run = tmp_path_factory.mktemp("phema") / "run"
    train(load_recipe(train_env_module, ["train.grid_samples=0", "train.eval_samples=0", *PHEMA]), run)
    return run


@pytest.fixture
def copy(phema_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(phema_run, run)
    return run


def snapshot_file(run, index=0, sigma_rel=0.05):
    return ema_snapshots.list_snapshots(run)[index].file(sigma_rel)


@pytest.mark.parametrize("how", ["truncated", "missing", "pickle"])
def test_a_damaged_snapshot_is_one_line_naming_it_and_the_fix(g, copy, tmp_path, how):
    victim = snapshot_file(copy)
    folder = victim.parent
    if how == "truncated":
        victim.write_bytes(victim.read_bytes()[:100])
    elif how == "missing":
        victim.unlink()
    else:
        import torch

        torch.save({"w": torch.zeros(2)}, victim)
    fix = (
        f"; the EMA snapshot {folder} is damaged: restore it from a copy, or move it out of "
        f"{folder.parent} to reconstruct from the other snapshots"
    )
    for args in (
        ("ema", "reconstruct", copy, "--sigma-rel", "0.07"),
        ("sample", copy, "--num", 2, "--ema", "phema_0.07", "--out", tmp_path / "s.npz"),
        ("eval", copy, "--metric", "data", "--num", 2, "--ema-length", "0.07"),
    ):
        message = g.fails(*args)
        assert message.startswith(f"{victim} "), message
        assert message.endswith(fix), message
    assert not (ckpt.latest_checkpoint(copy) / "phema_0.07.safetensors").exists()
    assert not (tmp_path / "s.npz").exists()


def test_a_damaged_snapshot_meta_is_one_line_naming_it_and_the_fix(g, copy):
    meta = ema_snapshots.list_snapshots(copy)[1].path / "meta.json"
    meta.write_text('{"step": 4, "ema_len')  # cut short
    message = g.fails("ema", "reconstruct", copy, "--sigma-rel", "0.07")
    assert message.startswith(f"{meta} cannot be read (JSONDecodeError: ")
    assert message.endswith(
        f"; the EMA snapshot {meta.parent} is damaged: restore it from a copy, or move it out of "
        f"{meta.parent.parent} to reconstruct from the other snapshots"
    )


def test_a_kill_while_writing_a_reconstructed_ema_leaves_nothing_under_its_name(g, copy, monkeypatch):
    last = ckpt.latest_checkpoint(copy)
    target = last / "phema_0.07.safetensors"
    real_save = ema_snapshots.save_file

    def killed(tensors, path, *args, **kwargs):
        real_save(tensors, path, *args, **kwargs)
        with open(path, "r+b") as f:  # half of the file reached the disk
            f.truncate(max(1, f.seek(0, 2) // 2))
        raise KeyboardInterrupt

    monkeypatch.setattr(ema_snapshots, "save_file", killed)
    result = g.invoke("ema", "reconstruct", copy, "--sigma-rel", "0.07")
    assert result.exit_code != 0
    assert not target.exists() and not list(last.glob(".*.tmp")), sorted(p.name for p in last.iterdir())
    monkeypatch.setattr(ema_snapshots, "save_file", real_save)
    g.succeeds("ema", "reconstruct", copy, "--sigma-rel", "0.07")
    again = copy.parent / "again"
    shutil.copytree(copy, again)
    target.unlink()
    g.succeeds("ema", "reconstruct", copy, "--sigma-rel", "0.07")  # a run never killed
    assert target.read_bytes() == (ckpt.latest_checkpoint(again) / target.name).read_bytes()


def test_a_full_disk_while_writing_a_snapshot_is_one_line_and_keeps_what_was_written(
    g, train_env, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    real_save, calls = ema_snapshots.save_file, []

    def full_at_step_4(tensors, path, *args, **kwargs):
        calls.append(path)
        if ".step_00000004.tmp" in str(path):
            with open(path, "wb") as f:
                f.write(b"\0" * 64)  # some bytes, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(tensors, path, *args, **kwargs)

    monkeypatch.setattr(ema_snapshots, "save_file", full_at_step_4)
    args = ("train", train_env, *g.QUIET, *PHEMA, "--run-dir", run)
    message = g.fails(*args, only=False)
    snapshots = run / "ema_snapshots"
    assert message.startswith(
        f"no space left on the device for the EMA snapshot {snapshots / 'step_00000004'}: "
    ), message
    assert message.endswith(
        f"free space (or raise train.ema_snapshot_every), then continue with --resume (the previous "
        f"checkpoint, {ckpt.checkpoint_dir(run, 3)}, is intact)"
    ), message
    # Nothing half-written is left, and what was written before reads back whole.
    assert sorted(p.name for p in snapshots.iterdir()) == ["step_00000002"]
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000003"]
    for s in ema_snapshots.list_snapshots(run):
        for sigma_rel in s.lengths:
            ema_snapshots.read_safetensors(s.file(sigma_rel))
    for ema in (None, *ckpt.read_meta(ckpt.checkpoint_dir(run, 3)).ema_keys):
        ckpt.load_weights(ckpt.checkpoint_dir(run, 3), ema)
    # Space freed: the resume writes the rest, the same snapshots as a run that never failed.
    monkeypatch.setattr(ema_snapshots, "save_file", real_save)
    g.succeeds("train", train_env, *g.QUIET, *PHEMA, "--run-dir", run, "--resume")
    straight = tmp_path / "straight"
    train(load_recipe(train_env, [*g.QUIET, *PHEMA]), straight)
    for a, b in zip(ema_snapshots.list_snapshots(run), ema_snapshots.list_snapshots(straight), strict=True):
        assert json.loads((a.path / "meta.json").read_text()) == json.loads(
            (b.path / "meta.json").read_text()
        )
        for sigma_rel in a.lengths:
            assert a.file(sigma_rel).read_bytes() == b.file(sigma_rel).read_bytes()
