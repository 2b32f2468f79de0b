"""The checkpoint format, read and write: safetensors weights, a tensors-only state, a typed meta record.

Layout of ``RUN/checkpoints/step_00001000/``:

- ``model.safetensors``, ``ema_<decay>.safetensors`` and ``phema_<sigma_rel>.safetensors``
  (`weights_name`): whole state dicts of the backbone, whatever the parallelism it was trained
  with (``phema_*``: the power-function EMAs it tracks, and lengths reconstructed after training);
- ``state.pt``: optimizer state, step, data position and every rank's RNG state, loaded with
  ``torch.load(weights_only=True)`` (no arbitrary unpickling);
- ``meta.json``: `CheckpointMeta` (step, world size, EMA decays and lengths, backbone, data spec,
  version).

A checkpoint is written into a hidden temporary directory and renamed into place, so a kill during the
write leaves at most a stray ``.step_*.tmp`` directory, which reading ignores. The latest checkpoint is
the complete directory with the highest step: there is no pointer file to get out of sync. A write that
fails (a full disk) removes its temporary directory and is one line saying how much space it needs;
the free space is checked before writing, too. A file that cannot be read back is a
`DamagedFileError` naming it and what is wrong (`gen.tensor_files`).
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors.torch import save_file

from gen.errors import DamagedFileError, GenError
from gen.power_ema import EmaKey, EmaLength, parse_ema
from gen.protocols import DataSpec
from gen.tensor_files import check_safetensors, read_safetensors, read_torch

PREFIX = "step_"
META_FILE = "meta.json"
STATE_FILE = "state.pt"
RECIPE_FILE = "recipe.toml"  # the run's resolved recipe, so that a copied checkpoint folder samples alone
MODEL_STEM = "model"


def weights_name(ema: EmaKey | str) -> str:
    """The weights file of EMA ``ema`` (a decay, a power EMA's `EmaLength`), or of
    the raw weights for None.

    Example:
        >>> weights_name(0.9999), weights_name(EmaLength(0.05)), weights_name(None)
        ('ema_0.9999.safetensors', 'phema_0.05.safetensors', 'model.safetensors')
    """
    return f"{weights_stem(ema)}.safetensors"


def weights_stem(ema: EmaKey | str) -> str:
    """`weights_name` without the suffix: ``ema_0.9999``, ``phema_0.05``, ``model``, or a string as is
    (``loss_terms``: the trainable parts of the loss terms, which no EMA and no sampling reads)."""
    if ema is None or isinstance(ema, str):
        return MODEL_STEM if ema is None else ema
    return str(ema) if isinstance(ema, EmaLength) else f"ema_{float(ema)!r}"


@attrs.frozen(kw_only=True)
class CheckpointMeta:
    """What ``meta.json`` says of a checkpoint.

    Attributes:
        step: Optimizer steps taken.
        world_size: Processes that trained it (the RNG states in ``state.pt`` are per rank).
        ema_decays: The exponential EMAs stored beside the raw weights.
        ema_lengths: The power-function EMAs tracked in training, stored beside them (σ_rel).
        backbone: The registered backbone's name.
        gen_version: The version that wrote it.
        data_spec: The data the backbone was built for, so that sampling rebuilds the model without the
            data (None in checkpoints written before it was stored).
    """

    step: int
    world_size: int = 1
    ema_decays: tuple[float, ...] = attrs.field(default=(), converter=lambda d: tuple(float(x) for x in d))
    ema_lengths: tuple[float, ...] = attrs.field(default=(), converter=lambda d: tuple(float(x) for x in d))
    backbone: str = ""
    gen_version: str | None = None
    data_spec: DataSpec | None = None

    def to_json(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["ema_decays"] = list(self.ema_decays)
        out["ema_lengths"] = list(self.ema_lengths)
        if not self.ema_lengths:
            del out["ema_lengths"]  # a run without power EMAs writes the meta.json it always did
        out["data_spec"] = self.data_spec.to_json() if self.data_spec is not None else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckpointMeta:
        spec = data.get("data_spec")
        return cls(
            step=int(data["step"]),
            world_size=int(data.get("world_size", 1)),
            ema_decays=data.get("ema_decays", ()),
            ema_lengths=data.get("ema_lengths", ()),
            backbone=str(data.get("backbone", "")),
            gen_version=data.get("gen_version"),
            data_spec=DataSpec.from_json(spec) if spec else None,
        )

    @property
    def ema_keys(self) -> tuple[EmaKey, ...]:
        """The EMAs tracked in training: the decays, then the power EMAs."""
        return (*self.ema_decays, *(EmaLength(s) for s in self.ema_lengths))

    def find_ema(self, ema: str) -> EmaKey:
        """An EMA named on a command line (``0.9999``, ``0.99990``, ``phema_0.05``; ``none``/``raw`` = raw
        weights) as a tracked one (None for the raw weights); a `gen.GenError` listing them else."""
        try:
            key = parse_ema(ema)
        except ValueError:
            key = math.nan
        if key is None:
            return None
        for known in self.ema_keys:
            if known == key:
                return known
        names = ", ".join(
            [
                *(repr(d) for d in self.ema_decays),
                *(str(e) for e in self.ema_keys[len(self.ema_decays) :]),
                "none",
            ]
        )
        raise GenError(f"--ema {ema}: this checkpoint has no such EMA; choose one of: {names}")


# -- where --------------------------------------------------------------------------------------------


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"{PREFIX}{step:08d}"


def is_checkpoint(path: Path) -> bool:
    """A complete checkpoint directory (its ``meta.json`` is written last, inside the temporary one)."""
    return (Path(path) / META_FILE).is_file()


def _old_name(final: Path) -> Path:
    return final.parent / f".{final.name}.old"


def _restore_interrupted_rewrites(root: Path) -> None:
    """A kill while a step was written a second time can leave its previous copy as ``.step_N.old`` and
    no ``step_N``: rename it back (and drop it where the new copy made it)."""
    for old in root.glob(f".{PREFIX}*.old"):
        final = root / old.name[1 : -len(".old")]
        if is_checkpoint(final):
            shutil.rmtree(old, ignore_errors=True)
        elif is_checkpoint(old) and not final.exists():
            os.rename(old, final)


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    _restore_interrupted_rewrites(root)
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and is_checkpoint(p)]
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


# -- write --------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tensor_bytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def bytes_needed(weights: dict[EmaKey, dict[str, torch.Tensor]], state: dict[str, Any]) -> int:
    """About what a checkpoint takes on disk: its tensors, and 64 KiB per file for headers and blocks."""
    return _tensor_bytes(list(weights.values())) + _tensor_bytes(state) + (len(weights) + 2) * 2**16


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _no_space(final: Path, needed: int) -> GenError:
    free = shutil.disk_usage(final.parent).free
    previous = latest_checkpoint(final.parent.parent)
    then = (
        f"free space, then continue with --resume (the previous checkpoint, {previous}, is intact)"
        if previous
        else "free space and start again (no checkpoint was written)"
    )
    return GenError(
        f"no space left on the device for checkpoint {final}: it needs about {_mib(needed)}, "
        f"{_mib(free)} free in {final.parent}; {then}"
    )


def check_free_space(final: Path, needed: int) -> None:
    """Refuse to start writing the checkpoint ``final`` when its disk has less than ``needed`` bytes free."""
    if shutil.disk_usage(final.parent).free < needed:
        raise _no_space(final, needed)


def _write_failed(tmp: Path, final: Path, needed: int, error: Exception) -> GenError:
    """The one-line error of a failed write, after removing the temporary directory (which would keep
    a full disk full). torch.save says a full disk as ``basic_ios::clear: iostream error``, without
    errno: the free space left tells."""
    written = sum(f.stat().st_size for f in tmp.iterdir() if f.is_file()) if tmp.is_dir() else 0
    full = getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
    full = full or shutil.disk_usage(final.parent).free < needed - written
    shutil.rmtree(tmp, ignore_errors=True)
    if full:
        return _no_space(final, needed)
    first = (str(error).strip().splitlines() or [""])[0]
    return GenError(f"cannot write checkpoint {final}: {type(error).__name__}: {first}")


def _write_files(
    tmp: Path,
    meta: CheckpointMeta,
    weights: dict[EmaKey, dict[str, torch.Tensor]],
    state: dict[str, Any] | None,
    recipe_text: str | None,
) -> None:
    tmp.mkdir(parents=True)
    for ema, tensors in weights.items():
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / weights_name(ema))
        )
    if state is not None:
        torch.save(state, tmp / STATE_FILE)
    if recipe_text is not None:
        (tmp / RECIPE_FILE).write_text(recipe_text)
    (tmp / META_FILE).write_text(json.dumps(meta.to_json(), indent=2))
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())


def save_checkpoint(
    run_dir: Path,
    meta: CheckpointMeta,
    *,
    weights: dict[EmaKey, dict[str, torch.Tensor]],
    state: dict[str, Any] | None,
    recipe_text: str | None = None,
) -> Path:
    """Write one checkpoint atomically; returns its directory.

    Args:
        meta: Its meta record (``meta.step`` names the directory).
        weights: EMA decay (None: the raw weights) -> whole state dict, saved as safetensors.
        state: Tensors, numbers, strings, lists and dicts only (saved with ``torch.save``); None for a
            checkpoint that samples but does not resume (converted published weights).
        recipe_text: The run's resolved recipe, stored inside the folder (``recipe.toml``).

    Raises:
        gen.GenError: the disk has not enough free space (checked first) or the write failed; the
            temporary directory is removed and earlier checkpoints are untouched.
    """
    final = checkpoint_dir(run_dir, meta.step)
    tmp = final.parent / f".{final.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    final.parent.mkdir(parents=True, exist_ok=True)
    needed = bytes_needed(weights, state or {})
    check_free_space(final, needed)
    try:
        _write_files(tmp, meta, weights, state, recipe_text)
    except Exception as e:  # noqa: BLE001 - not a kill (KeyboardInterrupt): that leaves .tmp, which is ignored
        raise _write_failed(tmp, final, needed, e) from None
    if final.exists():  # the same step written again (a SIGTERM right after a periodic save)
        old = _old_name(final)
        if old.exists():
            shutil.rmtree(old)
        os.rename(final, old)  # step_N is missing from here...
        os.rename(tmp, final)  # ...to here: list_checkpoints() puts the old one back after a kill between
        shutil.rmtree(old)
    else:
        os.rename(tmp, final)
    _fsync_dir(final.parent)
    return final


# -- read ---------------------------------------------------------------------------------------------


def read_meta(checkpoint: Path) -> CheckpointMeta:
    path = Path(checkpoint) / META_FILE
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        return CheckpointMeta.from_json(data)
    except (OSError, ValueError, KeyError, TypeError) as e:
        error = DamagedFileError(path, f"cannot be read ({type(e).__name__}: {e})")
        raise _damaged(Path(checkpoint), error) from None


def _damaged(checkpoint: Path, error: DamagedFileError) -> DamagedFileError:
    """``error`` with what to do: use an earlier checkpoint (named when the run has one)."""
    step = checkpoint.name.removeprefix(PREFIX)
    found = list_checkpoints(checkpoint.parent.parent) if step.isdigit() else []
    earlier = [p for p in found if int(p.name[len(PREFIX) :]) < int(step)]
    state = "incomplete" if error.problem == "is missing" else "damaged"
    fix = f"the checkpoint is {state}, use an earlier one" + (f": {earlier[-1]}" if earlier else "")
    return DamagedFileError(error.path, error.problem, fix)


def load_weights(checkpoint: Path, ema: EmaKey = None) -> dict[str, torch.Tensor]:
    """The state dict of EMA ``ema`` (None: the raw weights) of a checkpoint; a missing or damaged file
    is a `DamagedFileError` naming it, what is wrong and an earlier checkpoint."""
    checkpoint = Path(checkpoint)
    try:
        return read_safetensors(checkpoint / weights_name(ema))
    except DamagedFileError as e:
        raise _damaged(checkpoint, e) from None


def load_state(checkpoint: Path) -> dict[str, Any]:
    """The training state of a checkpoint, loaded without unpickling arbitrary objects (a file that holds
    any is refused, never run: a `DamagedFileError`, as a missing or damaged one)."""
    checkpoint = Path(checkpoint)
    try:
        return read_torch(checkpoint / STATE_FILE)
    except DamagedFileError as e:
        raise _damaged(checkpoint, e) from None


def check_weights(checkpoint: Path, emas: Iterable[EmaKey]) -> None:
    """Read the headers of the weights files of ``emas`` (None: the raw weights), not their data: a
    missing, truncated or foreign file is a `DamagedFileError`."""
    checkpoint = Path(checkpoint)
    for ema in emas:
        try:
            check_safetensors(checkpoint / weights_name(ema))
        except DamagedFileError as e:
            raise _damaged(checkpoint, e) from None


__all__ = [
    "RECIPE_FILE",
    "CheckpointMeta",
    "bytes_needed",
    "check_weights",
    "checkpoint_dir",
    "is_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_state",
    "load_weights",
    "prune_checkpoints",
    "read_meta",
    "save_checkpoint",
    "weights_name",
    "weights_stem",
]
