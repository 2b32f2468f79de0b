"""Checkpoint writes that go wrong: a SIGKILL in the middle (resume is bit-identical), a full disk (one
line with the space needed, the temporary folder removed, the previous checkpoint intact)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gen.errors import GenError
from gen.recipe import load_recipe
from gen.runs import checkpoint as ckpt
from gen.runs.lock import LOCK_FILE
from gen.training.engine import train

HERE = Path(__file__).resolve().parent


def all_tensors(checkpoint: Path) -> dict:
    """Every weights file and the training state of a checkpoint (but the global RNG's state, which a
    resume reseeds from the step: no random draw of the objective comes from it)."""
    meta = ckpt.read_meta(checkpoint)
    out = {ckpt.weights_stem(e): ckpt.load_weights(checkpoint, e) for e in (None, *meta.ema_decays)}
    out["state"] = {k: v for k, v in ckpt.load_state(checkpoint).items() if k != "rng"}
    return out


def assert_identical(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_identical(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}/{i}")
    else:
        assert a == b, where


def test_sigkill_during_a_checkpoint_write_then_resume_is_bit_identical(g, train_env, tmp_path):
    run = tmp_path / "killed"
    # Killed after two of the three weights files of step 6: no state.pt, no meta.json, no rename.
    proc = g.process(
        6, 2, "train", train_env, *g.QUIET, "--run-dir", run, script=HERE / "kill_during_write.py"
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -9, err[-3000:]
    tmp = run / "checkpoints" / ".step_00000006.tmp"
    assert sorted(p.name for p in tmp.iterdir()) == ["ema_0.9.safetensors", "model.safetensors"]
    assert (run / LOCK_FILE).is_file()  # left by the killed process, held by nobody
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000003"]

    result = g.succeeds("train", train_env, *g.QUIET, "--run-dir", run, "--resume")
    assert f"resumed from {ckpt.checkpoint_dir(run, 3)} (step 3)" in result.stderr
    straight = tmp_path / "straight"
    train(load_recipe(train_env, g.QUIET), straight)
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000003", "step_00000006"]
    assert not tmp.exists()
    assert_identical(all_tensors(ckpt.checkpoint_dir(straight, 6)), all_tensors(ckpt.checkpoint_dir(run, 6)))


def _mount_namespace(disk: Path) -> list[str] | str:
    """The command prefix that runs a command with a small tmpfs mounted at ``disk`` in a mount namespace
    of its own, or the reason why this machine cannot."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return "needs Linux and unshare(1) to mount a tmpfs"
    prefix = (
        ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--mount"]
    )
    probe = subprocess.run(
        [*prefix, "sh", "-c", f"mount -t tmpfs -o size=8m tmpfs '{disk}'"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a mount namespace here ({' '.join(prefix)}): {probe.stderr.strip()}"
    return prefix


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(train_env, tmp_path):
    disk, report_file = tmp_path / "disk", tmp_path / "report.json"
    disk.mkdir()
    prefix = _mount_namespace(disk)
    if isinstance(prefix, str):
        pytest.skip(prefix)
    script = f"mount -t tmpfs -o size=8m tmpfs '{disk}' && exec '{sys.executable}' \"$@\""
    cmd = [
        *prefix,
        "sh",
        "-c",
        script,
        "sh",
        str(HERE / "disk_full.py"),
        str(train_env),
        str(disk),
        str(report_file),
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_file.read_text())
    run = disk / "run" / "checkpoints"
    for case in ("precheck", "midwrite"):
        r = report[case]
        assert r["exit_code"] == 2 and r["exception"] is None, r
        lines = r["stderr"].strip().splitlines()
        assert "Traceback" not in r["stderr"] and [x for x in lines if x.startswith("error:")] == lines[-1:]
        assert lines[-1].startswith(
            f"error: no space left on the device for checkpoint {run / 'step_00000006'}: it needs about 0."
        )
        assert lines[-1].endswith(
            f" free in {run}; free space, then continue with --resume (the previous checkpoint, "
            f"{run / 'step_00000003'}, is intact)"
        )
        assert "basic_ios" not in r["stderr"]
        # No temporary folder left to keep the disk full; the previous checkpoint reads back whole.
        assert r["entries"] == r["intact"] == ["step_00000003"], r
    # The mid-write case is the one of the issue: torch.save's C++ error ('basic_ios::clear: iostream
    # error', or 'enforce fail at inline_container.cc'), which names neither errno nor space.
    [error] = report["write_errors"]
    assert error.startswith("RuntimeError: ") and "space" not in error.lower()
    assert report["resumed"]["exit_code"] == 0, report["resumed"]
    assert report["resumed"]["intact"] == ["step_00000003", "step_00000006"]


def test_a_failed_write_removes_its_temporary_folder(train_env, tmp_path, monkeypatch):
    """The failure torch.save gives on a full disk (no errno, no 'space' in it), without a real disk."""
    run = tmp_path / "run"
    train(load_recipe(train_env, ["train.steps=3", "train.grid_samples=0", "train.eval_samples=0"]), run)
    before = all_tensors(ckpt.checkpoint_dir(run, 3))
    real_save, free = torch.save, {"now": 10**12}

    def full_disk(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        free["now"] = 1024  # the disk is full now
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")

    monkeypatch.setattr(ckpt.torch, "save", full_disk)
    monkeypatch.setattr(ckpt.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**12, 0, free["now"]))
    with pytest.raises(GenError) as info:
        train(load_recipe(train_env, ["train.grid_samples=0", "train.eval_samples=0"]), run, resume=True)
    message = str(info.value)
    assert message.startswith(f"no space left on the device for checkpoint {ckpt.checkpoint_dir(run, 6)}: ")
    assert "\n" not in message and "0.0 MiB free" in message
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000003"]
    assert_identical(before, all_tensors(ckpt.checkpoint_dir(run, 3)))

    # Any other failure of the write: one line naming the checkpoint, and the folder removed too.
    free["now"] = 10**12
    monkeypatch.setattr(
        ckpt.torch, "save", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "denied"))
    )
    with pytest.raises(
        GenError, match=r"^cannot write checkpoint .*step_00000006: PermissionError: \[Errno 13\] denied$"
    ):
        train(load_recipe(train_env, ["train.grid_samples=0", "train.eval_samples=0"]), run, resume=True)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000003"]


def test_free_space_is_checked_before_writing(tmp_path, monkeypatch):
    weights = {None: {"w": torch.zeros(1000)}}
    state = {"optimizer": {"m": torch.zeros(2000)}, "step": 1}
    needed = ckpt.bytes_needed(weights, state)
    assert needed == 4000 + 8000 + 3 * 2**16
    writes = []
    monkeypatch.setattr(ckpt, "save_file", lambda *a, **k: writes.append(a))
    monkeypatch.setattr(ckpt.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 0, needed - 1))
    with pytest.raises(
        GenError,
        match=r"it needs about 0\.2 MiB, 0\.2 MiB free in .*; free space and start again \(no checkpoint was written\)$",
    ):
        ckpt.save_checkpoint(tmp_path, ckpt.CheckpointMeta(step=1), weights=weights, state=state)
    assert writes == [] and list((tmp_path / "checkpoints").iterdir()) == []
