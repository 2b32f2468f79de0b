"""The ``[sample]`` section: how a trained model is sampled, validated once for every command.

`SampleConfig` is the section; `SAMPLE_KEYS` its keys (the one list: results rows, sweeps and the
commands' options are made from it); `sample_config_with` applies a command's options with the
recipe's own merge rule (`gen.components.merge`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs
from attrs import validators as v

from gen.components import ComponentSpec, merge, to_table, validate_config
from gen.config import component_field, field
from gen.errors import GenError
from gen.power_ema import parse_ema
from gen.sampling.grids import grid_times
from gen.sampling.guidance import Guidance


def _interval(instance, attribute, value):  # noqa: ANN001, ARG001
    low, high = value
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"must satisfy 0 <= low <= high <= 1, got {list(value)}")


@attrs.frozen(kw_only=True)
class SampleConfig:
    """The ``[sample]`` section of a recipe: how images are generated."""

    sampler = component_field("sampler", "heun", doc="The ODE solver (a registered sampler).")
    steps: int = field(50, doc="Number of solver steps from t = 0 to 1.", validator=v.ge(1))
    grid = component_field(
        "time_grid",
        "linear",
        doc="Where the steps fall in t (a registered time grid: linear, shifted, edm, density, list).",
    )
    cfg: float = field(
        1.0,
        doc="Guidance scale (1.0 = no guidance): classifier-free, or of autoguidance with guidance = 'auto'.",
        validator=v.ge(0),
    )
    cfg_interval: tuple[float, float] = field(
        (0.0, 1.0),
        doc="Guidance applies for low < t < high (low = 0 means from the start).",
        validator=_interval,
    )
    split_interval: bool = field(
        False,
        doc="Solve each side of the interval's ends on its own: the nearest grid point moves onto each end "
        "and the solver restarts there at the new scale, so no step straddles the switch (false: the scale "
        "is decided at each evaluation's t, as published JiT does). The flow only.",
    )
    guidance: Literal["cfg", "auto"] = field(
        "cfg",
        doc="What guides: cfg = the model without the label (classifier-free); auto = a weaker model of the "
        "same data with the label (autoguidance; guide_step, guide_ema and guide_run name it). The flow only.",
    )
    guide_step: int | None = field(
        None,
        doc="Autoguidance: the step of the guiding checkpoint (of guide_run, else of this run); None = the "
        "main model's own checkpoint (this run) or the latest one (guide_run).",
        validator=v.optional(v.ge(0)),
    )
    guide_ema: str = field(
        "default",
        doc="Autoguidance: the guiding model's weights: an EMA decay, phema_<sigma_rel>, none (raw) or "
        "default (its checkpoint's first EMA).",
    )
    guide_run: str | None = field(
        None,
        doc="Autoguidance: another run directory (or checkpoint) of the same data and backbone whose model "
        "guides; None = this run.",
    )
    precision: Literal["auto", "fp32", "bf16"] = field(
        "auto", doc="Sampling precision: bf16 autocast or fp32; auto = the run's train.precision."
    )
    compile: bool = field(
        False,
        doc="torch.compile the conditional and the guided evaluation (one graph each; the first batch "
        "pays the compilation).",
    )

    def __attrs_post_init__(self):
        if self.guidance == "cfg" and self.guide != Guidance():
            raise ValueError(
                "guide_step, guide_ema and guide_run name the guiding model of autoguidance; set guidance = "
                "'auto', or drop them"
            )
        if self.guide_ema != "default":
            try:
                parse_ema(self.guide_ema)
            except ValueError:
                raise ValueError(
                    f"guide_ema = {self.guide_ema!r}: give an EMA decay (0.9999), phema_<sigma_rel> "
                    "(phema_0.05), none or default"
                ) from None
        if isinstance(self.sampler, ComponentSpec):
            try:  # a solver that cannot be made here (a missing package) says so at recipe load
                self.sampler.build()
            except GenError as e:
                raise ValueError(str(e)) from None
        if isinstance(self.grid, ComponentSpec):  # a bad grid, or one that cannot have `steps` steps
            try:
                grid_times(self.grid, self.steps)
            except ValueError as e:
                raise ValueError(f"grid {self.grid.name!r} with steps = {self.steps}: {e}") from None

    @property
    def guide(self) -> Guidance:
        """Which model guides under autoguidance (the guide_* keys)."""
        return Guidance(step=self.guide_step, ema=self.guide_ema, run=self.guide_run)


#: The keys of ``[sample]``, in the section's order.
SAMPLE_KEYS: tuple[str, ...] = tuple(f.name for f in attrs.fields(SampleConfig))

#: The ``[sample]`` keys that name autoguidance's guiding model.
GUIDE_KEYS = ("guide_step", "guide_ema", "guide_run")


def sample_config_with(base: SampleConfig, **given: Any) -> SampleConfig:
    """``base`` with the ``given`` keys (those not None) merged in as a recipe override would be (a
    solver or grid of another name replaces the old table), validated as ``[sample]`` keys are in a
    recipe: a bad value is the same one-line error (``[sample] steps: must be >= 1, got 0``)."""
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return base
    unknown = sorted(set(given) - set(SAMPLE_KEYS))
    if unknown:
        raise GenError(f"[sample] has no key {', '.join(unknown)}; its keys are {', '.join(SAMPLE_KEYS)}")
    table: dict[str, Any] = to_table(base)
    if given.get("guidance") == "cfg":
        for key in GUIDE_KEYS:
            table.pop(key, None)  # classifier-free guidance: the recipe's guiding model does not apply
    over = {
        k: dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v
        for k, v in given.items()
    }
    return validate_config(SampleConfig, merge(table, over), section="sample", file=None)


__all__ = ["GUIDE_KEYS", "SAMPLE_KEYS", "SampleConfig", "sample_config_with"]
