"""The EMA snapshot files (gen.runs.ema_snapshots): layout, fp16, atomic writes, full disk, discarding."""

from __future__ import annotations

import collections

import pytest
import torch
from safetensors.torch import load_file

import gen
from gen.runs import ema_snapshots


def weights(value: float) -> dict[float, dict[str, torch.Tensor]]:
    state = {"w": torch.full((3, 2), value), "steps": torch.tensor([7])}
    return {0.05: state, 0.1: {k: v * 2 for k, v in state.items()}}


def test_layout_and_listing(tmp_path):
    for step in (20, 10):
        ema_snapshots.write_snapshot(tmp_path, step, weights(step / 3))
    snaps = ema_snapshots.list_snapshots(tmp_path)
    assert [(s.step, s.lengths, s.dtype) for s in snaps] == [
        (10, (0.05, 0.1), "fp32"),
        (20, (0.05, 0.1), "fp32"),
    ]
    assert snaps[0].path == tmp_path / "ema_snapshots" / "step_00000010"
    loaded = load_file(str(snaps[1].file(0.1)))
    assert torch.equal(loaded["w"], torch.full((3, 2), 2 * 20 / 3)) and torch.equal(
        loaded["steps"], torch.tensor([14])
    )
    (tmp_path / "ema_snapshots" / ".step_00000030.tmp").mkdir()  # a write killed half-way is not listed
    (tmp_path / "ema_snapshots" / "step_00000040").mkdir()  # nor one without meta.json
    assert [s.step for s in ema_snapshots.list_snapshots(tmp_path)] == [10, 20]
    assert ema_snapshots.summary(tmp_path)["snapshots"] == 2


def test_fp16_snapshots_keep_integers(tmp_path):
    path = ema_snapshots.write_snapshot(tmp_path, 5, weights(1 / 3), dtype="fp16")
    loaded = load_file(str(path / "phema_0.05.safetensors"))
    assert loaded["w"].dtype == torch.float16 and loaded["steps"].dtype == torch.int64
    assert ema_snapshots.list_snapshots(tmp_path)[0].dtype == "fp16"


def test_discard_after(tmp_path):
    for step in (2, 4, 6):
        ema_snapshots.write_snapshot(tmp_path, step, weights(step))
    gone = ema_snapshots.discard_after(tmp_path, 3)
    assert [p.name for p in gone] == ["step_00000004", "step_00000006"]
    assert [s.step for s in ema_snapshots.list_snapshots(tmp_path)] == [2]


def test_full_disk_and_failed_writes_are_one_line_and_leave_nothing(tmp_path, monkeypatch):
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(ema_snapshots.shutil, "disk_usage", lambda path: usage(10, 10, 0))
    with pytest.raises(gen.GenError) as e:
        ema_snapshots.write_snapshot(tmp_path, 8, weights(1.0))
    assert str(e.value).startswith(
        f"no space left on the device for the EMA snapshot {tmp_path / 'ema_snapshots' / 'step_00000008'}"
    )
    assert str(e.value).endswith("then start again (no checkpoint was written)")  # none in tmp_path
    monkeypatch.undo()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ema_snapshots, "save_file", broken)
    with pytest.raises(
        gen.GenError, match=r"no space left on the device for the EMA snapshot .*step_00000008"
    ):
        ema_snapshots.write_snapshot(tmp_path, 8, weights(1.0))
    assert list((tmp_path / "ema_snapshots").iterdir()) == []


def test_damaged_meta_is_named(tmp_path):
    path = ema_snapshots.write_snapshot(tmp_path, 3, weights(1.0))
    (path / "meta.json").write_text("{")
    with pytest.raises(gen.GenError, match=r"meta.json cannot be read \(JSONDecodeError"):
        ema_snapshots.list_snapshots(tmp_path)
