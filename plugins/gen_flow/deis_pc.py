"""Exponential multistep predictor–corrector in the data prediction (DEIS + UniC) on the linear path.

An x-prediction's sampler integrates ``dz/dt = (x̂(z, t) - z) / sigma(t)`` with ``sigma(t) = max(1 - t,
t_eps)`` (``t_eps = 0`` when the field has no clamp). The part ``-z / sigma`` is linear and is integrated
exactly with the integrating factor ``exp(L(t))``, ``L(t) = ∫_0^t du / sigma(u)`` (``-log(1 - t)``, then
linear with slope ``1 / t_eps`` past the clamp):

    z_t = Phi(t, s) z_s + ∫_s^t Phi(t, u) x̂(u) dL(u),        Phi(t, u) = exp(-(L(t) - L(u))).

Only x̂ along the path is approximated: by the Lagrange polynomial in t through the data predictions
already computed, and the integral of the polynomial against the kernel is taken by Gauss–Legendre
quadrature in L, split where the clamp begins (the kernel is then a plain exponential and the\npolynomial a smooth function of L on each side, so 16 nodes are exact to rounding).

- The **predictor** extrapolates x̂ through the newest ``order`` points: DEIS's exponential
  Adams–Bashforth (Zhang & Chen, 2022, *Fast Sampling of Diffusion Models with Exponential Integrator*,
  "tAB"), written for the data prediction as DPM-Solver++ is (Lu et al., 2022). Order 1 is the DDIM /
  Euler step ``z_t = ((1 - t) z_s + (t - s) x̂_s) / (1 - s)``.
- The **corrector** redoes the step just taken once x̂ at its end is known, interpolating through that
  point and the ``order`` before it: UniPC's UniC (Zhao et al., 2023, *UniPC*), an exponential
  Adams–Moulton step. It costs no evaluation: the x̂ that the next step needs anyway is reused, so the
  order rises by one at N evaluations for N steps.

Past the clamp ``1 - t_eps`` the same formula integrates the clamped field, so no special case is needed
there (DPM-Solver++ holds x̂ constant beyond it, a first-order step). One evaluation a step, never at
``t = 1``.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
from attrs import validators as v
from torch import Tensor

import gen

__all__ = ["DeisPC", "DeisPCConfig", "step_weights"]

#: Gauss–Legendre nodes and weights on [-1, 1]: exact for polynomials of degree 2 * 16 - 1, and the
#: kernel exp(L - L_t) is entire, so 16 nodes give the weights to about 1e-15 on any step of the grid.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)


class _Clock:
    """``L(t) = ∫_0^t du / max(1 - u, eps)`` and its inverse."""

    def __init__(self, eps: float):
        self.eps, self.end = eps, 1.0 - eps

    def L(self, t: float) -> float:  # noqa: N802
        if t <= self.end:
            return -math.log1p(-t) if t < 1.0 else math.inf
        return -math.log(self.eps) + (t - self.end) / self.eps

    def t(self, L: np.ndarray) -> np.ndarray:  # noqa: N803
        if self.eps == 0:
            return -np.expm1(-L)
        Lc = -math.log(self.eps)  # noqa: N806
        return np.where(L <= Lc, -np.expm1(-np.minimum(L, Lc)), self.end + (L - Lc) * self.eps)


def step_weights(s: float, t: float, nodes: list[float], eps: float) -> tuple[float, np.ndarray]:
    """The step ``z_t = phi z_s + sum_j w_j x̂(nodes_j)`` with x̂ the Lagrange polynomial in t through
    ``nodes``.

    Args:
        s: start time.
        t: end time, ``s < t <= 1``.
        nodes: distinct times of the known data predictions (any order; may include t).
        eps: where the clamp begins (``1 - eps``); 0 for a field without clamp.

    Returns:
        ``phi = Phi(t, s)`` and the (len(nodes),) weights; ``phi + sum(w) = 1``.
    """
    clock = _Clock(eps)
    nodes_arr = np.asarray(nodes, dtype=np.float64)
    if math.isinf(clock.L(t)):  # t = 1 without clamp: Phi(1, u) = 0, all mass at u = 1: z_1 = x̂(1)
        return 0.0, _lagrange(nodes_arr, np.array([1.0]))[:, 0]
    Ls, Lt = clock.L(s), clock.L(t)  # noqa: N806
    # t(L) has a kink where the clamp begins: integrate each side separately so both are smooth.
    cuts = [Ls, *([clock.L(clock.end)] if s < clock.end < t else []), Lt]
    weights = np.zeros(len(nodes_arr))
    for a, b in zip(cuts[:-1], cuts[1:], strict=False):
        L = 0.5 * (b - a) * _NODES + 0.5 * (a + b)  # (Q,) quadrature points in L  # noqa: N806
        kernel = 0.5 * (b - a) * _WEIGHTS * np.exp(L - Lt)  # (Q,)
        weights += _lagrange(nodes_arr, clock.t(L)) @ kernel  # (J,)
    return math.exp(Ls - Lt), weights


def _lagrange(nodes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(J, Q) values of the Lagrange basis polynomials through ``nodes`` at the points ``x``."""
    basis = np.ones((len(nodes), len(x)))
    for j, nj in enumerate(nodes):
        for m, nm in enumerate(nodes):
            if m != j:
                basis[j] *= (x - nm) / (nj - nm)
    return basis


