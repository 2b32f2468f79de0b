"""``deis_pc``: exponential multistep predictor (DEIS) with a UniC corrector, in the data prediction.

Checked against closed forms: a data prediction that moves linearly in t has an exact solution (with
and without the x-prediction's clamp), which the corrected second-order solver reproduces on any grid;
the exact flow of Gaussian data gives the orders of convergence.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import gen
from gen_flow.deis_pc import DeisPC, step_weights

F64 = torch.float64


def grid(n: int) -> torch.Tensor:
    return torch.arange(n + 1, dtype=F64) / n


def gaussian_field(mu: torch.Tensor, sigma: torch.Tensor):
    """The exact flow of data N(mu, sigma^2): z(1) = mu + sigma z(0) (see test_solvers)."""

    def v(z, t):
        t = float(t)
        var = t * t * sigma**2 + (1 - t) ** 2
        return mu + (t * sigma**2 - (1 - t)) / var * (z - t * mu)

    return v


class ClampedToward:
    """An x-prediction's field for a fixed x̂ = x: (x - z) / max(1 - t, t_eps)."""

    def __init__(self, x, t_eps):
        self.x, self.t_eps = x, t_eps

    def __call__(self, z, t):
        return (self.x - z) / max(1 - float(t), self.t_eps)


A = torch.tensor([[0.4, -1.1]], dtype=F64)  # x̂(t) = A + B t
B = torch.tensor([[1.5, 0.3]], dtype=F64)
Z0 = torch.tensor([[0.3, -1.0]], dtype=F64)


class LinearInTime:
    """dz/dt = (A + B t - z) / max(1 - t, t_eps): the field of a data prediction A + B t."""

    def __init__(self, t_eps: float):
        self.t_eps, self.calls = t_eps, 0

    def __call__(self, z, t):
        self.calls += 1
        return (A + B * float(t) - z) / max(1 - float(t), self.t_eps)


def exact_linear_in_time(t_eps: float, t: float) -> torch.Tensor:
    """z(t) in closed form. Before the clamp c = 1 - t_eps (with u = 1 - tau in the integral):
    z(t) = (1 - t) [z0 + (A + B)(1 / (1 - t) - 1) + B log(1 - t)]; past it, with h = t - c and
    i0 = 1 - e^{-h / t_eps}: z(t) = e^{-h / t_eps} z(c) + (A + B c) i0 + B (h - t_eps i0)."""
    if t_eps == 0 and t == 1:  # z(t) -> A + B t: the flow ends on the data prediction
        return A + B
    c = 1 - t_eps
    before = min(t, c)
    z = (1 - before) * (Z0 + (A + B) * (1 / (1 - before) - 1) + B * math.log(1 - before))
    if t <= c:
        return z
    h = t - c
    i0 = 1 - math.exp(-h / t_eps)
    return math.exp(-h / t_eps) * z + (A + B * c) * i0 + B * (h - t_eps * i0)


def build(**options) -> DeisPC:
    return gen.build("sampler", "deis_pc", **options)


def test_registered_one_evaluation_a_step_never_at_one():
    solver = build(order=2)
    assert isinstance(solver, DeisPC) and (solver.order, solver.corrector) == (2, True)
    times = []
    solver(lambda z, t: times.append(float(t)) or -z, torch.ones(1, 2, dtype=F64), grid(6))
    assert len(times) == 6 and max(times) == pytest.approx(5 / 6)


@pytest.mark.parametrize("order", [0, 4])
def test_order_out_of_range_is_refused(order):
    with pytest.raises(gen.RecipeError, match="order"):
        gen.resolve_config("sampler", "deis_pc", order=order)


def test_weights_sum_to_one_and_order_one_is_the_ddim_step():
    for eps in (0.0, 0.05):
        for s, t in ((0.0, 0.3), (0.5, 0.97), (0.96, 1.0), (0.2, 1.0)):
            phi, w = step_weights(s, t, [s, s - 0.1, s - 0.25], eps)
            assert phi + w.sum() == pytest.approx(1.0, abs=1e-13)
    phi, w = step_weights(0.2, 0.6, [0.2], 0.0)  # x̂ held: z_t = ((1 - t) z + (t - s) x̂) / (1 - s)
    assert (phi, w[0]) == pytest.approx((0.4 / 0.8, 0.4 / 0.8), abs=1e-14)
    phi, w = step_weights(0.96, 0.99, [0.96], 0.05)  # past the clamp: relaxation with rate 1 / t_eps
    assert phi == pytest.approx(math.exp(-0.03 / 0.05), abs=1e-14)


