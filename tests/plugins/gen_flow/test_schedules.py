"""Training-time schedules: logit-normal and uniform."""

from __future__ import annotations

import math

import pytest
import torch

import gen


def test_logit_normal_matches_its_definition():
    schedule = gen.build("schedule", "logit_normal", mean=-0.8, std=0.8)
    t = schedule.sample(5, generator=torch.Generator().manual_seed(3))
    n = torch.randn(5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(t, torch.sigmoid(-0.8 + 0.8 * n), rtol=0, atol=0)
    assert t.shape == (5,) and t.dtype == torch.float32


def test_logit_normal_moments():
    t = gen.build("schedule", "logit_normal", mean=-0.8, std=0.8).sample(
        200_000, generator=torch.Generator().manual_seed(0)
    )
    assert ((t > 0) & (t < 1)).all()
    logit = torch.log(t / (1 - t))
    assert logit.mean().item() == pytest.approx(-0.8, abs=0.01)
    assert logit.std().item() == pytest.approx(0.8, abs=0.01)


def test_uniform():
    t = gen.build("schedule", "uniform").sample(100_000, generator=torch.Generator().manual_seed(0))
    assert t.shape == (100_000,) and ((t >= 0) & (t < 1)).all()
    assert t.mean().item() == pytest.approx(0.5, abs=0.01)
    assert t.var().item() == pytest.approx(1 / 12, abs=0.002)


@pytest.mark.parametrize("name", ["logit_normal", "uniform"])
def test_same_generator_same_times(name):
    schedule = gen.build("schedule", name)
    a = schedule.sample(8, generator=torch.Generator().manual_seed(1))
    b = schedule.sample(8, generator=torch.Generator().manual_seed(1))
    c = schedule.sample(8, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert isinstance(schedule, gen.Schedule)


def test_logit_normal_rejects_nonpositive_std():
    with pytest.raises(gen.GenError):
        gen.build("schedule", "logit_normal", std=0.0)


def test_shifted_logit_normal_is_logit_normal_with_the_mean_moved_by_log_shift():
    for shift in (0.5, 2.0, 4.0):
        g = lambda: torch.Generator().manual_seed(11)  # noqa: E731
        t = gen.build("schedule", "logit_normal", mean=-0.8, std=0.8, shift=shift).sample(8, generator=g())
        moved = gen.build("schedule", "logit_normal", mean=-0.8 - math.log(shift), std=0.8).sample(
            8, generator=g()
        )
        torch.testing.assert_close(t, moved, rtol=0, atol=2e-7)  # float32 rounding of two formulas
        n = torch.randn(8, generator=g(), dtype=torch.float64)
        closed = torch.sigmoid(-0.8 + 0.8 * n - math.log(shift))
        torch.testing.assert_close(t.double(), closed, rtol=0, atol=2e-7)
    # shift = 1 is off: the very same numbers as before the option existed.
    plain = gen.build("schedule", "logit_normal", shift=1.0).sample(
        8, generator=torch.Generator().manual_seed(1)
    )
    again = torch.sigmoid(torch.randn(8, generator=torch.Generator().manual_seed(1)) * 0.8 - 0.8)
    assert torch.equal(plain, again)


def test_shifted_uniform_has_the_density_of_its_formula():
    shift = 3.0
    t = gen.build("schedule", "uniform", shift=shift).sample(
        400_000, generator=torch.Generator().manual_seed(0)
    )
    # t' = u / (u + s (1 - u)) has CDF F(x) = s x / (1 - x + s x) (invert the map at u = F(x)).
    for x in (0.1, 0.25, 0.5, 0.9):
        assert (t < x).double().mean().item() == pytest.approx(shift * x / (1 - x + shift * x), abs=3e-3)
    assert torch.equal(
        gen.build("schedule", "uniform").sample(5, generator=torch.Generator().manual_seed(2)),
        torch.rand(5, generator=torch.Generator().manual_seed(2)),
    )
