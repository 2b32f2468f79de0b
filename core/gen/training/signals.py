"""Preemption: SIGTERM and SIGINT ask the run to stop at the end of the step, after a checkpoint."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopSignals:
    """While entered, SIGTERM and SIGINT set `received` (the signal's name) instead of killing the
    process; the previous handlers come back on exit. Off the main thread (a run started from a worker
    thread) no handler can be installed, and the process keeps the default behaviour."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()

    def _on_signal(self, signum: int, frame: object) -> None:  # noqa: ARG002
        self.received = signal.Signals(signum).name


__all__ = ["StopSignals"]
