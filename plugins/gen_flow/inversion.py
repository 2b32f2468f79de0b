"""Inverting the flow: from an image at t = 1 back to the noise at t = 0 that the sampler maps onto it.

Two things make the naive reverse integration of an x-prediction model fail (JiT issue 69).

**The velocity at t = 1.** An x-prediction's velocity ``(x̂ - z) / max(1 - t, t_eps)`` is 0 / 0 at the
data end; with the clamp it is ``(x̂(x) - x) / t_eps``, about 0 for a good denoiser, so a reverse step
from t = 1 barely moves and the inverted trajectory never leaves the image. But the field there is known
in closed form: at t = 1 the point is the data whatever the noise, so the noise is independent of it and
``v(z, 1) = E[x - eps | z_1 = z] = z - E[eps] = z``. Inversion uses that value at t = 1 — for every
prediction, since it is the exact field's — and never asks the network there. (The samplers never do
either: a flow solver's last step into t = 1 uses the velocity at the step's start.)

**The sampler's last step is a projection.** The last step into t = 1 maps ``z`` to the network's
``x̂(z)`` (for x-prediction, where ``1 - t >= t_eps``): every ``z`` with the same denoised image lands on
the same image, so that step has many inverses. The reverse step above picks the one with no noise
left in the directions the denoiser removes (``z = t x`` there, the path's mean); fixed-point
iterations then make the step exact in the directions it keeps.

**Fixed-point inversion.** A solver's step ``z_{i+1} = z_i + Δ_i(z_i)`` over ``[t_i, t_{i+1}]`` is inverted
by iterating ``z ← z_{i+1} - Δ_i(z)`` (as in Pan et al., 2023, *Effective Real Image Editing with
Accelerated Iterative Diffusion Inversion*, and Garibi et al., 2024, *ReNoise*), started from the
explicit reverse step with the velocity already evaluated near ``z_{i+1}`` (free). Each iteration costs
the step's evaluations and shrinks the error by about ``|t_{i+1} - t_i|`` times the field's Lipschitz
constant, so the regeneration from the result reproduces the image to far below a pixel's quantum.
``fixed_point = 0`` is the explicit reverse integration alone: the solver run from t = 1 back to 0.

Only a one-step solver (``euler``, ``heun``) can be inverted step by step: a multistep solver's step
depends on the steps before it, which inversion visits in the other order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import gen
from gen_flow.guidance import FlowGuide, guided_velocity, interval_pieces

__all__ = ["INVERTIBLE_SOLVERS", "invert_flow", "inversion_evaluations"]

#: Solvers whose whole solve is their step applied interval by interval, so that it can be inverted so.
INVERTIBLE_SOLVERS: tuple[str, ...] = ("euler", "heun")


def _solver(sampler: Any) -> Any:
    """The solver callable of a name, a `gen.ComponentSpec` or a callable, refusing a multistep one."""
    if callable(sampler) and not isinstance(sampler, gen.ComponentSpec):
        return sampler
    name = sampler.name if isinstance(sampler, gen.ComponentSpec) else str(sampler)
    if name not in INVERTIBLE_SOLVERS:
        raise gen.GenError(
            f"sampler {name!r} cannot be inverted step by step (a multistep, adaptive or stochastic solver's "
            f"step depends on more than its start); invert with one of {', '.join(INVERTIBLE_SOLVERS)} "
            "(--sampler heun) and regenerate with the same"
        )
    return sampler.build() if isinstance(sampler, gen.ComponentSpec) else gen.build("sampler", name)


class _FirstVelocity:
    """A velocity field that remembers its first evaluation of each call of the step map."""

    def __init__(self, velocity_fn: gen.VelocityFn):
        self.velocity_fn, self.first = velocity_fn, None

    def __call__(self, z: Tensor, t: Tensor) -> Tensor:
        v = self.velocity_fn(z, t)  # (B, ...)
        if self.first is None:
            self.first = v
        return v


def _exact_at_data_end(velocity_fn: gen.VelocityFn) -> gen.VelocityFn:
    """``velocity_fn`` with its value at t = 1 replaced by the exact ``v(z, 1) = z`` (module docstring)."""

    def field(z: Tensor, t: Tensor) -> Tensor:
        return z if float(t) >= 1.0 else velocity_fn(z, t)

    return field


@torch.no_grad()
def invert_flow(
    net: nn.Module,
    x: Tensor,
    condition: gen.Condition,
    *,
    prediction: gen.Prediction | str,
    sampler: Any,
    steps: int,
    grid: Any = "linear",
    cfg: float = 1.0,
    cfg_interval: tuple[float, float] = (0.0, 1.0),
    t_eps: float = 0.05,
    guide: FlowGuide | None = None,
    split_interval: bool = False,
    fixed_point: int = 1,
    on_step: Any = None,
) -> Tensor:
    """The noise at t = 0 that ``sampler`` on ``grid`` carries onto ``x`` at t = 1 (module docstring).

    Args:
        net: The backbone, in eval mode.
        x: (B, ...) samples at t = 1, in the data's range (the model's space: latents for a latent model).
        condition: What each sample is conditioned on (its null condition inverts the unconditional
            field); guidance, grid and split as `gen_flow.sampling.sample_flow` takes them, so that
            sampling from the result with the same settings regenerates ``x``.
        prediction: What the network predicts.
        sampler: A one-step solver (`INVERTIBLE_SOLVERS`): a name, a `gen.ComponentSpec` or a callable.
        steps: Solver steps on the grid.
        fixed_point: Fixed-point iterations per step (0: the explicit reverse step alone).
        on_step: ``on_step(k, total)`` after the k-th step is inverted (k = 1..total, from the data end).

    Returns:
        (B, ...) the inverted noise, in the start noise's scale (std about ``noise_scale``).
    """
    if fixed_point < 0:
        raise gen.GenError(f"fixed_point = {fixed_point}: give 0 (explicit reverse steps) or more iterations")
    solver = _solver(sampler)
    velocity_fn = guided_velocity(
        net, condition, prediction=prediction, cfg=cfg, cfg_interval=cfg_interval, t_eps=t_eps, guide=guide
    )
    times = gen.grid_times(grid, steps).to(dtype=x.dtype)  # (steps + 1,) on the CPU
    pieces = interval_pieces(times, cfg, cfg_interval) if split_interval else [(times, None)]
    intervals = [
        (velocity_fn if scale is None else velocity_fn.with_scale(scale), piece[i], piece[i + 1])
        for piece, scale in pieces
        for i in range(len(piece) - 1)
    ]
    z, v_warm = x, x  # the exact velocity at t = 1 is z itself
    for k, (field, start, end) in enumerate(reversed(intervals), 1):
        if fixed_point == 0:
            z = solver(_exact_at_data_end(field), z, torch.stack([end, start]))
        else:
            z, v_warm = _fixed_point(solver, field, z, v_warm, start, end, fixed_point)
        if on_step is not None:
            on_step(k, len(intervals))
    return z


def _fixed_point(
    solver: gen.Solver,
    field: gen.VelocityFn,
    target: Tensor,
    v_warm: Tensor,
    start: Tensor,
    end: Tensor,
    iterations: int,
) -> tuple[Tensor, Tensor]:
    """The point z at ``start`` whose step lands on ``target`` (B, ...) at ``end``, and the velocity at
    ``start`` at the last iterate but one (the next step's warm start, free), by ``iterations`` of
    ``z ← target - Δ(z)`` from the explicit reverse Euler step."""
    times = torch.stack([start, end])
    guess = target - (end - start) * v_warm  # (B, ...) the explicit reverse Euler step
    for _ in range(iterations):
        first = _FirstVelocity(field)
        guess = target - (solver(first, guess, times) - guess)
    return guess, first.first


def inversion_evaluations(sampler: str, steps: int, fixed_point: int) -> int:
    """Network evaluations (per guidance branch) of `invert_flow` on a grid of ``steps`` steps ending
    at t = 1 without a split."""
    stages = {"euler": [1] * steps, "heun": [2] * (steps - 1) + [1]}[sampler]
    if fixed_point:
        return fixed_point * sum(stages)
    # Explicit: the reverse step from t = 1 asks nothing at t = 1; Heun's reverse steps are two-stage.
    return steps - 1 if sampler == "euler" else 2 * steps - 1
