"""The Gaussian diffusion's formulas in float64 against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import gen
from gen_ddpm import GaussianDiffusion, named_betas
from gen_ddpm.likelihoods import discretized_gaussian_log_likelihood, normal_kl


@pytest.fixture(scope="module")
def diffusion():
    return GaussianDiffusion(named_betas("linear", 1000))


def steps(*t):
    return torch.tensor(t, dtype=torch.long)


def test_q_sample_moments(diffusion):
    g = torch.Generator().manual_seed(0)
    n, t = 200_000, 300
    x0 = torch.full((n, 1), 0.7, dtype=torch.float64)
    noise = torch.randn(n, 1, generator=g, dtype=torch.float64)
    x_t = diffusion.q_sample(x0, torch.full((n,), t), noise)
    abar = float(diffusion.alphas_cumprod[t])
    assert x_t.dtype == torch.float64
    assert x_t.mean().item() == pytest.approx(math.sqrt(abar) * 0.7, abs=5e-3)
    assert x_t.std().item() == pytest.approx(math.sqrt(1 - abar), abs=5e-3)


def test_eps_and_x0_conversions_invert_q_sample(diffusion):
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, 3, 4, 4, 4, generator=g, dtype=torch.float64)
    t = steps(5, 900, 0)
    x_t = diffusion.q_sample(x0, t, eps)
    torch.testing.assert_close(diffusion.predict_x0(x_t, t, eps), x0, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(diffusion.predict_eps(x_t, t, x0), eps, rtol=1e-9, atol=1e-9)


def test_posterior_is_the_bayes_update(diffusion):
    """μ̃ and β̃ equal the product of q(x_{t-1} | x_0) and q(x_t | x_{t-1}), normalized."""
    b, abar = diffusion.betas.numpy(), diffusion.alphas_cumprod.numpy()
    x0, x_t = torch.tensor([[0.3]], dtype=torch.float64), torch.tensor([[-1.2]], dtype=torch.float64)
    for t in (1, 17, 500, 999):
        precision = 1 / (1 - abar[t - 1]) + (1 - b[t]) / b[t]
        var = 1 / precision
        mean = var * (math.sqrt(abar[t - 1]) * 0.3 / (1 - abar[t - 1]) + math.sqrt(1 - b[t]) * -1.2 / b[t])
        assert diffusion.posterior_variance[t].item() == pytest.approx(var, rel=1e-10)
        assert diffusion.posterior_variance[t].item() == pytest.approx(
            b[t] * (1 - abar[t - 1]) / (1 - abar[t]), rel=1e-12
        )
        got_mean, got_logvar = diffusion.q_posterior(x0, x_t, steps(t))
        assert got_mean.item() == pytest.approx(mean, rel=1e-10)
        assert got_logvar.item() == pytest.approx(math.log(var), rel=1e-10)
    # β̃_0 = 0: its log is clipped to log β̃_1.
    assert diffusion.posterior_variance[0].item() == 0
    assert diffusion.posterior_log_variance_clipped[0].item() == pytest.approx(
        math.log(diffusion.posterior_variance[1].item()), rel=1e-14
    )


def test_learned_range_interpolates_the_two_log_variances(diffusion):
    like = torch.zeros(3, 2, dtype=torch.float64)
    t = steps(0, 10, 999)
    big = torch.log(diffusion.betas[t]).unsqueeze(1).expand(3, 2)
    small = diffusion.posterior_log_variance_clipped[t].unsqueeze(1).expand(3, 2)
    torch.testing.assert_close(diffusion.log_variance(t, torch.ones_like(like), like), big)
    torch.testing.assert_close(diffusion.log_variance(t, -torch.ones_like(like), like), small)
    torch.testing.assert_close(diffusion.log_variance(t, torch.zeros_like(like), like), (big + small) / 2)


def test_fixed_variances(diffusion):
    like = torch.zeros(2, 1, dtype=torch.float64)
    b, post = diffusion.betas.numpy(), diffusion.posterior_variance.numpy()
    large = GaussianDiffusion(b, variance="fixed_large").log_variance(steps(0, 10), None, like)
    assert large[:, 0].tolist() == pytest.approx([math.log(post[1]), math.log(b[10])], rel=1e-14)
    small = GaussianDiffusion(b, variance="fixed_small").log_variance(steps(0, 10), None, like)
    assert small[:, 0].tolist() == pytest.approx([math.log(post[1]), math.log(post[10])], rel=1e-14)


def test_normal_kl():
    m, lv = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    torch.testing.assert_close(normal_kl(m, lv, m, lv), torch.zeros(5, dtype=torch.float64))
    zero = torch.zeros(1, dtype=torch.float64)
    assert normal_kl(zero, zero, zero + 1, zero).item() == pytest.approx(0.5)  # KL(N(0,1) || N(1,1))
    # KL(N(0, 1) || N(0, e^2)) = 0.5 (2 + e^-2 - 1)
    assert normal_kl(zero, zero, zero, zero + 2).item() == pytest.approx(0.5 * (1 + math.exp(-2)))


@pytest.mark.parametrize(("mean", "scale"), [(0.0, 0.3), (0.9, 0.05), (-0.2, 2.0)])
def test_discretized_likelihood_sums_to_one_over_the_bins(mean, scale):
    x = torch.arange(256, dtype=torch.float64) / 127.5 - 1  # the 256 values of uint8 data in [-1, 1]
    means = torch.full_like(x, mean)
    logp = discretized_gaussian_log_likelihood(x, means=means, log_scales=torch.full_like(x, math.log(scale)))
    assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-6)


def test_vb_trains_only_the_variance_and_mse_only_eps(diffusion):
    g = torch.Generator().manual_seed(2)
    x0, noise = torch.randn(2, 2, 3, 4, 4, generator=g)
    t = steps(0, 400)
    x_t = diffusion.q_sample(x0, t, noise)
    out = torch.randn(2, 6, 4, 4, generator=g).requires_grad_()
    terms = diffusion.training_losses(out, x0, x_t, t, noise)
    assert terms["vb"].shape == terms["mse"].shape == (2,)
    (grad_vb,) = torch.autograd.grad(terms["vb"].sum(), out, retain_graph=True)
    assert grad_vb[:, :3].abs().max() == 0 and grad_vb[:, 3:].abs().max() > 0
    (grad_mse,) = torch.autograd.grad(terms["mse"].sum(), out)
    assert grad_mse[:, 3:].abs().max() == 0 and grad_mse[:, :3].abs().max() > 0
    torch.testing.assert_close(terms["loss"], terms["mse"] + terms["vb"])


def test_fixed_variance_has_no_vb():
    d = GaussianDiffusion(named_betas("linear", 1000), variance="fixed_large")
    x0 = noise = torch.ones(2, 3, 2, 2)
    terms = d.training_losses(torch.zeros(2, 3, 2, 2), x0, x0, steps(1, 2), noise)
    assert terms["vb"].tolist() == [0.0, 0.0] and terms["loss"].tolist() == [1.0, 1.0]


def test_wrong_output_channels_say_how_to_fix(diffusion):
    with pytest.raises(gen.GenError, match="out_channels = 8"):
        diffusion.split_output(torch.zeros(1, 4, 2, 2), 4)


def test_tables_are_float64_and_cast_on_gather(diffusion):
    assert diffusion.sqrt_alphas_cumprod.dtype == torch.float64
    like = torch.zeros(2, 3, 4, 4, dtype=torch.float32)
    got = diffusion.at(diffusion.sqrt_alphas_cumprod, steps(3, 7), like)
    assert got.dtype == torch.float32 and got.shape == (2, 1, 1, 1)
    assert (
        got.flatten().tolist()
        == np.sqrt(diffusion.alphas_cumprod.numpy()[[3, 7]]).astype(np.float32).tolist()
    )
