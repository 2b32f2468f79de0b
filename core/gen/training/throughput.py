"""Noticing when training slows far below its own earlier rate: the one warning of a shared machine.

Another process on the same cores (or a data loader that cannot keep up) shows as images/s falling
well below what the run reached before, with nothing else said: the demo's two threads ran 2.8x slower
beside a busy loop on a 2-core machine (35x on an Intel Xeon, before ``gen`` waited passively,
`gen.threads`). `ThroughputWatch` compares each metrics window with the best window of the run so far
and says so once, in a line naming the likely causes and the fix, when two windows in a row are that
slow. The first window (the warm-up) and windows shorter than a second (whose rate is noise: a tiny
model logging every step) count neither as the best nor as slow.
"""

from __future__ import annotations

from typing import Any

import attrs


@attrs.define
class ThroughputWatch:
    """The run's best images/s so far, and the one warning when windows fall below ``best / ratio``.

    Attributes:
        ratio: How many times slower than the best a window must be (3: well beyond the window-to-window
            noise of a busy laptop, which reached 1.8x on the demo's curve).
        cpu: Whether training runs on the CPU (the warning then names the threads).
        min_seconds: Windows shorter than this are left out.
    """

    ratio: float = 3.0
    cpu: bool = True
    min_seconds: float = 1.0
    best: float = 0.0
    windows: int = 0
    slow: int = 0
    last_time: float | None = None
    warned: bool = False

    def update(self, line: dict[str, Any]) -> str | None:
        """The warning, the second window in a row whose ``images_per_s`` is below the best over
        ``ratio``; ``line`` is a metrics line (``step``, ``time``, ``images_per_s``)."""
        step, rate, now = line["step"], line["images_per_s"], line["time"]
        seconds, self.last_time = (None if self.last_time is None else now - self.last_time), now
        self.windows += 1
        if self.windows == 1 or seconds is None or seconds < self.min_seconds:
            return None  # the warm-up (compilation, allocator, caches), or too short to say
        if not (self.best and rate * self.ratio < self.best):
            self.slow, self.best = 0, max(self.best, rate)
            return None
        self.slow += 1
        if self.slow < 2 or self.warned:
            return None
        self.warned = True
        fix = (
            "another process may be using these cores: gen --threads 1 train ... may be faster "
            "(docs/faq.md, 'Training on a CPU is slow')"
            if self.cpu
            else "the data loader may not keep up, or another job shares the device"
        )
        return (
            f"step {step}: {rate:.1f} images/s, less than 1/{self.ratio:g} of this run's {self.best:.1f} "
            f"before; {fix}"
        )


__all__ = ["ThroughputWatch"]
