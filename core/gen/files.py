"""Writing result files so that a kill never leaves half of one under its name, and the one-line error of a
folder that cannot be written.

- `write_atomic` (`atomic_file` for any writer): the text goes to a temporary file beside the target (a name of its own, so that two
  writers never share one), which is renamed over it: a reader sees the old file or the new one, whole.
  A failure or a kill (``KeyboardInterrupt``, ``SystemExit``) removes the temporary file; only a
  SIGKILL can leave one, hidden (``.NAME.*.tmp``).
- `append_line`: one line appended with a single ``write`` on an ``O_APPEND`` descriptor, so that two
  processes appending to one log never interleave their lines.
- `check_writable`: a folder is written to (a probe file) before any work, so that a read-only run
  directory or output folder is one line at the start, not a traceback at the end.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gen.errors import GenError

#: errno values that say the disk or the folder, not the program, is at fault.
FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write, renamed over ``path`` when the block ends without an
    exception (removed otherwise): a reader sees the old file or the new one, whole."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a result file is as readable as any other
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed into place (`atomic_file`)."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` (a newline is added) to ``path`` in one ``write`` (whole, whoever else appends)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def check_writable(folder: str | Path, what: str, fix: str) -> None:
    """Write (and remove) a probe file in ``folder`` — or, when it does not exist yet, in the nearest
    folder above it, where it will be created — or raise one line: ``cannot write WHAT FOLDER (REASON);
    FIX``. Nothing is created."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        if not probe.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(probe))
        fd, name = tempfile.mkstemp(dir=probe, prefix=".gen-write-check.")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        where = "" if probe == folder else f": {probe}"
        raise GenError(f"cannot write {what} {folder} ({reason}{where}); {fix}") from None


__all__ = ["FULL", "append_line", "check_writable", "write_atomic"]
