"""Power-function EMA profiles and their post-hoc reconstruction (EDM2: Karras et al., 2024), in closed form.

A power-function EMA of exponent γ averages the weights θ(τ) seen up to time t with the profile

    ω_t(τ) = (γ + 1) τ^γ / t^(γ + 1)   for 0 ≤ τ ≤ t   (0 after t),

whose width relative to t, ``σ_rel = sqrt((γ + 1) / ((γ + 2)² (γ + 3)))``, is its *length*: the same
σ_rel averages the same fraction of any training run. It is tracked step by step with the decay
``β_t = (1 − 1/t)^(γ + 1)`` at update t (1, 2, ...): the weight of the step-τ weights in the EMA of step
t is then ``(τ^(γ+1) − (τ − 1)^(γ+1)) / t^(γ+1)``, exactly ω_t integrated over (τ − 1, τ] — the
discrete EMA *is* the continuous profile, for weights that hold between steps.

Post-hoc reconstruction. Snapshots of a few profiles (t_i, γ_i) are kept during training; the EMA of
any other profile (t, γ) is approximated by the combination ``Σ x_i EMA_i`` whose profile
``Σ x_i ω_i`` is closest to ω in L2 — with ``Σ x_i = 1``, a refinement of EDM2's plain least squares (see
`fit_profile`). The normal equations ``A x = b`` need only the inner products of two profiles,
which are closed forms: for t_a ≤ t_b,

    <ω_a, ω_b> = (γ_a + 1)(γ_b + 1) / (γ_a + γ_b + 1) · (t_a / t_b)^γ_b / t_b.

The relative L2 distance between the profiles, ``sqrt(<ω, ω> − b·x) / |ω|``, is the fit's error: it
says how well the stored profiles can stand for the requested one, before any weights are read.

Everything here is float64 NumPy; times are optimizer steps (any unit gives the same answer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import numpy as np

#: The longest length: γ = 0 (the uniform average of all training, σ_rel = 1 / sqrt(12)).
SIGMA_REL_MAX = 1.0 / math.sqrt(12.0)

#: A requested profile whose best fit is further than this (relative L2 distance of the profiles) is
#: refused: the stored profiles cannot reconstruct it.
MAX_PROFILE_ERROR = 0.05


@attrs.frozen
class EmaLength:
    """A power-function EMA, named by its length ``sigma_rel`` (EDM2's σ_rel).

    It names weights beside the exponential EMAs, which are named by their decay (a float):
    ``phema_0.05.safetensors``, ``--ema phema_0.05``.
    """

    sigma_rel: float = attrs.field(converter=float)

    def __str__(self) -> str:
        return f"phema_{self.sigma_rel!r}"


#: What names a set of weights of a checkpoint: an exponential EMA's decay, a power EMA, or None (raw).
EmaKey = float | EmaLength | None


def check_sigma_rel(sigma_rel: float) -> float:
    """``sigma_rel`` when it is a length a power EMA can have, in (0, 1/sqrt(12)]; else ``ValueError``."""
    if not (math.isfinite(sigma_rel) and 0.0 < sigma_rel <= SIGMA_REL_MAX):
        raise ValueError(
            f"an EMA length sigma_rel must be in (0, {SIGMA_REL_MAX:.4f}] (0.2887 = the average of all "
            f"training), got {sigma_rel}"
        )
    return float(sigma_rel)


def sigma_rel_of(gamma: float) -> float:
    """The length σ_rel of the profile of exponent γ (≥ 0)."""
    return math.sqrt((gamma + 1.0) / ((gamma + 2.0) ** 2 * (gamma + 3.0)))


def exponent_of(sigma_rel: float) -> float:
    """The exponent γ ≥ 0 of the profile of length σ_rel: the largest real root of
    ``(γ + 2)² (γ + 3) = σ_rel⁻² (γ + 1)``, i.e. ``γ³ + 7γ² + (16 − s)γ + (12 − s) = 0`` with s = σ_rel⁻²."""
    s = check_sigma_rel(sigma_rel) ** -2
    roots = np.roots([1.0, 7.0, 16.0 - s, 12.0 - s])
    gamma = float(max(r.real for r in roots if abs(r.imag) <= 1e-9 * max(1.0, abs(r.real))))
    # One Newton step on the float64 root polishes what the eigenvalue solver leaves (~1e-12 relative).
    f = ((gamma + 7.0) * gamma + 16.0 - s) * gamma + 12.0 - s
    df = (3.0 * gamma + 14.0) * gamma + 16.0 - s
    return max(gamma - f / df, 0.0) if df else max(gamma, 0.0)


def power_beta(step: int, gamma: float) -> float:
    """The decay of update ``step`` (1, 2, ...) of a power EMA of exponent γ: ``(1 − 1/step)^(γ + 1)``.

    Update 1 has β = 0: the EMA starts at the weights after the first step, not the initial ones.
    """
    if step < 1:
        raise ValueError(f"power EMA updates count from 1, got {step}")
    return (1.0 - 1.0 / step) ** (gamma + 1.0)


def profile_dot(
    t_a: np.ndarray | float, gamma_a: np.ndarray | float, t_b: np.ndarray | float, gamma_b: np.ndarray | float
) -> np.ndarray:
    """<ω_a, ω_b>: the L2 inner product of two power profiles (broadcast over arrays), float64.

    Written with the ratio of the times, which stays in (0, 1], so that large exponents do not overflow.
    """
    t_a, g_a, t_b, g_b = (np.asarray(x, dtype=np.float64) for x in (t_a, gamma_a, t_b, gamma_b))
    later = t_a >= t_b
    ratio = np.where(later, t_b / t_a, t_a / t_b)  # (earlier / later) time
    g_later = np.where(later, g_a, g_b)
    t_later = np.where(later, t_a, t_b)
    return (g_a + 1.0) * (g_b + 1.0) / (g_a + g_b + 1.0) * ratio**g_later / t_later


@attrs.frozen
class Fit:
    """The combination of stored profiles that best matches a requested one.

    Attributes:
        coefficients: (S,) float64 weight of each stored profile (they sum to 1).
        error: Relative L2 distance between the requested profile and the combination's.
    """

    coefficients: np.ndarray = attrs.field(eq=False)
    error: float


def fit_profile(sources: Sequence[tuple[float, float]], target: tuple[float, float]) -> Fit:
    """The combination of ``sources`` (time, σ_rel) whose profile is closest to ``target``'s in L2,
    among those whose coefficients sum to 1.

    Args:
        sources: (t_i, σ_rel_i) of the stored profiles: the times of their snapshots and their lengths.
        target: (t, σ_rel) of the requested profile.

    Returns:
        Its coefficients and relative error (`Fit`).
    """
    if not sources:
        raise ValueError("no stored profiles to combine")
    t_target, gamma_target = float(target[0]), exponent_of(target[1])
    # Times relative to the target's keep the matrix's scale at 1 whatever the length of the run.
    t = np.array([s[0] for s in sources], dtype=np.float64) / t_target  # (S,)
    g = np.array([exponent_of(s[1]) for s in sources], dtype=np.float64)  # (S,)
    a = profile_dot(t[:, None], g[:, None], t[None, :], g[None, :])  # (S, S) Gram matrix
    b = profile_dot(t, g, 1.0, gamma_target)  # (S,)
    # Least squares with the coefficients summing to 1 (Lagrange multiplier in the last row): an average
    # of weights must weigh them in all by 1, else every parameter is scaled by sum(x) (0.98-1.01 with 8
    # snapshots unconstrained) and parameters that never move (frozen, buffers) would not be kept.
    n = len(t)
    kkt = np.ones((n + 1, n + 1), dtype=np.float64)
    kkt[:n, :n], kkt[n, n] = a, 0.0
    rhs = np.append(b, 1.0)
    x = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:n]  # lstsq: a repeated profile makes kkt singular
    norm2 = float(profile_dot(1.0, gamma_target, 1.0, gamma_target))
    residual = norm2 - 2.0 * float(b @ x) + float(x @ a @ x)
    return Fit(coefficients=x, error=math.sqrt(max(residual, 0.0) / norm2))


def reconstructable_range(
    sources: Sequence[tuple[float, float]], t: float, max_error: float = MAX_PROFILE_ERROR
) -> tuple[float, float] | None:
    """The lengths (lowest, highest) at time ``t`` that ``sources`` reconstruct within ``max_error``,
    searched on a grid of 200 lengths from 0.002 to the longest (None when none is)."""
    grid = np.geomspace(0.002, SIGMA_REL_MAX, 200)
    good = [float(s) for s in grid if fit_profile(sources, (t, float(s))).error <= max_error]
    return (good[0], good[-1]) if good else None


def equivalent_decay(sigma_rel: float, step: int) -> float:
    """The decay of the exponential EMA whose profile has the same width at ``step`` as the power EMA of
    length σ_rel: an exponential EMA of decay β has std sqrt(β) / (1 − β) steps, so β solves
    ``sqrt(β) / (1 − β) = σ_rel · step``."""
    s = sigma_rel * step
    if s <= 0:
        return 0.0
    u = (math.sqrt(1.0 + 4.0 * s * s) - 1.0) / (2.0 * s)  # u = sqrt(β): s u² + u − s = 0
    return u * u


def sigma_rel_of_decay(decay: float, step: int) -> float:
    """The length at ``step`` of an exponential EMA of decay β: its std sqrt(β) / (1 − β), over ``step``."""
    return math.sqrt(decay) / (1.0 - decay) / step


def parse_ema(text: str) -> EmaKey:
    """An EMA named on a command line: ``0.9999`` (a decay), ``phema_0.05`` (a power EMA's length) or
    ``none``/``raw`` (the raw weights); ``ValueError`` for anything else."""
    text = text.strip()
    if text.lower() in ("none", "raw"):
        return None
    if text.lower().startswith("phema_"):
        return EmaLength(check_sigma_rel(float(text[len("phema_") :])))
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text}")
    return value


__all__ = [
    "MAX_PROFILE_ERROR",
    "SIGMA_REL_MAX",
    "EmaKey",
    "EmaLength",
    "Fit",
    "check_sigma_rel",
    "equivalent_decay",
    "exponent_of",
    "fit_profile",
    "parse_ema",
    "power_beta",
    "profile_dot",
    "reconstructable_range",
    "sigma_rel_of",
    "sigma_rel_of_decay",
]
