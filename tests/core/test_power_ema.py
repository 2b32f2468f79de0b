"""Power-function EMA profiles and post-hoc reconstruction (gen.power_ema), against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gen.power_ema import (
    SIGMA_REL_MAX,
    EmaLength,
    equivalent_decay,
    exponent_of,
    fit_profile,
    parse_ema,
    power_beta,
    profile_dot,
    reconstructable_range,
    sigma_rel_of,
    sigma_rel_of_decay,
)
from gen.training.ema import EMA


@pytest.mark.parametrize("sigma_rel", [0.001, 0.01, 0.05, 0.1, 0.2, 0.28, SIGMA_REL_MAX])
def test_length_and_exponent_round_trip_in_float64(sigma_rel):
    gamma = exponent_of(sigma_rel)
    assert gamma >= 0
    assert sigma_rel_of(gamma) == pytest.approx(sigma_rel, rel=1e-14, abs=1e-16)


def test_edm2_lengths_have_the_published_exponents():
    # EDM2: sigma_rel 0.05 <-> gamma 16.97, 0.10 <-> 6.94 (the profile's std over t).
    assert exponent_of(0.05) == pytest.approx(16.97220, abs=1e-5)
    assert exponent_of(0.10) == pytest.approx(6.93720, abs=1e-5)
    assert exponent_of(SIGMA_REL_MAX) == 0.0  # the average of all training


def test_the_profile_has_the_length_it_is_named_by():
    # sigma_rel is the std of the normalised profile (gamma + 1) x^gamma on [0, 1], from its moments.
    for s in (0.05, 0.1, 0.2):
        g = exponent_of(s)
        mean, second = (g + 1) / (g + 2), (g + 1) / (g + 3)
        assert math.sqrt(second - mean**2) == pytest.approx(s, rel=1e-12)


def test_the_discrete_ema_is_the_profile_integrated_over_each_step():
    """Updates with beta_t = (1 - 1/t)^(gamma + 1) weigh step tau's weights by exactly
    (tau^(gamma+1) - (tau-1)^(gamma+1)) / t^(gamma+1), in float64."""
    gamma, t = exponent_of(0.1), 25
    weights = np.zeros(t)
    for step in range(1, t + 1):  # track the weight of each one-hot "parameter" at once
        beta = power_beta(step, gamma)
        weights = beta * weights
        weights[step - 1] += 1 - beta
    tau = np.arange(1, t + 1, dtype=np.float64)
    expected = (tau ** (gamma + 1) - (tau - 1) ** (gamma + 1)) / t ** (gamma + 1)
    np.testing.assert_allclose(weights, expected, rtol=1e-12, atol=1e-15)
    assert power_beta(1, gamma) == 0.0  # the first update replaces the initial weights


def test_ema_tracks_power_profiles_beside_decays():
    """gen.training.ema.EMA with a length: the closed form above, per parameter, in float64."""
    model = nn.Linear(2, 1, dtype=torch.float64)
    ema = EMA(model, (0.5,), (0.1,))
    assert ema.keys == (0.5, EmaLength(0.1))
    values = []
    for step in range(1, 13):
        with torch.no_grad():
            model.weight.copy_(torch.tensor([[step * 0.3, -(step**2) * 0.01]], dtype=torch.float64))
            model.bias.fill_(math.sin(step))
        values.append({n: p.detach().clone() for n, p in model.named_parameters()})
        ema.update(model)
    gamma, t = exponent_of(0.1), 12
    tau = np.arange(1, t + 1, dtype=np.float64)
    w = (tau ** (gamma + 1) - (tau - 1) ** (gamma + 1)) / t ** (gamma + 1)
    state = ema.state_dict(ema.index(EmaLength(0.1)), model)
    for name in ("weight", "bias"):
        expected = sum(float(w[i]) * values[i][name] for i in range(t))
        torch.testing.assert_close(state[name], expected, rtol=1e-12, atol=1e-13)
    assert ema.steps == 12


def _numeric_dot(t_a, g_a, t_b, g_b, n=400_000):
    tau = (np.arange(n) + 0.5) / n * min(t_a, t_b)  # midpoint rule
    wa = (g_a + 1) * tau**g_a / t_a ** (g_a + 1)
    wb = (g_b + 1) * tau**g_b / t_b ** (g_b + 1)
    return float(np.sum(wa * wb) * min(t_a, t_b) / n)


@pytest.mark.parametrize(
    ("t_a", "s_a", "t_b", "s_b"), [(1, 0.05, 1, 0.1), (0.4, 0.1, 1, 0.05), (3, 0.2, 2, 0.07)]
)
def test_inner_products_are_the_integrals(t_a, s_a, t_b, s_b):
    g_a, g_b = exponent_of(s_a), exponent_of(s_b)
    closed = float(profile_dot(t_a, g_a, t_b, g_b))
    assert closed == pytest.approx(_numeric_dot(t_a, g_a, t_b, g_b), rel=1e-6)
    assert closed == float(profile_dot(t_b, g_b, t_a, g_a))  # symmetric
    assert np.isfinite(profile_dot(1e-3, exponent_of(0.001), 1.0, exponent_of(0.001)))  # no overflow


def _sources(n, lengths=(0.05, 0.1), total=1000):
    return [(total * k / n, s) for k in range(1, n + 1) for s in lengths]


def test_a_stored_profile_reconstructs_itself_exactly():
    src = _sources(8)
    fit = fit_profile(src, (1000.0, 0.1))
    assert fit.error < 1e-6
    assert fit.coefficients[src.index((1000.0, 0.1))] == pytest.approx(1.0, abs=1e-9)
    assert fit.coefficients.sum() == pytest.approx(1.0, abs=1e-12)


def test_reconstruction_between_the_stored_lengths_is_smooth_and_bounded():
    """Every length between 0.05 and 0.10 is within 1% (16 snapshots) of its profile, and the error
    shrinks as snapshots are added; the coefficients always sum to 1."""
    grid = np.linspace(0.05, 0.10, 21)
    errors = {n: [fit_profile(_sources(n), (1000.0, float(s))).error for s in grid] for n in (8, 16, 32)}
    assert max(errors[16]) < 0.01 and max(errors[32]) < 0.002
    assert max(errors[32]) < max(errors[16]) < max(errors[8])
    # No jumps: neighbouring lengths have neighbouring coefficients.
    coefficients = [fit_profile(_sources(16), (1000.0, float(s))).coefficients for s in grid]
    steps = [np.abs(a - b).sum() for a, b in zip(coefficients, coefficients[1:], strict=False)]
    assert max(steps) < 0.5
    assert all(abs(c.sum() - 1) < 1e-12 for c in coefficients)


def test_lengths_far_outside_the_stored_ones_are_poor_fits():
    src = _sources(8)
    assert fit_profile(src, (1000.0, 0.01)).error > 0.5
    low, high = reconstructable_range(src, 1000.0)
    assert 0.03 < low < 0.05 and 0.1 < high < 0.2


def test_equivalent_decay_has_the_same_width():
    # An exponential EMA of decay b has std sqrt(b) / (1 - b) steps; the equivalent one matches s * t.
    for s, t in ((0.05, 3000), (0.1, 250_000), (0.2, 50)):
        b = equivalent_decay(s, t)
        assert math.sqrt(b) / (1 - b) == pytest.approx(s * t, rel=1e-9)
        assert sigma_rel_of_decay(b, t) == pytest.approx(s, rel=1e-9)
    # JiT's 0.9999 over ~250k steps (200 ImageNet epochs at batch 1024) is a length of about 0.04.
    assert sigma_rel_of_decay(0.9999, 250_000) == pytest.approx(0.04, rel=1e-3)


def test_parse_ema_and_names():
    assert parse_ema("0.9999") == 0.9999 and parse_ema(" none ") is None and parse_ema("raw") is None
    assert parse_ema("phema_0.05") == EmaLength(0.05) and str(EmaLength(0.05)) == "phema_0.05"
    for bad in ("phema_0.5", "phema_x", "nan", "abc"):
        with pytest.raises(ValueError):
            parse_ema(bad)
