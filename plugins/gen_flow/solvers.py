"""ODE solvers over a velocity field (k-diffusion style): ``solver(velocity_fn, z0, timesteps) -> z1``.

``velocity_fn(z, t) -> v`` is the (already guided) velocity at time ``t`` (a 0-dim tensor);
``timesteps`` is the 1-D grid t_0 = 0 (noise, ``z0``) < t_1 < ... < t_N = 1 (data, the returned
``z1``). Solvers never see the prediction type or the guidance: only velocities.

None of the solvers evaluates the velocity at the last grid point: for an x-prediction it divides by
``max(1 - t, t_eps)`` there, i.e. it is the least accurate velocity on the grid. Heun therefore ends with
one Euler step, as published JiT does.
"""

from __future__ import annotations

from torch import Tensor

import gen

__all__ = ["euler", "heun", "ab2"]


def euler(velocity_fn: gen.VelocityFn, z0: Tensor, timesteps: Tensor) -> Tensor:
    """Explicit Euler: z' = z + (t' - t) v(z, t). First order; N evaluations for N steps.

    Args:
        velocity_fn: ``(z, t) -> v``.
        z0: (B, ...) start at ``timesteps[0]``.
        timesteps: (N + 1,) increasing times.

    Returns:
        (B, ...) the state at ``timesteps[-1]``.
    """
    z = z0
    for i in range(len(timesteps) - 1):
        t, t_next = timesteps[i], timesteps[i + 1]
        z = z + (t_next - t) * velocity_fn(z, t)  # (B, ...)
    return z


def heun(velocity_fn: gen.VelocityFn, z0: Tensor, timesteps: Tensor) -> Tensor:
    """Heun's method (explicit trapezoid; Karras et al., 2022, Algorithm 1 without churn).

    v1 = v(z, t); z_e = z + (t' - t) v1; v2 = v(z_e, t'); z' = z + (t' - t) (v1 + v2) / 2, on every
    interval but the last, which is one Euler step (published JiT). Second order; 2N - 1 evaluations
    for N steps.
    """
    z = z0
    n = len(timesteps) - 1
    for i in range(n - 1):
        t, t_next = timesteps[i], timesteps[i + 1]
        v1 = velocity_fn(z, t)  # (B, ...)
        z_euler = z + (t_next - t) * v1
        v2 = velocity_fn(z_euler, t_next)
        z = z + (t_next - t) * (v1 + v2) / 2
    if n >= 1:
        z = z + (timesteps[n] - timesteps[n - 1]) * velocity_fn(z, timesteps[n - 1])
    return z


def ab2(velocity_fn: gen.VelocityFn, z0: Tensor, timesteps: Tensor) -> Tensor:
    """Two-step Adams–Bashforth with variable steps (Hairer, Nørsett & Wanner, *Solving ODEs I*, III.5).

    z_{n+1} = z_n + h_n ((1 + r/2) v_n - (r/2) v_{n-1}),  r = h_n / h_{n-1}: the velocity extrapolated
    linearly from the current and the previous evaluation. The first step is a Heun step (so the
    method is second order from the start); every later step costs one evaluation, and the last step
    needs no velocity at t = 1 either. Second order; N + 1 evaluations for N steps (one step: Euler).
    """
    z = z0
    n = len(timesteps) - 1
    if n == 0:
        return z
    if n == 1:
        return z + (timesteps[1] - timesteps[0]) * velocity_fn(z, timesteps[0])
    # Start: one Heun step from t_0 to t_1.
    h_prev = timesteps[1] - timesteps[0]
    v_prev = velocity_fn(z, timesteps[0])  # (B, ...)
    v_end = velocity_fn(z + h_prev * v_prev, timesteps[1])
    z = z + h_prev * (v_prev + v_end) / 2
    for i in range(1, n):
        h = timesteps[i + 1] - timesteps[i]
        v_cur = velocity_fn(z, timesteps[i])  # (B, ...)
        r = h / h_prev
        z = z + h * ((1 + r / 2) * v_cur - (r / 2) * v_prev)
        v_prev, h_prev = v_cur, h
    return z
