"""Two ODE solvers with the shared sampler signature ``(velocity_fn, z0, timesteps) -> z1``.

``velocity_fn(z, t)`` is the already guided velocity at time ``t`` (a 0-dim tensor); ``timesteps`` is
the increasing 1-D grid from ``t_0`` (noise, ``z0``) to ``t_N`` (data, the returned ``z1``). A solver
never sees the network, its prediction type or the guidance.

Neither solver evaluates the velocity at the last grid point, ``t_N = 1``: an x-prediction's
velocity ``(x̂ - z) / max(1 - t, t_eps)`` is least accurate there (the built-in solvers avoid it for
the same reason).
"""

from __future__ import annotations

import gen
from torch import Tensor


# --8<-- [start:midpoint]
def midpoint(velocity_fn: gen.VelocityFn, z0: Tensor, timesteps: Tensor) -> Tensor:
    """Explicit midpoint rule: z' = z + h v(z + h/2 v(z, t), t + h/2).

    Second order, 2 evaluations a step.

    Args:
        velocity_fn: ``(z, t) -> v``.
        z0: (B, ...) the state at ``timesteps[0]``.
        timesteps: (N + 1,) increasing times.

    Returns:
        (B, ...) the state at ``timesteps[-1]``.
    """
    z = z0
    for i in range(len(timesteps) - 1):
        t, h = timesteps[i], timesteps[i + 1] - timesteps[i]
        k1 = velocity_fn(z, t)  # (B, ...)
        z = z + h * velocity_fn(z + (h / 2) * k1, t + h / 2)  # (B, ...)
    return z


# --8<-- [end:midpoint]


def rk4(velocity_fn: gen.VelocityFn, z0: Tensor, timesteps: Tensor) -> Tensor:
    """Classical fourth-order Runge–Kutta; the last step is a midpoint step (no evaluation at t_N).

    k1 = v(z, t), k2 = v(z + h/2 k1, t + h/2), k3 = v(z + h/2 k2, t + h/2), k4 = v(z + h k3, t + h),
    z' = z + h (k1 + 2 k2 + 2 k3 + k4) / 6. Fourth order on every step but the last (second order
    there); 4N - 2 evaluations for N steps.

    Args:
        velocity_fn: ``(z, t) -> v``.
        z0: (B, ...) the state at ``timesteps[0]``.
        timesteps: (N + 1,) increasing times.

    Returns:
        (B, ...) the state at ``timesteps[-1]``.
    """
    z = z0
    n = len(timesteps) - 1
    for i in range(n - 1):
        t, h = timesteps[i], timesteps[i + 1] - timesteps[i]
        k1 = velocity_fn(z, t)  # (B, ...)
        k2 = velocity_fn(z + (h / 2) * k1, t + h / 2)
        k3 = velocity_fn(z + (h / 2) * k2, t + h / 2)
        k4 = velocity_fn(z + h * k3, t + h)
        z = z + h * (k1 + 2 * k2 + 2 * k3 + k4) / 6
    if n >= 1:
        z = midpoint(velocity_fn, z, timesteps[n - 1 :])
    return z
