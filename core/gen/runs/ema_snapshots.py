"""Snapshots of the power-function EMAs and the post-hoc reconstruction of any EMA length from them.

Layout of ``RUN/ema_snapshots/step_00001000/``: ``phema_<sigma_rel>.safetensors`` for each length of
``train.ema_lengths`` — the whole state dict of that EMA at that step, in ``train.ema_snapshot_dtype`` —
and ``meta.json`` (step, lengths, dtype), written last. A snapshot is written into a hidden temporary
directory and renamed into place like a checkpoint, so a kill leaves at most an ignored
``.step_*.tmp``. Snapshots are never pruned with the checkpoints: they are what the reconstruction
needs. A resume removes the snapshots after the step it resumes from (the run writes them again).

Reconstruction (`reconstruct`) at a checkpoint of step t combines the snapshots of steps before t
and the checkpoint's own power EMAs at t with the least-squares coefficients of
`gen.power_ema.fit_profile`, accumulated in float64; the result is written as the checkpoint's
``phema_<sigma_rel>.safetensors`` (`save_reconstructed`) or used at once (``gen eval
--ema-length``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors.torch import save_file

from gen.errors import DamagedFileError, GenError
from gen.power_ema import MAX_PROFILE_ERROR, EmaLength, Fit, fit_profile, reconstructable_range
from gen.runs import checkpoint as ckpt
from gen.tensor_files import check_safetensors, read_safetensors

SNAPSHOTS = "ema_snapshots"
DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


@attrs.frozen
class Snapshot:
    """One complete snapshot: its folder, step, lengths and dtype."""

    path: Path
    step: int
    lengths: tuple[float, ...]
    dtype: str = "fp32"

    def file(self, sigma_rel: float) -> Path:
        return self.path / ckpt.weights_name(EmaLength(sigma_rel))


def snapshots_dir(run_dir: Path) -> Path:
    return Path(run_dir) / SNAPSHOTS


def _damaged(error: DamagedFileError, folder: Path) -> DamagedFileError:
    """``error`` (a file of the snapshot ``folder``) with what to do about it."""
    fix = (
        f"the EMA snapshot {folder} is damaged: restore it from a copy, or move it out of {folder.parent} "
        "to reconstruct from the other snapshots"
    )
    return DamagedFileError(error.path, error.problem, fix)


def _read_meta(path: Path) -> Snapshot:
    try:
        data = json.loads((path / ckpt.META_FILE).read_text())
        return Snapshot(path, int(data["step"]), tuple(float(s) for s in data["ema_lengths"]), data["dtype"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        error = DamagedFileError(path / ckpt.META_FILE, f"cannot be read ({type(e).__name__}: {e})")
        raise _damaged(error, path) from None


def list_snapshots(run_dir: Path) -> list[Snapshot]:
    """The complete snapshots of a run (``meta.json`` written), oldest first."""
    root = snapshots_dir(run_dir)
    if not root.is_dir():
        return []
    found = [_read_meta(p) for p in root.glob(f"{ckpt.PREFIX}*") if ckpt.is_checkpoint(p)]
    return sorted(found, key=lambda s: s.step)


def write_snapshot(
    run_dir: Path, step: int, weights: dict[float, dict[str, torch.Tensor]], *, dtype: str = "fp32"
) -> Path:
    """Write the snapshot of ``step`` atomically: ``weights`` maps each length to its whole state dict.

    Raises:
        gen.GenError: one line, when the disk has not room for it or the write fails (the temporary
            folder is removed; earlier snapshots and checkpoints are untouched).
    """
    root = snapshots_dir(run_dir)
    final = root / f"{ckpt.PREFIX}{step:08d}"
    tmp = root / f".{final.name}.tmp"
    root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    to = DTYPES[dtype]
    cast = {
        s: {k: v.to(to) if v.is_floating_point() else v for k, v in w.items()} for s, w in weights.items()
    }
    needed = ckpt.bytes_needed(cast, {})  # type: ignore[arg-type]
    if shutil.disk_usage(root).free < needed:
        raise _no_space(run_dir, final, needed)
    try:
        tmp.mkdir()
        for sigma_rel, state in cast.items():
            save_file(
                {k: v.detach().contiguous().cpu() for k, v in state.items()},
                str(tmp / ckpt.weights_name(EmaLength(sigma_rel))),
            )
        meta = {"step": step, "ema_lengths": list(weights), "dtype": dtype}
        (tmp / ckpt.META_FILE).write_text(json.dumps(meta, indent=2))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    except Exception as e:  # noqa: BLE001 - a kill (KeyboardInterrupt) leaves .tmp, which is ignored
        shutil.rmtree(tmp, ignore_errors=True)
        if getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
            raise _no_space(run_dir, final, needed) from None
        raise GenError(f"cannot write the EMA snapshot {final}: {type(e).__name__}: {e}") from None
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    return final


def _no_space(run_dir: Path, final: Path, needed: int) -> GenError:
    previous = ckpt.latest_checkpoint(run_dir)
    then = (
        f"then continue with --resume (the previous checkpoint, {previous}, is intact)"
        if previous
        else "then start again (no checkpoint was written)"
    )
    return GenError(
        f"no space left on the device for the EMA snapshot {final}: it needs about {needed / 2**20:.1f} MiB, "
        f"{shutil.disk_usage(final.parent).free / 2**20:.1f} MiB free; free space (or raise "
        f"train.ema_snapshot_every), {then}"
    )


def discard_after(run_dir: Path, step: int) -> list[Path]:
    """Remove the snapshots after ``step`` (a resume from ``step`` writes them again); returns them."""
    gone = [s.path for s in list_snapshots(run_dir) if s.step > step]
    for path in gone:
        shutil.rmtree(path)
    return gone


# -- reconstruction -----------------------------------------------------------------------------------


@attrs.frozen
class Source:
    """A stored power EMA: the time and length of its profile and the file that holds it."""

    step: int
    sigma_rel: float
    file: Path


def sources(checkpoint: Path) -> list[Source]:
    """What a reconstruction at ``checkpoint`` combines: the snapshots of its run before its step, and
    its own power EMAs at its step (tracked in training)."""
    checkpoint = Path(checkpoint)
    meta = ckpt.read_meta(checkpoint)
    out = [
        Source(snap.step, s, snap.file(s))
        for snap in list_snapshots(checkpoint.parent.parent)
        if snap.step < meta.step
        for s in snap.lengths
    ]
    out += [Source(meta.step, s, checkpoint / ckpt.weights_name(EmaLength(s))) for s in meta.ema_lengths]
    return out


def _describe(checkpoint: Path, found: list[Source]) -> str:
    lengths = ", ".join(repr(s) for s in sorted({s.sigma_rel for s in found}))
    steps = sorted({s.step for s in found})
    return f"the power EMAs of {checkpoint} (lengths {lengths} at {len(steps)} step(s), {steps[0]} to {steps[-1]})"


def plan(
    checkpoint: Path, lengths: Sequence[float], max_error: float = MAX_PROFILE_ERROR
) -> dict[float, Fit]:
    """The fit of each requested length at ``checkpoint``'s step, checked before any weights are read.

    Raises:
        gen.GenError: one line when the run stores no power EMA, or a length is further from what the
            stored profiles can combine than ``max_error`` (the message gives the lengths they can).
    """
    checkpoint = Path(checkpoint)
    found = sources(checkpoint)
    if not found:
        raise GenError(
            f"{checkpoint} has no power-function EMA to reconstruct from: its run tracked no train.ema_lengths "
            f"and {snapshots_dir(checkpoint.parent.parent)} holds no snapshot before it; train with "
            "train.ema_lengths = [0.05, 0.10] and train.ema_snapshot_every = N to choose the EMA after training"
        )
    step = ckpt.read_meta(checkpoint).step
    pairs = [(float(s.step), s.sigma_rel) for s in found]
    fits = {float(s): fit_profile(pairs, (float(step), float(s))) for s in lengths}
    bad = {s: f for s, f in fits.items() if f.error > max_error}
    if bad:
        span = reconstructable_range(pairs, float(step), max_error)
        can = f"lengths {span[0]:.3g} to {span[1]:.3g}" if span else "no length"
        what = ", ".join(f"{s!r} is {f.error:.0%} off" for s, f in bad.items())
        hint = (
            ""
            if len({s.step for s in found}) > 1
            else "; no snapshot before it (set train.ema_snapshot_every)"
        )
        raise GenError(
            f"EMA length {what}: {_describe(checkpoint, found)} reconstruct {can} within {max_error:.0%} "
            f"(relative profile error){hint}"
        )
    return fits


def _read(source: Source, checkpoint: Path, *, header_only: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a source (``header_only``: none, its header checked); a damaged file is a
    `DamagedFileError` naming it and what to do (a snapshot's, or the checkpoint's)."""
    if source.file.parent.parent != snapshots_dir(checkpoint.parent.parent):  # the checkpoint's own
        if header_only:
            ckpt.check_weights(checkpoint, [EmaLength(source.sigma_rel)])
            return {}
        return ckpt.load_weights(checkpoint, EmaLength(source.sigma_rel))
    try:
        if header_only:
            check_safetensors(source.file)
            return {}
        return read_safetensors(source.file)
    except DamagedFileError as e:
        raise _damaged(e, source.file.parent) from None


