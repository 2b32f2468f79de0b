"""The sampling driver: guidance (CFG or autoguidance on an interval), the time grid, and a registered
solver.

The driver turns the network into a velocity field ``velocity_fn(z, t)`` — the prediction converted to
``v`` (``(x̂ - z) / max(1 - t, t_eps)`` for x-prediction), guided by classifier-free guidance on an
interval — and hands it to a solver with the times of a registered time grid (``linear``: ``t_i = i /
steps``; ``shifted``, ``edm``, ``list``...). Solvers never see the prediction type or the guidance, and
guidance is decided by the time t, never by the step index, so it holds on any grid.

Guidance (classifier-free, or autoguidance with ``guidance = "auto"``) is `gen.guidance`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import attrs
import torch
from attrs import validators as v
from torch import Tensor, nn

from gen.components import ComponentSpec, build_component
from gen.config import component_field, field
from gen.errors import GenError
from gen.guidance import Guidance, Guide, guidance_scale, guided_velocity, interval_pieces, solve_pieces
from gen.objective import ObjectiveConfig
from gen.power_ema import parse_ema
from gen.protocols import Prediction, Process, Solver, TimeGrid
from gen.seeds import key_seed
from gen.step_counter import StepCallback, StepCounter


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


def check_grid(t: Tensor, steps: int) -> Tensor:
    """``t`` when it is a valid grid of ``steps`` steps: (steps + 1,), from 0 to 1, strictly increasing."""
    if t.ndim != 1 or t.shape[0] != steps + 1:
        raise ValueError(f"the grid has {t.shape[0] - 1 if t.ndim == 1 else t.shape} steps, not {steps}")
    if float(t[0]) != 0.0 or float(t[-1]) != 1.0:
        raise ValueError(f"a grid runs from 0 to 1, this one from {float(t[0])} to {float(t[-1])}")
    if not bool((t[1:] > t[:-1]).all()):
        raise ValueError("the grid's times must increase strictly")
    return t


def grid_times(grid: TimeGrid | str | ComponentSpec, steps: int) -> Tensor:
    """The (steps + 1,) float64 times of ``grid`` (a callable, a registered name or a ComponentSpec),
    checked (`check_grid`)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    fn = grid if callable(grid) else build_component("time_grid", grid)
    return check_grid(torch.as_tensor(fn(steps), dtype=torch.float64), steps)


