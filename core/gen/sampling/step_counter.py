"""Solver steps counted as a solver takes them: the progress of `gen.sample` (``on_step``)."""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable

from torch import Tensor

from gen.protocols import VelocityFn

#: ``on_step(k, total)``: a solver has done k of its ``total`` steps.
StepCallback = Callable[[int, int], None]


class StepCounter:
    """Reports a solver's steps as it takes them, to ``on_step(k, total)``, k = 1..total once each.

    Solvers own their loop, and how many velocity evaluations a step costs differs among them (Euler 1,
    Heun 2, adaptive ones any), so the steps are counted in time: an evaluation at ``t >= times[k]``
    means the solver has done its first k steps (every solver evaluates in increasing t). The last
    step ends without an evaluation at t = 1: `finish` reports the steps not yet reported.
    """

    def __init__(self, times: Tensor, on_step: StepCallback):
        self.times = [float(t) for t in times]  # (steps + 1,) as numbers: no device sync per step
        self.total = len(self.times) - 1
        self.on_step = on_step
        self.done = 0

    def advance(self, k: int) -> None:
        """The solver has done ``k`` steps: report those after the last reported, in order."""
        for step in range(self.done + 1, min(k, self.total) + 1):
            self.on_step(step, self.total)
        self.done = max(self.done, min(k, self.total))

    def finish(self) -> None:
        """The solver has returned: all its steps are done."""
        self.advance(self.total)

    def wrap(self, velocity_fn: VelocityFn) -> VelocityFn:
        """``velocity_fn`` that counts the steps (its attributes, such as ``t_eps``, kept)."""

        @functools.wraps(velocity_fn)
        def counted(z: Tensor, t: Tensor | float) -> Tensor:
            now = float(t.reshape(-1)[0]) if isinstance(t, Tensor) else float(t)
            self.advance(bisect.bisect_right(self.times, now) - 1)
            return velocity_fn(z, t)

        return counted


__all__ = ["StepCallback", "StepCounter"]
