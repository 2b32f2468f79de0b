"""Training-time schedules: logit-normal and uniform."""

from __future__ import annotations

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