def time_grid(steps: int, *, device: Any = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """(steps + 1,) linear grid t_i = i / steps from 0 (noise) to 1 (data)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return (torch.arange(steps + 1, dtype=torch.float64) / steps).to(device=device, dtype=dtype)


@torch.no_grad()
def sample(
    net: nn.Module,
    noise: Tensor,
    labels: Tensor | None,
    *,
    prediction: Prediction | str,
    sampler: Solver | str | Any,
    steps: int,
    cfg: float = 1.0,
    cfg_interval: tuple[float, float] = (0.0, 1.0),
    t_eps: float = 0.05,
    num_classes: int,
    grid: TimeGrid | str | Any = "linear",
    guide: Guide | None = None,
    compile: str | None = None,
    on_step: StepCallback | None = None,
    split_interval: bool = False,
) -> Tensor:
    """Generate samples: integrate the guided velocity field from ``noise`` at t = 0 to t = 1.

    Args:
        net: The backbone (put it in eval mode first; the driver does not change its mode).
        noise: (B, ...) start points, already scaled by the noise scale (see `sample_noise`).
        labels: (B,) int64 class ids, or None for the null label everywhere (unconditional).
        prediction: A `gen.Prediction` or a registered name (x, eps, v).
        sampler: A solver ``(velocity_fn, z0, timesteps) -> z1``, a registered name or a ComponentSpec.
        steps: Solver steps on the grid t_i = i / steps.
        cfg, cfg_interval: Classifier-free guidance scale and interval.
        t_eps: Clamp of ``1 - t`` (and ``t``) in the conversion to a velocity.
        num_classes: Classes of the model; 0 = unconditional.
        grid: Where the steps fall: a time grid ``steps -> t``, a registered name or a ComponentSpec.
        guide: The guiding model of autoguidance at scale ``cfg`` (None: classifier-free guidance).
        compile: A ``torch.compile`` backend for the velocity's evaluations (None: eager).
        on_step: Called as ``on_step(k, steps)`` once for each k = 1, ..., steps, in order, when the
            solver has done k steps (`StepCounter`); the samples are the same with it or without.
            (``steps`` counts an end of the interval that ``split_interval`` had to insert.)
        split_interval: Integrate piecewise between the interval's ends, each piece at its constant
            scale and with a fresh solver start (`gen.guidance.interval_pieces`); False decides the
            scale at each evaluation's t (published JiT).

    Returns:
        (B, ...) the samples at t = 1, in the data's range (images in [-1, 1], not clipped).
    """
    if labels is None:
        labels = torch.full((noise.shape[0],), num_classes, dtype=torch.long, device=noise.device)
    solver = sampler if callable(sampler) else build_component("sampler", sampler)
    if not callable(solver):
        raise GenError(f"sampler {sampler!r} does not integrate the flow; choose heun, euler, dpmpp_3m...")
    velocity_fn = guided_velocity(
        net,
        labels,
        prediction=prediction,
        cfg=cfg,
        cfg_interval=cfg_interval,
        t_eps=t_eps,
        num_classes=num_classes,
        guide=guide,
        compile=compile,
    )
    # The grid stays on the CPU: solvers read its times as numbers and guidance decides on them there,
    # so a step never waits for the device (a 0-dim CPU tensor multiplies a CUDA tensor as a scalar).
    times = grid_times(grid, steps).to(dtype=noise.dtype)  # (steps + 1,)
    pieces = interval_pieces(times, cfg, cfg_interval) if split_interval else [(times, None)]
    counter = (
        None
        if on_step is None
        else StepCounter(torch.cat([pieces[0][0]] + [p[1:] for p, _ in pieces[1:]]), on_step)
    )
    z = solve_pieces(solver, velocity_fn, noise, pieces, wrap=None if counter is None else counter.wrap)
    if counter is not None:
        counter.finish()
    return z


def sample_from_config(
    net: nn.Module,
    noise: Tensor,
    labels: Tensor | None,
    config: SampleConfig,
    objective: ObjectiveConfig,
    *,
    num_classes: int,
    guide: Guide | None = None,
    on_step: StepCallback | None = None,
) -> Tensor:
    """`sample` with the solver, steps and guidance of a ``[sample]`` section and the prediction
    and ``t_eps`` of the ``[objective]`` section the model was trained with; a process other than the
    flow (DDPM) samples itself with its own samplers. ``guide``: the guiding model that ``guidance =
    'auto'`` needs (`gen.ModelSampler` loads it from the ``guide_*`` keys). ``on_step``: see `sample`; a
    process that samples itself reports its ``steps`` when it returns."""
    process = objective.build_process()
    if config.guidance == "auto" and guide is None:
        raise GenError(
            "[sample] guidance = 'auto' needs its guiding model; sample through gen.ModelSampler (gen sample, "
            "gen eval), which loads it from guide_step, guide_ema and guide_run"
        )
    if isinstance(process, Process):
        if labels is None:
            labels = torch.full((noise.shape[0],), num_classes, dtype=torch.long, device=noise.device)
        out = process.sample(
            torch.compile(net) if config.compile else net,
            noise,
            labels,
            sampler=config.sampler.build() if isinstance(config.sampler, ComponentSpec) else config.sampler,
            steps=config.steps,
            cfg=config.cfg,
            cfg_interval=config.cfg_interval,
            num_classes=num_classes,
        )
        if on_step is not None:
            StepCounter(torch.zeros(config.steps + 1), on_step).finish()
        return out
    return sample(
        net,
        noise,
        labels,
        prediction=objective.prediction,
        sampler=config.sampler,
        steps=config.steps,
        cfg=config.cfg,
        cfg_interval=config.cfg_interval,
        t_eps=objective.t_eps,
        num_classes=num_classes,
        grid=config.grid,
        guide=guide if config.guidance == "auto" else None,
        compile="inductor" if config.compile else None,
        on_step=on_step,
        split_interval=config.split_interval,
    )


def check_sampler(objective: ObjectiveConfig, config: SampleConfig) -> None:
    """Raise ``ValueError`` when ``[sample]`` cannot sample ``[objective]``'s process: the flow takes its
    ODE/SDE solvers (a sampler of another process says which in its attribute ``process``); another
    process checks the section itself (its samplers, the steps they can take)."""
    process = objective.build_process()
    solver = config.sampler.build() if isinstance(config.sampler, ComponentSpec) else config.sampler
    name = config.sampler.name if isinstance(config.sampler, ComponentSpec) else repr(config.sampler)
    if isinstance(process, Process) and config.guidance == "auto":
        raise ValueError(
            f"guidance = 'auto' (autoguidance) guides the flow's velocity; the {type(process).__name__} "
            "process of this model samples with classifier-free guidance only: set guidance = 'cfg'"
        )
    if isinstance(process, Process) and config.split_interval:
        raise ValueError(
            f"split_interval cuts the flow's ODE where guidance switches; the {type(process).__name__} "
            "process of this model samples itself: set split_interval = false"
        )
    if isinstance(process, Process):
        process.check_sample(config)
    elif getattr(solver, "process", "flow") != "flow":
        raise ValueError(
            f"sampler {name!r} samples the {solver.process} process, not the flow of this model; choose a "
            "flow solver (heun, euler, dpmpp_3m, euler_maruyama...)"
        )


def noise_seed(seed: int, index: int) -> int:
    """The seed of sample ``index``'s noise: `gen.seeds.key_seed` of (seed, index), 64 bits."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return key_seed(seed, index, bits=64)


def sample_noise(
    indices: Iterable[int],
    shape: tuple[int, ...],
    *,
    seed: int,
    noise_scale: float = 1.0,
    device: Any = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Start noise for the given sample indices: sample i's noise depends only on (seed, i).

    So the images of a run do not depend on the batch size, the number of processes, or the device
    (the noise is drawn on the CPU, then moved).

    Args:
        indices: Global sample indices (e.g. ``range(start, start + batch)``).
        shape: One sample's shape, (C, H, W) or (D,).
        seed: The run's sampling seed (>= 0).
        noise_scale: Std of the noise (the objective's ``noise_scale``).

    Returns:
        (len(indices), *shape) noise.
    """
    rows = []
    for i in indices:
        g = torch.Generator().manual_seed(noise_seed(seed, int(i)))
        rows.append(torch.randn(shape, generator=g, dtype=torch.float32))  # (*shape,)
    if not rows:
        return torch.empty((0, *shape), dtype=dtype, device=device)
    return (torch.stack(rows) * noise_scale).to(device=device, dtype=dtype)  # (N, *shape)


__all__ = [
    "Guidance",  # re-exported from gen.guidance, where guidance lives
    "Guide",
    "SampleConfig",
    "check_grid",
    "check_sampler",
    "grid_times",
    "guidance_scale",
    "guided_velocity",
    "noise_seed",
    "sample",
    "sample_from_config",
    "sample_noise",
    "time_grid",
]
