"""Sampling the flow: the guided velocity integrated from noise (t = 0) to data (t = 1).

The network becomes a velocity field ``velocity_fn(z, t)`` — the prediction converted to ``v``
(``(x̂ - z) / max(1 - t, t_eps)`` for x-prediction), guided by classifier-free guidance or autoguidance
on an interval (`gen_flow.guidance`) — which a registered solver integrates over the times of a
registered time grid (``linear``: ``t_i = i / steps``; ``shifted``, ``edm``, ``density``, ``list``).
Solvers never see the prediction type or the guidance, and guidance is decided by the time t, never by
the step index, so it holds on any grid.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import gen
from gen_flow.guidance import FlowGuide, guided_velocity, interval_pieces, solve_pieces

__all__ = ["sample_flow"]


@torch.no_grad()
def sample_flow(
    net: nn.Module,
    noise: Tensor,
    labels: Tensor | gen.Condition | None,
    *,
    prediction: gen.Prediction | str,
    sampler: gen.Solver | str | Any,
    steps: int,
    cfg: float = 1.0,
    cfg_interval: tuple[float, float] = (0.0, 1.0),
    t_eps: float = 0.05,
    num_classes: int | None = None,
    grid: gen.TimeGrid | str | Any = "linear",
    guide: FlowGuide | None = None,
    compile: str | None = None,
    on_step: Any = None,
    split_interval: bool = False,
) -> Tensor:
    """Generate samples: integrate the guided velocity field from ``noise`` at t = 0 to t = 1.

    Args:
        net: The backbone (put it in eval mode first; this does not change its mode).
        noise: (B, ...) start points, already scaled by the noise scale (see `gen.sample_noise`).
        labels: A `gen.Condition`, or (B,) int64 class ids (with ``num_classes``), or None for the null
            label everywhere (unconditional).
        prediction: A `gen.Prediction` or a registered name (x, eps, v).
        sampler: A solver ``(velocity_fn, z0, timesteps) -> z1``, a registered name or a ComponentSpec.
        steps: Solver steps on the grid.
        cfg, cfg_interval: Guidance scale and interval.
        t_eps: Clamp of ``1 - t`` (and ``t``) in the conversion to a velocity.
        num_classes: With class ids: classes of the model; 0 = unconditional.
        grid: Where the steps fall: a time grid ``steps -> t``, a registered name or a ComponentSpec.
        guide: The guiding model of autoguidance at scale ``cfg`` (None: classifier-free guidance).
        compile: A ``torch.compile`` backend for the velocity's evaluations (None: eager).
        on_step: Called as ``on_step(k, steps)`` once for each k = 1, ..., steps, in order, when the
            solver has done k steps (`gen.StepCounter`); the samples are the same with it or without.
            (``steps`` counts an end of the interval that ``split_interval`` had to insert.)
        split_interval: Integrate piecewise between the interval's ends, each piece at its constant
            scale and with a fresh solver start (`gen_flow.guidance.interval_pieces`); False decides the
            scale at each evaluation's t (published JiT).

    Returns:
        (B, ...) the samples at t = 1, in the data's range (images in [-1, 1], not clipped).
    """
    if labels is None:
        labels = gen.ClassLabels.null(noise.shape[0], num_classes or 0, device=noise.device)
    if isinstance(sampler, gen.ComponentSpec):
        solver = sampler.build()
    else:
        solver = sampler if callable(sampler) else gen.build("sampler", sampler)
    if not callable(solver):
        raise gen.GenError(
            f"sampler {sampler!r} does not integrate the flow; choose heun, euler, dpmpp_3m..."
        )
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
    times = gen.grid_times(grid, steps).to(dtype=noise.dtype)  # (steps + 1,)
    pieces = interval_pieces(times, cfg, cfg_interval) if split_interval else [(times, None)]
    counter = (
        None
        if on_step is None
        else gen.StepCounter(torch.cat([pieces[0][0]] + [p[1:] for p, _ in pieces[1:]]), on_step)
    )
    z = solve_pieces(solver, velocity_fn, noise, pieces, wrap=None if counter is None else counter.wrap)
    if counter is not None:
        counter.finish()
    return z
