"""The mode schedule (SD3's mode sampling with heavy tails) in gen's time convention."""

from __future__ import annotations

import math

import gen
import pytest
import torch


def test_scale_zero_is_the_uniform_schedule():
    schedule = gen.build("schedule", "mode", scale=0.0)
    t = schedule.sample(1000, generator=torch.Generator().manual_seed(3))
    u = torch.rand(
        1000, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    torch.testing.assert_close(t, u.clamp(1e-5, 1 - 1e-5).float())


def test_hand_computed_times():
    # s = 1: f(u) = 1 - u - (cos^2(pi u / 2) - 1 + u); t = 1 - f(u).
    schedule = gen.build("schedule", "mode", scale=1.0)
    generator = torch.Generator().manual_seed(0)
    u = torch.rand(4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = schedule.sample(4, generator=generator)
    expected = [
        1 - (1 - x - (math.cos(math.pi * x / 2) ** 2 - 1 + x)) for x in u.tolist()
    ]
    assert t.tolist() == pytest.approx(expected, abs=1e-6)
    # u = 1/2 maps to t = 1/2 for every scale, and u = 1/4 with s = 1 to 1/2 - cos^2(pi/8) + 3/4 - 1/4.
    assert 1 - (1 - 0.25 - (math.cos(math.pi / 8) ** 2 - 0.75)) == pytest.approx(
        0.3535534, abs=1e-6
    )


def test_positive_scale_concentrates_on_intermediate_times():
    t = gen.build("schedule", "mode", scale=1.29).sample(
        20000, generator=torch.Generator().manual_seed(1)
    )
    assert t.dtype == torch.float32 and t.shape == (20000,)
    assert 0.0 < float(t.min()) and float(t.max()) < 1.0
    assert abs(float(t.mean()) - 0.5) < 0.01  # symmetric around 1/2
    assert float(t.var()) < 1 / 12 * 0.8  # less spread than uniform


def test_scale_outside_the_monotone_range_is_a_recipe_error():
    with pytest.raises(gen.RecipeError, match="scale"):
        gen.build("schedule", "mode", scale=2.0)
