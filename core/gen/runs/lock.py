"""One trainer per run directory: ``gen train`` holds an exclusive lock on ``RUN/.lock`` while it runs.

The lock is the operating system's advisory file lock (``fcntl.flock``), which the kernel releases when
the process ends, however it ends: a SIGKILL, a crash, an out-of-memory kill. So a lock left behind by
a dead process never blocks the next ``gen train --resume`` — the file may still be there, but nobody
holds it (this is the stale-lock detection) — while a live trainer, on this machine or, on a
filesystem that supports ``flock`` across machines, on another, makes a second one refuse at once. The
file holds the holder's pid, host and start time, for the message of the one that is refused.

Under ``torchrun`` rank 0 takes the lock, before anything is written, and every rank learns the outcome
(`lock_run`), so that all of them refuse together.

The same lock (`FileLock`) keeps one ``gen eval`` per results table (`OutputLock`, ``.NAME.lock`` beside
it), so that two of them never write one ``--out``. A folder that cannot hold the lock file (read-only)
is one line naming it, before any work.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

from gen import distributed
from gen.distributed import DistInfo
from gen.errors import GenError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, no run lock
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"

#: The lock files this process holds. A forked child (a DataLoader worker) closes its copies at once, so
#: that the lock dies with the trainer and not with the last of its workers.
_HELD: set[int] = set()


def _close_in_child() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_close_in_child)


class FileLock:
    """An exclusive lock on the file ``path`` (see the module docstring), created with its folder.

    Args:
        path: The lock file.
        busy: The one-line refusal, given how the holder is described (``pid P on host H, since T``).
        unwritable: The one-line error of a folder that cannot hold the lock file, given the reason.
    """

    def __init__(self, path: str | Path, busy: Callable[[str], str], unwritable: Callable[[str], str]):
        self.path = Path(path)
        self.busy, self.unwritable = busy, unwritable
        self._fd: int | None = None

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:  # a read-only folder: one line at the start, before any work
            raise GenError(self.unwritable(e.strerror or type(e).__name__)) from None

    def acquire(self) -> FileLock:
        """Take the lock, or raise a `gen.GenError` naming the process that holds it."""
        if fcntl is None or self._fd is not None:
            return self
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read(fd)
                os.close(fd)
                raise GenError(self.busy(_describe(holder))) from None
            # The holder before us may have removed the file between our open and our lock: then we
            # hold a file nobody else will look at, and try again with the one at the path.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(holder) + "\n").encode())
        self._fd = fd
        _HELD.add(fd)
        return self

    def release(self) -> None:
        """Remove the file and let the lock go (closing the file releases it)."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        _HELD.discard(self._fd)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunLock(FileLock):
    """The lock of one run directory, ``RUN/.lock`` (see the module docstring).

    Args:
        run_dir: The run directory (created when the lock is taken).
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        path = self.run_dir / LOCK_FILE
        super().__init__(
            path,
            busy=lambda holder: (
                f"{self.run_dir} is in use: another gen train holds {path} ({holder}); wait for it to end or "
                "stop it, or choose another --run-dir"
            ),
            unwritable=lambda why: (
                f"cannot write the run directory {self.run_dir} ({why}); make it writable, or choose another "
                "--run-dir"
            ),
        )


class OutputLock(FileLock):
    """The lock of a results file of ``gen eval`` (``.NAME.lock`` beside it): one writer per file.

    Args:
        out: The results file.
    """

    def __init__(self, out: str | Path):
        out = Path(out)
        super().__init__(
            out.parent / f".{out.name}.lock",
            busy=lambda holder: (
                f"{out} is being written by another gen eval ({holder}); wait for it to end, or give this one "
                "another --out"
            ),
            unwritable=lambda why: (
                f"cannot write {out} ({why}); make {out.parent} writable, or give another --out"
            ),
        )


def _read(fd: int) -> dict[str, object]:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _describe(holder: dict[str, object]) -> str:
    if "pid" not in holder:
        return "a process that has not yet said which"
    since = f", since {holder['since']}" if holder.get("since") else ""
    return f"pid {holder['pid']} on host {holder.get('host', '?')}{since}"


def lock_run(run_dir: str | Path, dist: DistInfo) -> RunLock | None:
    """Rank 0 takes the run directory's lock; every rank raises the same one-line error when it is held
    (a collective: every rank calls it). Returns the lock on rank 0, None on the others."""
    return lock_on_main(RunLock(run_dir), dist)  # type: ignore[return-value]


def lock_on_main(lock: FileLock, dist: DistInfo) -> FileLock | None:
    """Rank 0 takes ``lock``; every rank raises the same one-line error when it cannot (a collective).
    Returns the lock on rank 0, None on the others."""
    taken, error = None, None
    if dist.is_main:
        try:
            taken = lock.acquire()
        except GenError as e:
            error = str(e)
    error = distributed.all_gather_objects(error, dist)[0]
    if error is not None:
        raise GenError(error)
    return taken


__all__ = ["LOCK_FILE", "FileLock", "OutputLock", "RunLock", "lock_on_main", "lock_run"]
