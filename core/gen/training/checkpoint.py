"""Checkpoints: safetensors weights plus a tensors-only training state, written atomically.

Layout of ``RUN/checkpoints/step_00001000/``:

- ``model.safetensors`` and ``ema_<decay>.safetensors``: full state dicts of the backbone;
- ``state.pt``: optimizer state, step, data position and every rank's RNG state, loaded with
  ``torch.load(weights_only=True)`` (no arbitrary unpickling);
- ``meta.json``: step, world size, EMA decays, gen version.

A checkpoint is written into a hidden temporary directory and renamed into place, so a kill during the
write leaves at most a stray ``.step_*.tmp`` directory, which loading ignores. The latest checkpoint is
the complete directory with the highest step.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from gen.errors import GenError

PREFIX = "step_"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"{PREFIX}{step:08d}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    weights: dict[str, dict[str, torch.Tensor]],
    state: dict[str, Any],
    meta: dict[str, Any],
) -> Path:
    """Write one checkpoint atomically.

    Args:
        weights: file stem -> state dict (``model``, ``ema_0.9999``...), saved as safetensors.
        state: tensors, numbers, strings, lists and dicts only (saved with torch.save).
        meta: JSON-able facts about the checkpoint.
    """
    final = checkpoint_dir(run_dir, step)
    tmp = final.parent / f".{final.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for stem, tensors in weights.items():
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / f"{stem}.safetensors")
        )
    torch.save(state, tmp / "state.pt")
    (tmp / "meta.json").write_text(json.dumps({"step": step, **meta}, indent=2))
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():  # the same step written again (a SIGTERM right after a periodic save)
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [
        p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / "meta.json").is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def prune_checkpoints(run_dir: Path, keep_last: int, milestone_every: int | None) -> None:
    """Delete all but the newest ``keep_last`` checkpoints and the milestones."""
    found = list_checkpoints(run_dir)
    for path in found[: max(0, len(found) - keep_last)]:
        step = int(path.name[len(PREFIX) :])
        if milestone_every and step % milestone_every == 0:
            continue
        shutil.rmtree(path)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise GenError(f"checkpoint file missing: {path}; the checkpoint is incomplete, use an earlier one")
    return load_file(str(path))


def load_state(checkpoint: Path) -> dict[str, Any]:
    """The training state of a checkpoint, loaded without unpickling arbitrary objects."""
    path = checkpoint / "state.pt"
    if not path.is_file():
        raise GenError(f"checkpoint file missing: {path}; the checkpoint is incomplete, use an earlier one")
    return torch.load(path, map_location="cpu", weights_only=True)


def read_meta(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / "meta.json").read_text())
