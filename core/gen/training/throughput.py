"""Noticing when training slows far below its own earlier rate: the one warning of a shared machine.

Another process on the same cores (or a data loader that cannot keep up) shows as images/s falling
well below what the run reached before, with nothing else said: the demo's two threads ran 2.8x slower
beside a busy loop on a 2-core machine (35x on an Intel Xeon, before ``gen`` waited passively,
`gen.threads`). `ThroughputWatch` compares each metrics window with the best window of the run so far
(the first is left out: it holds the warm-up) and says so once, in a line naming the likely causes and
the fix.
"""

from __future__ import annotations

import attrs


@attrs.define
class ThroughputWatch:
    """The run's best images/s so far, and the one warning when a window falls below ``best / ratio``.

    Attributes:
        ratio: How many times slower than the best a window must be (3: well beyond the window-to-window
            noise of a busy laptop, which reached 1.8x on the demo's curve).
        cpu: Whether training runs on the CPU (the warning then names the threads).
    """

    ratio: float = 3.0
    cpu: bool = True
    best: float = 0.0
    windows: int = 0
    warned: bool = False

    def update(self, step: int, images_per_s: float) -> str | None:
        """The warning, the first time this window's ``images_per_s`` is below the best over ``ratio``."""
        self.windows += 1
        if self.windows == 1:  # the warm-up: compilation, allocator, caches
            return None
        if self.best and images_per_s * self.ratio < self.best and not self.warned:
            self.warned = True
            fix = (
                "another process may be using these cores: gen --threads 1 train ... may be faster "
                "(docs/faq.md, 'Training on a CPU is slow')"
                if self.cpu
                else "the data loader may not keep up, or another job shares the device"
            )
            return (
                f"step {step}: {images_per_s:.1f} images/s, less than 1/{self.ratio:g} of this run's "
                f"{self.best:.1f} before; {fix}"
            )
        self.best = max(self.best, images_per_s)
        return None


__all__ = ["ThroughputWatch"]