@pytest.mark.parametrize(("t_eps", "end"), [(0.0, 0.9), (0.0, 1.0), (0.05, 0.9), (0.05, 1.0)])
def test_the_corrected_solver_is_exact_for_a_data_prediction_linear_in_time(t_eps, end):
    exact = exact_linear_in_time(t_eps, end)
    grids = (grid(3), grid(10), torch.tensor([0.0, 0.02, 0.4, 0.93, 0.97, 1.0], dtype=F64))
    for ts in (g * end if end < 1 else g for g in grids):
        for order in (2, 3):
            z = build(order=order)(LinearInTime(t_eps), Z0, ts)
            torch.testing.assert_close(z, exact, rtol=0, atol=1e-12)
        # Without the corrector the first step (no history yet) holds x̂ constant: not exact, unless
        # the end is t = 1 without clamp, where z_1 = x̂(1) forgets the path (extrapolated exactly).
        uncorrected = build(order=2, corrector=False)(LinearInTime(t_eps), Z0, ts)
        if (t_eps, end) == (0.0, 1.0):
            torch.testing.assert_close(uncorrected, exact, rtol=0, atol=1e-12)
        else:
            assert (uncorrected - exact).abs().max() > 1e-6
    # Heun-1000 (the benchmark's reference) converges to the same closed form; its last step, Euler,
    # into an unclamped t = 1 is first order (measured 1.5e-3 there).
    heun = gen.build("sampler", "heun")(LinearInTime(t_eps), Z0, grid(1000) * end)
    atol = 2e-3 if (t_eps, end) == (0.0, 1.0) else 1e-5
    torch.testing.assert_close(heun, exact, rtol=0, atol=atol)


def test_a_constant_data_prediction_is_exact_through_the_clamp():
    x = torch.tensor([[2.0, 0.5]], dtype=F64)
    t_eps = 0.05
    z_c = t_eps * Z0 + (1 - t_eps) * x
    exact = x + (z_c - x) * math.exp(-1)
    for options in ({"order": 1, "corrector": False}, {"order": 2}, {"order": 3}):
        z1 = build(**options)(ClampedToward(x, t_eps), Z0, grid(7))
        torch.testing.assert_close(z1, exact, rtol=0, atol=1e-13)


def test_convergence_orders_on_the_gaussian_flow():
    """From t = 0 to 0.9 (a step into t = 1 without clamp is z_1 = x̂(1) extrapolated, whose error is
    that of the extrapolation, one order lower). The predictor's first steps have no history, which
    bounds a predictor of order 3 by 2; the corrector repairs them and adds its order."""
    mu = torch.tensor([0.5, -0.3, 0.8], dtype=F64)
    sigma = torch.tensor([0.3, 0.5, 1.0], dtype=F64)
    z0 = torch.tensor([[1.0, -1.2, 0.3], [-0.5, 0.7, -1.5]], dtype=F64)
    v = gaussian_field(mu, sigma)
    exact = 0.9 * mu + torch.sqrt(0.81 * sigma**2 + 0.01) * z0  # the marginal at t = 0.9
    errors = {}
    for name, options in (("p1", {"order": 1, "corrector": False}), ("p2", {"order": 2, "corrector": False}),
                          ("pc2", {"order": 2}), ("pc3", {"order": 3})):  # fmt: skip
        solver = build(**options)
        errors[name] = [(solver(v, z0, 0.9 * grid(n)) - exact).abs().max().item() for n in (20, 40, 80)]
    orders = {k: np.log2(np.array(e[:-1]) / np.array(e[1:])) for k, e in errors.items()}
    # measured (20 -> 40 -> 80 steps): p1 0.98 0.99, p2 2.04 2.03, pc2 2.96 2.98, pc3 3.78 4.03
    assert orders["p1"] == pytest.approx([1.0, 1.0], abs=0.05)
    assert orders["p2"] == pytest.approx([2.0, 2.0], abs=0.1)
    assert orders["pc2"] == pytest.approx([3.0, 3.0], abs=0.1)  # UniC raises the order by one
    assert orders["pc3"][-1] == pytest.approx(4.0, abs=0.15)