@attrs.frozen(kw_only=True)
class DeisPCConfig:
    """Options of the ``deis_pc`` sampler."""

    order: int = gen.field(
        2,
        doc="Points the predictor extrapolates x̂ through (1 = DDIM/Euler). 2 is stable with guidance; "
        "3 can overshoot on coarse grids.",
        validator=[v.ge(1), v.le(3)],
    )
    corrector: bool = gen.field(True, doc="Correct each step with UniC (order + 1, no extra evaluation).")


class DeisPC:
    """DEIS predictor with a UniC corrector in the data prediction; see the module docstring.

    ``solver(velocity_fn, z0, timesteps) -> z1`` as every sampler. The data prediction is recovered from
    the velocity as ``x̂ = z + max(1 - s, t_eps) v(z, s)``, ``t_eps`` from a `gen.DataClampedVelocity`
    (0 for any other field). N evaluations for N steps.
    """

    def __init__(self, config: DeisPCConfig):
        self.order, self.corrector = config.order, config.corrector

    def __call__(self, velocity_fn: gen.VelocityFn, z0: Tensor, timesteps: Tensor) -> Tensor:
        eps = velocity_fn.t_eps if isinstance(velocity_fn, gen.DataClampedVelocity) else 0.0
        times = [float(t) for t in timesteps]
        z = z0
        known: list[tuple[float, Tensor]] = []  # (time, x̂), newest first
        previous: tuple[float, Tensor] | None = None  # start (time, state) of the step just taken
        for i in range(len(times) - 1):
            s, t = times[i], times[i + 1]
            x_hat = z + max(1.0 - s, eps) * velocity_fn(z, timesteps[i])  # (B, ...) data prediction at s
            if self.corrector and previous is not None:  # UniC: redo the last step through x̂ at its end
                z = self._step(previous[1], previous[0], s, [(s, x_hat), *known[: self.order]], eps)
            known = [(s, x_hat), *known][: self.order + 1]
            previous = (s, z)
            z = self._step(z, s, t, known[: self.order], eps)
        return z

    @staticmethod
    def _step(z: Tensor, s: float, t: float, known: list[tuple[float, Tensor]], eps: float) -> Tensor:
        phi, weights = step_weights(s, t, [n for n, _ in known], eps)
        out = phi * z
        for w, (_, x_hat) in zip(weights.tolist(), known, strict=True):
            out = out + w * x_hat
        return out

    def __repr__(self) -> str:
        return f"DeisPC(order={self.order}, corrector={self.corrector})"