def check_sources(checkpoint: Path) -> None:
    """Read the headers of every file a reconstruction at ``checkpoint`` needs (a damaged one names itself)."""
    for s in sources(checkpoint):
        _read(s, Path(checkpoint), header_only=True)


def reconstruct(
    checkpoint: Path, lengths: Sequence[float], max_error: float = MAX_PROFILE_ERROR
) -> dict[EmaLength, dict[str, torch.Tensor]]:
    """The EMA of each length at ``checkpoint``: the combination of `sources` with the
    coefficients of `plan`, summed in float64 one source file at a time, returned as whole state
    dicts in the dtype of the checkpoint's weights."""
    fits = plan(checkpoint, lengths, max_error)
    found = sources(checkpoint)
    totals: dict[float, dict[str, torch.Tensor]] = {s: {} for s in fits}
    for i, source in enumerate(found):
        state = _read(source, Path(checkpoint))
        for s, fit in fits.items():
            x = float(fit.coefficients[i])
            for name, tensor in state.items():
                if tensor.is_floating_point():
                    acc = totals[s].get(name)
                    term = tensor.to(torch.float64) * x
                    totals[s][name] = term if acc is None else acc.add_(term)
    reference = read_safetensors(
        Path(checkpoint) / ckpt.weights_name(None)
    )  # dtypes, and what is not averaged
    return {
        EmaLength(s): {k: total[k].to(v.dtype) if k in total else v for k, v in reference.items()}
        for s, total in totals.items()
    }


