"""The variance-preserving cosine path and the conversions of the network's output.

In gen's time (t = 0 noise, t = 1 data) the cosine schedule of Nichol & Dhariwal (2021),
in continuous time as Simple Diffusion (Hoogeboom et al., 2023) uses it, is

    alpha(t) = sin(pi t / 2),  sigma(t) = cos(pi t / 2),  z_t = alpha x + sigma eps,

so alpha^2 + sigma^2 = 1 (variance preserving for unit-variance data). The network
predicts either the noise eps or the velocity v = alpha eps - sigma x (Salimans & Ho,
2022); both give the clean sample and the noise at (z, t):

    eps:  eps_hat = out,                 x_hat = (z - sigma eps_hat) / alpha
    v:    eps_hat = sigma z + alpha out, x_hat = alpha z - sigma out

eps-prediction divides by alpha, which is 0 at t = 0; v-prediction divides by nothing.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: What the network can predict.
PREDICTIONS: tuple[str, ...] = ("eps", "v")


# --8<-- [start:path]
def alpha_sigma(t: Tensor | float) -> tuple[Tensor, Tensor] | tuple[float, float]:
    """(alpha(t), sigma(t)) = (sin(pi t / 2), cos(pi t / 2)), floats for a float t."""
    if isinstance(t, Tensor):
        return torch.sin(t * (math.pi / 2)), torch.cos(t * (math.pi / 2))
    return math.sin(t * math.pi / 2), math.cos(t * math.pi / 2)


def target(prediction: str, x: Tensor, eps: Tensor, alpha, sigma) -> Tensor:
    """What a perfect network outputs: eps, or v = alpha eps - sigma x."""
    return eps if prediction == "eps" else alpha * eps - sigma * x


def to_x_eps(prediction: str, out: Tensor, z: Tensor, alpha, sigma):
    """(x_hat, eps_hat) from the network's output ``out`` at z = alpha x + sigma eps."""
    if prediction == "eps":
        return (z - sigma * out) / alpha, out
    return alpha * z - sigma * out, sigma * z + alpha * out


# --8<-- [end:path]
