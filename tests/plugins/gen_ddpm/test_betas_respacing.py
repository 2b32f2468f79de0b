"""Beta schedules and respacing against hand-computed values and ADM's documented examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gen_ddpm import GaussianDiffusion, named_betas, respace, space_timesteps


def hand_alpha_bar(t: int, beta_start: float = 1e-4, beta_end: float = 0.02, T: int = 1000) -> float:
    """ᾱ_t = ∏_{s<=t} (1 - β_s) of the 1000-step linear schedule, one factor at a time."""
    prod = 1.0
    for s in range(t + 1):
        prod *= 1.0 - (beta_start + s * (beta_end - beta_start) / (T - 1))
    return prod


def test_linear_schedule_ends_and_alpha_bar():
    betas = named_betas("linear", 1000)
    assert betas.dtype == np.float64 and betas.shape == (1000,)
    assert betas[0] == pytest.approx(1e-4, abs=1e-18) and betas[-1] == pytest.approx(0.02, abs=1e-17)
    abar = GaussianDiffusion(betas).alphas_cumprod.numpy()
    for t in (0, 1, 250, 499, 999):
        assert abar[t] == pytest.approx(hand_alpha_bar(t), rel=1e-12)
    assert abar[0] == pytest.approx(1 - 1e-4, rel=1e-15)
    assert abar[-1] == pytest.approx(4.036e-5, rel=1e-3)  # DDPM's linear schedule ends near 4e-5


def test_linear_schedule_is_scaled_by_1000_over_T():
    betas = named_betas("linear", 250)
    assert betas[0] == pytest.approx(4e-4) and betas[-1] == pytest.approx(0.08)
    assert named_betas("linear", 100, beta_start=2e-4, beta_end=0.01)[-1] == pytest.approx(0.1)


def test_cosine_schedule_follows_its_alpha_bar_and_caps_beta():
    T = 1000
    betas = named_betas("cosine", T)
    assert betas.max() == pytest.approx(0.999) and betas[-1] == pytest.approx(0.999)
    abar = GaussianDiffusion(betas).alphas_cumprod.numpy()

    def f(s):
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    for t in (0, 100, 499, 900):
        assert abar[t] == pytest.approx(f((t + 1) / T) / f(0), rel=1e-10)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="linear, cosine"):
        named_betas("quad", 10)


def test_ddim_stride_spacing():
    assert space_timesteps(1000, "ddim8") == list(range(0, 1000, 125))
    assert space_timesteps(1000, "ddim50") == list(range(0, 1000, 20))
    assert space_timesteps(1000, "ddim1") == [0]
    with pytest.raises(ValueError, match="integer stride"):
        space_timesteps(1000, "ddim300")


def test_even_section_spacing_as_adm():
    steps = space_timesteps(1000, "250")  # DiT's default sampling
    assert len(steps) == 250 and steps[0] == 0 and steps[-1] == 999 and steps[1] == 4
    assert space_timesteps(1000, "10") == list(range(0, 1000, 111))
    # ADM's docstring example: 300 steps in sections of 10, 15, 20.
    steps = space_timesteps(300, [10, 15, 20])
    assert len(steps) == 45 and steps[:10] == list(range(0, 100, 11))
    # Uneven sections: sizes 4, 3, 3; stride 1.5 in the first with Python's round (1.5 -> 2).
    assert space_timesteps(10, "3,3,3") == [0, 2, 3, 4, 5, 6, 7, 8, 9]
    assert space_timesteps(1000, "1000") == list(range(1000))
    with pytest.raises(ValueError, match="cannot divide"):
        space_timesteps(1000, "2000")


def test_respaced_diffusion_keeps_the_marginals_and_timesteps():
    base = GaussianDiffusion(named_betas("linear", 1000))
    keep = space_timesteps(1000, "ddim8")
    spaced = respace(base, keep)
    assert spaced.num_timesteps == 8 and spaced.timestep_map.tolist() == keep
    np.testing.assert_allclose(spaced.alphas_cumprod.numpy(), base.alphas_cumprod.numpy()[keep], rtol=1e-13)
    assert spaced.variance == base.variance
    full = respace(base, range(1000))
    np.testing.assert_allclose(full.betas.numpy(), base.betas.numpy(), rtol=1e-12)
