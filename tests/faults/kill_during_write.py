"""``python kill_during_write.py STEP FILES gen-args...``: runs ``gen`` and SIGKILLs itself in the middle of
writing the checkpoint of step STEP, after FILES of its weights files are written (a real kill: no
handler, no cleanup, the temporary directory half full)."""

import os
import signal
import sys

import gen.runs.checkpoint as ckpt

STEP, FILES = int(sys.argv[1]), int(sys.argv[2])
real_save_file = ckpt.save_file
written = []


def save_file(tensors, path, *args, **kwargs):
    real_save_file(tensors, path, *args, **kwargs)
    if f".step_{STEP:08d}.tmp" in str(path):
        written.append(path)
        if len(written) == FILES:
            os.kill(os.getpid(), signal.SIGKILL)


ckpt.save_file = save_file

from gen.commands import app  # noqa: E402 - after the patch, as a user would run it

app(sys.argv[3:], prog_name="gen")