def save_reconstructed(checkpoint: Path, weights: dict[EmaLength, dict[str, torch.Tensor]]) -> list[Path]:
    """Write reconstructed EMAs into ``checkpoint`` as ``phema_<sigma_rel>.safetensors``, each file
    written under a temporary name and renamed (a kill never leaves half a file under the real name)."""
    out = []
    for key, state in weights.items():
        final = Path(checkpoint) / ckpt.weights_name(key)
        tmp = final.with_name(f".{final.name}.tmp")
        try:
            save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
            os.replace(tmp, final)
        except BaseException as e:  # a kill (KeyboardInterrupt) too: no half file is left, not even .tmp
            tmp.unlink(missing_ok=True)
            if not isinstance(e, OSError):
                raise
            fix = "free space" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "make it writable"
            raise GenError(f"cannot write {final}: {e.strerror or e}; {fix}, then run again") from None
        out.append(final)
    return out


def stored_lengths(checkpoint: Path) -> tuple[EmaLength, ...]:
    """The power EMAs whose files a checkpoint holds (tracked or reconstructed)."""
    names = sorted(p.name for p in Path(checkpoint).glob("phema_*.safetensors"))
    out = []
    for name in names:
        try:
            out.append(EmaLength(float(name[len("phema_") : -len(".safetensors")])))
        except ValueError:
            continue
    return tuple(out)


def summary(run_dir: Path) -> dict[str, Any]:
    """What a run stores for post-hoc EMA: its snapshots, their lengths and bytes on disk."""
    snaps = list_snapshots(run_dir)
    size = sum(f.stat().st_size for s in snaps for f in s.path.iterdir() if f.is_file())
    return {
        "snapshots": len(snaps),
        "steps": [s.step for s in snaps],
        "lengths": sorted({x for s in snaps for x in s.lengths}),
        "dtype": sorted({s.dtype for s in snaps}),
        "bytes": size,
    }


__all__ = [
    "Snapshot",
    "Source",
    "check_sources",
    "discard_after",
    "list_snapshots",
    "plan",
    "reconstruct",
    "save_reconstructed",
    "snapshots_dir",
    "sources",
    "stored_lengths",
    "summary",
    "write_snapshot",
]
