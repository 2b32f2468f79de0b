"""``python disk_full.py RECIPE DISK REPORT``: the disk-full scenarios on the small filesystem mounted at
DISK (a tmpfs in a mount namespace of its own, see test_checkpoint_writes.py), each through ``gen train``
in this process; what happened goes to the JSON file REPORT, outside DISK, for the test to check.

1. The disk fills up right after the checkpoint of step 3: the checkpoint of step 6 is refused before
   any byte is written (the free-space check).
2. The same with the free-space check switched off, and room left for the weights but not for
   ``state.pt``: torch.save fails in the middle of the checkpoint (``basic_ios::clear``, no errno).
3. Space freed: ``--resume`` continues from step 3 to step 6.
"""

import json
import os
import sys
from pathlib import Path

from typer.testing import CliRunner

import gen.runs.checkpoint as ckpt
from gen.commands import app

recipe, disk, report_file = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
run = disk / "run"
filler = disk / "filler"
quiet = ["train.grid_samples=0", "train.eval_samples=0", "--run-dir", str(run)]
report: dict = {}


def fill(leave: int) -> None:
    """Fill DISK, leaving about ``leave`` bytes free."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(filler, "ab") as f:
        f.write(b"\0" * max(0, free - leave))
        f.flush()
        os.fsync(f.fileno())


def state_of_the_run(name: str, result) -> None:  # noqa: ANN001
    checkpoints = run / "checkpoints"
    intact = []
    for path in ckpt.list_checkpoints(run):
        meta = ckpt.read_meta(path)
        for ema in (None, *meta.ema_decays):
            ckpt.load_weights(path, ema)
        ckpt.load_state(path)
        intact.append(path.name)
    report[name] = {
        "exit_code": result.exit_code,
        "stderr": result.stderr,
        "exception": repr(result.exception) if result.exit_code not in (0, 2) else None,
        "entries": sorted(p.name for p in checkpoints.iterdir()),
        "intact": intact,
    }


runner = CliRunner()
real_save = ckpt.save_checkpoint


def save_then_fill(run_dir, meta, **kwargs):  # noqa: ANN001, ANN003
    path = real_save(run_dir, meta, **kwargs)
    if meta.step == 3:
        fill(leave=16 * 1024)
    return path


real_write_failed = getattr(ckpt, "_write_failed", None)


def write_failed(tmp, final, needed, error):  # noqa: ANN001
    """What the write itself raised, before it became the one-line error."""
    report.setdefault("write_errors", []).append(f"{type(error).__name__}: {error}")
    return real_write_failed(tmp, final, needed, error)


if real_write_failed is not None:  # (a version without it fails the test on what it prints)
    ckpt._write_failed = write_failed
ckpt.save_checkpoint = save_then_fill
state_of_the_run("precheck", runner.invoke(app, ["train", recipe, *quiet]))
ckpt.save_checkpoint = real_save

filler.unlink()
step3 = ckpt.checkpoint_dir(run, 3)
weights_blocks = sum(p.stat().st_blocks * 512 for p in step3.glob("*.safetensors"))
fill(leave=weights_blocks + 4096)  # the weights fit, state.pt does not
ckpt.check_free_space = lambda final, needed: None
state_of_the_run("midwrite", runner.invoke(app, ["train", recipe, *quiet, "--resume"]))

filler.unlink()
state_of_the_run("resumed", runner.invoke(app, ["train", recipe, *quiet, "--resume"]))
report_file.write_text(json.dumps(report, indent=2))
