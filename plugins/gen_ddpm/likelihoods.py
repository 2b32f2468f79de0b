"""The Gaussian terms of the variational bound (Ho et al., 2020, eq. 5; Nichol & Dhariwal, 2021).

- `normal_kl`: KL(N(μ₁, e^{l₁}) ‖ N(μ₂, e^{l₂})) elementwise, in nats;
- `discretized_gaussian_log_likelihood`: the decoder ``log p(x₀ | x₁)`` of a Gaussian integrated
  over the bin of width 2/255 around each value of data in [-1, 1] (uint8 images rescaled), with open
  bins at the two ends, in nats. The normal CDF is the tanh approximation the published code uses
  (Page, 1977), so that the numbers agree with it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["approx_standard_normal_cdf", "discretized_gaussian_log_likelihood", "mean_flat", "normal_kl"]

#: Half the width of one of the 256 bins of data in [-1, 1].
HALF_BIN = 1.0 / 255.0


def mean_flat(x: Tensor) -> Tensor:
    """(B, ...) -> (B,): the mean over every dim but the batch dim."""
    return x.reshape(x.shape[0], -1).mean(1)


def normal_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor) -> Tensor:
    """KL divergence between two diagonal Gaussians, elementwise (broadcast), in nats.

    ``0.5 · (−1 + l₂ − l₁ + e^{l₁ − l₂} + (μ₁ − μ₂)² e^{−l₂})``.
    """
    return 0.5 * (
        -1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def approx_standard_normal_cdf(x: Tensor) -> Tensor:
    """Φ(x) ≈ ½ (1 + tanh(√(2/π) (x + 0.044715 x³)))."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def discretized_gaussian_log_likelihood(x: Tensor, *, means: Tensor, log_scales: Tensor) -> Tensor:
    """Log-probability of the bins of ``x`` under N(means, exp(log_scales)²), elementwise, in nats.

    Args:
        x: (B, ...) data in [-1, 1] (the bin of value v is [v − 1/255, v + 1/255]; below −0.999 the bin is
            open to −∞, above 0.999 open to +∞).
        means: (B, ...) Gaussian means.
        log_scales: (B, ...) log standard deviations.

    Returns:
        (B, ...) log-probabilities (each at least log 1e-12).
    """
    centered = x - means
    inv_std = torch.exp(-log_scales)
    cdf_plus = approx_standard_normal_cdf(inv_std * (centered + HALF_BIN))
    cdf_min = approx_standard_normal_cdf(inv_std * (centered - HALF_BIN))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))
