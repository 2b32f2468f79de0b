"""One way to sample a trained model: the EMA and the ``[sample]`` section with a command's overrides,
and the keys by which a results row names it."""

from __future__ import annotations

from typing import Any

import attrs

from gen.components import ComponentSpec
from gen.power_ema import EmaKey, EmaLength
from gen.sampling.config import SampleConfig


def ema_text(ema: EmaKey) -> str:
    """How results and messages name an EMA: ``0.9999``, ``phema_0.05``, or ``none`` for the raw weights."""
    if ema is None:
        return "none"
    return str(ema) if isinstance(ema, EmaLength) else repr(ema)


@attrs.frozen(kw_only=True)
class SamplingSettings:
    """One way to sample a trained model (a row of a sweep): the weights and the ``[sample]`` section.

    Attributes:
        ema: The EMA whose weights sample (a decay or a power EMA), or None for the raw weights.
        sample: Solver, steps and guidance, validated like the recipe's ``[sample]`` section.
    """

    ema: EmaKey
    sample: SampleConfig

    def describe(self) -> dict[str, Any]:
        """JSON-able: ema, cfg, interval, steps, sampler, the grid when it is not linear, split_interval
        when true and the guide under autoguidance (the keys of ``gen eval`` results; rows of the
        published settings keep the keys they always had)."""
        s = self.sample
        sampler = s.sampler.name if isinstance(s.sampler, ComponentSpec) else s.sampler
        out = {
            "ema": ema_text(self.ema),
            "cfg": s.cfg,
            "interval": list(s.cfg_interval),
            "steps": s.steps,
            "sampler": sampler,
        }
        grid = grid_text(s.grid)
        if grid != "linear":  # the published grid keeps the keys rows always had
            out["grid"] = grid
        if s.split_interval:
            out["split_interval"] = True
        if s.guidance == "auto":
            out["guide"] = s.guide.describe()
        return out


def grid_text(grid: ComponentSpec | str) -> str:
    """A time grid as a results column shows it: ``linear``, ``shifted(shift=2.0)``."""
    if not isinstance(grid, ComponentSpec):
        return str(grid)
    options = attrs.asdict(grid.config, recurse=False) if attrs.has(type(grid.config)) else {}
    inner = ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in options.items())
    return f"{grid.name}({inner})" if inner else grid.name


#: The result keys that say how a row was sampled, in their order: those of `SamplingSettings.describe`
#: and ``as_decay``, which ``gen eval`` adds beside a power EMA. No metric may name a score so.
SETTING_COLUMNS = (
    "ema",
    "as_decay",
    "guide",
    "cfg",
    "interval",
    "steps",
    "sampler",
    "grid",
    "split_interval",
)

__all__ = ["SETTING_COLUMNS", "SamplingSettings", "ema_text", "grid_text"]
