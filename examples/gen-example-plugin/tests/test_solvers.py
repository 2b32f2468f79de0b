"""The midpoint and rk4 samplers: exactness, order of convergence, evaluation count, no call at t = 1."""

from __future__ import annotations

import math

import gen
import pytest
import torch


def solve(
    name: str, field, z0: torch.Tensor, steps: int
) -> tuple[torch.Tensor, list[float]]:
    solver = gen.build("sampler", name)
    times: list[float] = []

    def velocity_fn(z, t):
        times.append(float(t))
        return field(z, t)

    z1 = solver(
        velocity_fn, z0, torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    )
    return z1, times


def cos_field(z, t):
    """dz/dt = cos(t) z, so z(1) = z(0) exp(sin 1)."""
    return torch.cos(torch.as_tensor(t, dtype=z.dtype)) * z


@pytest.mark.parametrize("name", ["midpoint", "rk4"])
def test_constant_velocity_is_integrated_exactly(name):
    z0 = torch.randn(4, 3, dtype=torch.float64)
    z1, _ = solve(name, lambda z, t: torch.full_like(z, 2.0), z0, steps=3)
    torch.testing.assert_close(z1, z0 + 2.0)


@pytest.mark.parametrize(
    ("name", "evaluations"),
    [("midpoint", lambda n: 2 * n), ("rk4", lambda n: 4 * n - 2)],
)
def test_evaluation_count_and_no_velocity_at_the_last_time(name, evaluations):
    for n in (1, 2, 5):
        _, times = solve(name, cos_field, torch.ones(2, dtype=torch.float64), steps=n)
        assert len(times) == evaluations(n)
        assert max(times) < 1.0


def test_midpoint_one_step_by_hand():
    # One step of h = 1 on dz/dt = cos(t) z from z = 1: k1 = 1, z_mid = 1.5, z1 = 1 + cos(0.5) * 1.5.
    z1, _ = solve("midpoint", cos_field, torch.ones(1, dtype=torch.float64), steps=1)
    assert z1.item() == pytest.approx(1 + math.cos(0.5) * 1.5, rel=1e-12)


def observed_order(name: str, steps: tuple[int, int]) -> tuple[float, float]:
    z0 = torch.tensor([1.0, -0.5], dtype=torch.float64)
    exact = z0 * math.exp(math.sin(1.0))
    errors = [
        float((solve(name, cos_field, z0, n)[0] - exact).abs().max()) for n in steps
    ]
    return errors[1], math.log(errors[0] / errors[1]) / math.log(steps[1] / steps[0])


def test_midpoint_is_second_order():
    # 1.48, 1.75, 1.88, 1.94 from (4, 8) on
    _, order = observed_order("midpoint", (32, 64))
    assert 1.85 < order < 2.2


def test_rk4_beats_midpoint_and_is_third_order_overall():
    # Fourth order on every step but the last, a midpoint step whose local error is O(h^3).
    rk4_error, order = observed_order("rk4", (16, 32))
    midpoint_error, _ = observed_order("midpoint", (16, 32))
    assert order > 2.8
    assert rk4_error < midpoint_error / 4
