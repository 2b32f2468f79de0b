"""The plain conversions of gen_flow.conversions: float64 round trips, the truth, and the clamp."""

from __future__ import annotations

import pytest
import torch

from gen_flow import conversions as c

T_EPS = 0.05


@pytest.fixture
def path():
    """x, eps (B, C, H, W), t (B, 1, 1, 1) away from the clamp, and z on the path; float64."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(5, 3, 4, 4, generator=g, dtype=torch.float64)
    t = torch.tensor([0.06, 0.2, 0.5, 0.8, 0.94], dtype=torch.float64).view(-1, 1, 1, 1)
    return x, eps, t, c.interpolate(x, eps, t)


def test_interpolate_and_velocity_by_hand():
    x, eps = torch.tensor([2.0]), torch.tensor([-1.0])
    assert c.interpolate(x, eps, 0.25).item() == pytest.approx(0.25 * 2 + 0.75 * -1)
    assert c.interpolate(x, eps, 0.0).item() == -1.0  # t = 0 is noise
    assert c.interpolate(x, eps, 1.0).item() == 2.0  # t = 1 is data
    assert c.velocity(x, eps).item() == 3.0


def test_velocity_is_the_time_derivative(path):
    x, eps, t, _ = path
    h = 1e-6
    fd = (c.interpolate(x, eps, t + h) - c.interpolate(x, eps, t - h)) / (2 * h)
    torch.testing.assert_close(fd, c.velocity(x, eps), rtol=0, atol=1e-8)


def test_conversions_recover_the_truth(path):
    x, eps, t, z = path
    v = c.velocity(x, eps)
    for got, want in [
        (c.x_from_eps(eps, z, t, T_EPS), x),
        (c.x_from_v(v, z, t), x),
        (c.eps_from_x(x, z, t, T_EPS), eps),
        (c.eps_from_v(v, z, t), eps),
        (c.v_from_x(x, z, t, T_EPS), v),
        (c.v_from_eps(eps, z, t, T_EPS), v),
    ]:
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_round_trips_float64(path):
    # Any tensor (not only the truth) survives a round trip through another space at the same (z, t).
    x, eps, t, z = path
    a = torch.randn(z.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    pairs = [
        (lambda q: c.eps_from_x(q, z, t, T_EPS), lambda q: c.x_from_eps(q, z, t, T_EPS)),
        (lambda q: c.v_from_x(q, z, t, T_EPS), lambda q: c.x_from_v(q, z, t)),
        (lambda q: c.x_from_eps(q, z, t, T_EPS), lambda q: c.eps_from_x(q, z, t, T_EPS)),
        (lambda q: c.v_from_eps(q, z, t, T_EPS), lambda q: c.eps_from_v(q, z, t)),
        (lambda q: c.x_from_v(q, z, t), lambda q: c.v_from_x(q, z, t, T_EPS)),
        (lambda q: c.eps_from_v(q, z, t), lambda q: c.v_from_eps(q, z, t, T_EPS)),
    ]
    for there, back in pairs:
        torch.testing.assert_close(back(there(a)), a, rtol=0, atol=1e-12)


def test_divisions_are_clamped_at_t_eps():
    x, z = torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    # 1 - t = 0.01 < t_eps: divide by t_eps, as published JiT does.
    assert c.v_from_x(x, z, 0.99, T_EPS).item() == pytest.approx((1.0 - 0.5) / T_EPS)
    assert c.v_from_x(x, z, torch.tensor(1.0, dtype=torch.float64), T_EPS).item() == pytest.approx(10.0)
    assert c.eps_from_x(x, z, 1.0, T_EPS).item() == pytest.approx((0.5 - 1.0) / T_EPS)
    # t = 0.01 < t_eps for the divisions by t.
    assert c.x_from_eps(x, z, 0.01, T_EPS).item() == pytest.approx((0.5 - 0.99 * 1.0) / T_EPS)
    assert c.v_from_eps(x, z, 0.0, T_EPS).item() == pytest.approx((0.5 - 1.0) / T_EPS)
    # Above the clamp the plain division applies.
    assert c.v_from_x(x, z, 0.5, T_EPS).item() == pytest.approx(1.0)
