"""ODE solvers over a velocity field (k-diffusion style): ``solver(velocity_fn, z0, timesteps) -> z1``.

``velocity_fn(z, t) -> v`` is the (already guided) velocity at time ``t`` (a 0-dim tensor);
``timesteps`` is the 1-D grid t_0 = 0 (noise, ``z0``) < t_1 < ... < t_N = 1 (data, the returned
``z1``), or one piece of it: with ``[sample] split_interval`` the driver integrates each piece between
the guidance interval's ends with its own call. Solvers never see the prediction type or the guidance:
only velocities.

None of the solvers evaluates the velocity at t = 1: for an x-prediction it divides by ``max(1 - t,
t_eps)`` there, i.e. it is the least accurate velocity on the grid. Heun therefore ends with one Euler
step into t = 1, as published JiT does.
"""

from __future__ import annotations

import math

import attrs
import torch
from attrs import validators as v
from torch import Tensor

import gen

__all__ = [
    "Dopri5",
    "Dopri5Config",
    "EulerMaruyama",
    "EulerMaruyamaConfig",
    "ab2",
    "dpmpp_2m",
    "dpmpp_3m",
    "euler",
    "heun",
]


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
    interval but a last one into t = 1, which is one Euler step (published JiT). Second order; 2N - 1
    evaluations for N steps (2N on a piece of the grid that ends before t = 1).
    """
    z = z0
    n = len(timesteps) - 1
    two_stage = n - 1 if float(timesteps[-1]) >= 1.0 else n  # a piece ending before t = 1 ends with Heun
    for i in range(two_stage):
        t, t_next = timesteps[i], timesteps[i + 1]
        v1 = velocity_fn(z, t)  # (B, ...)
        z_euler = z + (t_next - t) * v1
        v2 = velocity_fn(z_euler, t_next)
        z = z + (t_next - t) * (v1 + v2) / 2
    if two_stage < n:
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


# -- DPM-Solver++: multistep in the data prediction --------------------------------------------------


def _logit(t: float) -> float:
    """lambda(t) = log(alpha_t / sigma_t) = log(t / (1 - t)) on the linear path (-inf at 0, inf at 1)."""
    if t <= 0.0:
        return -math.inf
    if t >= 1.0:
        return math.inf
    return math.log(t / (1 - t))


def _relax(z: Tensor, x_hat: Tensor, dt: float, t_eps: float) -> Tensor:
    """The exact solution of dz/dt = (x̂ - z) / t_eps over ``dt`` with x̂ held: the data-end clamp."""
    return x_hat + (z - x_hat) * math.exp(-dt / t_eps)


def _dpmpp_step(
    z: Tensor, data: list[Tensor], lambdas: list[float], s: float, t: float, order: int
) -> Tensor:
    """One DPM-Solver++ multistep update from s to t < 1 (or to t = 1 at order 1) from the newest
    data predictions ``data`` at the times of ``lambdas``."""
    x_hat = data[-1]
    ratio, gain = (1 - t) / (1 - s), (t - s) / (1 - s)  # sigma_t / sigma_s, alpha_t (1 - e^-h)
    if order == 1:
        return ratio * z + gain * x_hat
    h = _logit(t) - lambdas[-1]
    r0 = (lambdas[-1] - lambdas[-2]) / h
    d1_0 = (data[-1] - data[-2]) / r0
    if order == 2:
        return ratio * z + gain * (x_hat + 0.5 * d1_0)
    r1 = (lambdas[-2] - lambdas[-3]) / h
    d1_1 = (data[-2] - data[-3]) / r1
    d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)
    d2 = (d1_0 - d1_1) / (r0 + r1)
    em1 = math.expm1(-h)  # e^-h - 1
    return ratio * z - t * em1 * x_hat + t * (em1 / h + 1) * d1 - t * ((em1 + h) / h**2 - 0.5) * d2


def _dpmpp(velocity_fn: gen.VelocityFn, z0: Tensor, timesteps: Tensor, max_order: int) -> Tensor:
    """DPM-Solver++ multistep of order ``max_order`` (1 to 3) on the linear path; see `dpmpp_2m`."""
    t_eps = velocity_fn.t_eps if isinstance(velocity_fn, gen.DataClampedVelocity) else 0.0
    clamp = 1.0 - t_eps  # beyond it the field relaxes toward x̂ (an x-prediction's clamp)
    z, times = z0, [float(t) for t in timesteps]
    data: list[Tensor] = []  # x̂ at the previous points, newest last
    lambdas: list[float] = []
    for i in range(len(times) - 1):
        s, t = times[i], times[i + 1]
        x_hat = z + max(1 - s, t_eps) * velocity_fn(z, timesteps[i])  # (B, ...) the data prediction at s
        if s >= clamp:
            z = _relax(z, x_hat, t - s, t_eps)
            continue
        data, lambdas = [*data[-2:], x_hat], [*lambdas[-2:], _logit(s)]
        end = min(t, clamp)
        usable = sum(1 for lam in lambdas if math.isfinite(lam))  # lambda(0) = -inf: no history there
        order = 1 if end >= 1.0 else max(1, min(max_order, usable))  # h is infinite on a step to t = 1
        z = _dpmpp_step(z, data, lambdas, s, end, order)
        if t > end:  # the rest of the step lies beyond the clamp
            z = _relax(z, x_hat, t - end, t_eps)
    return z


def dpmpp_2m(velocity_fn: gen.VelocityFn, z0: Tensor, timesteps: Tensor) -> Tensor:
    """DPM-Solver++(2M) (Lu et al., 2022, *DPM-Solver++*, Algorithm 2) in the data prediction.

    On the linear path alpha_t = t, sigma_t = 1 - t and lambda = log(alpha / sigma) = logit t. The data
    prediction is recovered from the velocity, x̂ = z + (1 - s) v(z, s) (exact where 1 - s >= t_eps, the
    clamp of an x-prediction's velocity). The exact solution of the ODE in lambda with x̂ held constant,
    ``z_t = (sigma_t / sigma_s) z_s + alpha_t (1 - e^-h) x̂``, h = lambda_t - lambda_s, is the first-order
    step: ``alpha_t (1 - e^-h) = (t - s) / (1 - s)``, so it is Euler's step. The second order replaces
    x̂_s by ``x̂_s + (x̂_s - x̂_prev) / (2 r)``, r = h_prev / h: x̂ extrapolated linearly in lambda from the
    previous point. The first step (no usable history at lambda(0) = -inf) and a step to t = 1
    (lambda(1) = inf, h infinite: z_1 = x̂) are first order. One evaluation per step, never at t = 1: N evaluations for N steps.
    """
    return _dpmpp(velocity_fn, z0, timesteps, max_order=2)


def dpmpp_3m(velocity_fn: gen.VelocityFn, z0: Tensor, timesteps: Tensor) -> Tensor:
    """DPM-Solver++(3M) (Lu et al., 2022, *DPM-Solver++*, eq. for the third-order multistep update, as in
    diffusers' ``DPMSolverMultistepScheduler``): x̂ extrapolated quadratically in lambda from the last
    three points,

    ``z_t = (sigma_t/sigma_s) z - alpha_t (e^-h - 1) D0 + alpha_t ((e^-h - 1)/h + 1) D1
    - alpha_t ((e^-h - 1 + h)/h^2 - 1/2) D2``

    with D0 = x̂_s and D1, D2 the first and second divided differences of x̂ in lambda. Orders 1 and 2 at
    the start (the history fills up); a step to t = 1 is first order (h is infinite there, z_1 = x̂). N evaluations for N steps.
    """
    return _dpmpp(velocity_fn, z0, timesteps, max_order=3)


# -- adaptive: dopri5 through torchdiffeq ---------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Dopri5Config:
    """Options of the ``dopri5`` sampler (SiT's ODE defaults)."""

    atol: float = gen.field(1e-6, doc="Absolute tolerance of the adaptive step.", validator=v.gt(0))
    rtol: float = gen.field(1e-3, doc="Relative tolerance of the adaptive step.", validator=v.gt(0))


class Dopri5:
    """Dormand–Prince 5(4) with adaptive steps (Dormand & Prince, 1980) through ``torchdiffeq``, as SiT
    samples its ODE. Only the first and last times of the grid are used: the solver chooses its own
    steps to meet ``atol``/``rtol``, so the NFE follows the field, not ``steps``. Needs the optional
    dependency: ``pip install 'gen[ode]'``."""

    def __init__(self, config: Dopri5Config):
        try:
            from torchdiffeq import odeint
        except ImportError:
            raise gen.GenError(
                "sampler 'dopri5' needs torchdiffeq: pip install 'gen[ode]' (or choose another sampler)"
            ) from None
        self.odeint, self.atol, self.rtol = odeint, config.atol, config.rtol

    def __call__(self, velocity_fn: gen.VelocityFn, z0: Tensor, timesteps: Tensor) -> Tensor:
        ends = torch.stack([timesteps[0], timesteps[-1]]).to(z0.device)  # the adaptive solver reads t there
        path = self.odeint(
            lambda t, z: velocity_fn(z, t), z0, ends, method="dopri5", atol=self.atol, rtol=self.rtol
        )
        return path[-1]


# -- stochastic: Euler–Maruyama on the SDE with the flow's marginals -----------------------------------


@attrs.frozen(kw_only=True)
class EulerMaruyamaConfig:
    """Options of the ``euler_maruyama`` sampler."""

    diffusion: float = gen.field(
        1.0,
        doc="Scale g of the diffusion coefficient w(t) = g (1 - t) (0 = the ODE, Euler).",
        validator=v.ge(0),
    )
    last_step: str = gen.field(
        "mean",
        doc="The step into t = 1: mean (the drift only, no noise) or x (the data prediction x̂).",
        validator=v.in_(("mean", "x")),
    )


class EulerMaruyama:
    """Euler–Maruyama on the SDE with the marginals of the flow (SiT, Ma et al., 2024, eq. 7):

    ``dz = [v + w(t)/2 * score] dt + sqrt(w(t)) dW``, with ``score = -(z - t v) / (1 - t)`` on the linear
    path (ε̂ = z - t v, score = -ε̂ / (1 - t)) and ``w(t) = g (1 - t)``, so that ``w * score`` stays
    finite at t = 1. Any w >= 0 keeps the marginals of the ODE; g = 0 is Euler. The noise of sample i
    comes from a generator keyed by its start noise (`gen.per_sample_generators`), so samples do not
    depend on the batch. The step into t = 1 adds no noise (``mean``) or returns x̂ (``x``). N evaluations.
    """

    def __init__(self, config: EulerMaruyamaConfig):
        self.g, self.last_step = config.diffusion, config.last_step

    def __call__(self, velocity_fn: gen.VelocityFn, z0: Tensor, timesteps: Tensor) -> Tensor:
        gens = gen.per_sample_generators(z0)
        z = z0
        n = len(timesteps) - 1
        for i in range(n):
            t, t_next = timesteps[i], timesteps[i + 1]
            h, tf = float(t_next - t), float(t)
            vel = velocity_fn(z, t)  # (B, ...)
            if i == n - 1 and float(t_next) >= 1.0:  # into t = 1: no noise
                return z + (1 - tf) * vel if self.last_step == "x" else z + h * vel
            w = self.g * (1 - tf)
            score = -(z - tf * vel) / (1 - tf)
            noise = torch.stack([torch.randn(z.shape[1:], generator=g, dtype=z.dtype) for g in gens]).to(
                z.device
            )
            z = z + h * (vel + 0.5 * w * score) + math.sqrt(w * h) * noise
        return z
