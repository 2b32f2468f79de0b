"""``vp_ddim``: DDIM (Song et al., 2021) on the vp_cosine path, over any chain of times.

One step from time t to a later time t' (nearer the data), with (x_hat, eps_hat) the
denoised sample and noise at (z, t) and a = alpha, s = sigma:

    z' = a' x_hat + sqrt(s'^2 - r^2) eps_hat + r xi,   r = eta (s'/s) sqrt(1 - a^2/a'^2)

eta = 0 is deterministic DDIM, a first-order solver of the probability-flow ODE; eta = 1
is ancestral sampling (DDPM's posterior variance); xi ~ N(0, I) of sample i comes from a
generator keyed by its start noise (`gen.per_sample_generators`), so a sample does not
depend on the batch it is drawn in. The last step, to t' = 1, returns x_hat.

It is not a callable ODE solver of the flow: the sampler registry marks it
``process = "vp_cosine"``, and a flow model refuses it by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import gen
import torch
from attrs import validators as v
from torch import Tensor

from gen_vp.path import alpha_sigma

#: ``denoise(z, t) -> (x_hat, eps_hat)`` at the chain's time t (a float).
Denoiser = Callable[[Tensor, float], tuple[Tensor, Tensor]]


@attrs.frozen(kw_only=True)
class VPDDIMConfig:
    """Options of the ``vp_ddim`` sampler."""

    eta: float = gen.field(
        0.0,
        doc="Noise of each step: 0 = deterministic DDIM, 1 = ancestral (DDPM).",
        validator=[v.ge(0), v.le(1)],
    )


# --8<-- [start:ddim]
class VPDDIM:
    """DDIM on the vp_cosine path (the ``vp_ddim`` sampler).

    Attributes:
        process: The process it samples; the core refuses it for any other.
    """

    process = "vp_cosine"

    def __init__(self, config: VPDDIMConfig):
        self.config = config

    def run(
        self,
        denoise: Denoiser,
        noise: Tensor,
        times: Tensor,
        *,
        on_step: Callable[[int, int], None] | None = None,
    ) -> Tensor:
        """The chain from ``noise`` (B, ...) at ``times[0]`` to ``times[-1]`` = 1.

        ``times``: (N + 1,) increasing chain times; N evaluations of ``denoise``.
        """
        eta = self.config.eta
        gens = gen.per_sample_generators(noise) if eta > 0 else None
        counter = None if on_step is None else gen.StepCounter(times, on_step)
        z = noise
        for i in range(len(times) - 1):
            t, t_next = float(times[i]), float(times[i + 1])
            (a, s), (a_next, s_next) = alpha_sigma(t), alpha_sigma(t_next)
            x_hat, eps_hat = denoise(z, t)
            r = eta * (s_next / s) * math.sqrt(max(0.0, 1 - (a / a_next) ** 2))
            if t_next == 1.0:
                z = x_hat  # alpha(1) = 1, sigma(1) = 0: the data
            else:
                z = a_next * x_hat + math.sqrt(max(0.0, s_next**2 - r**2)) * eps_hat
                if r > 0:
                    z = z + r * step_noise(gens, z)
            if counter is not None:
                counter.advance(i + 1)
        return z


# --8<-- [end:ddim]


def step_noise(gens: list[torch.Generator], like: Tensor) -> Tensor:
    """(B, ...) standard normal noise like ``like``, row i from ``gens[i]`` (CPU)."""
    rows = [torch.randn(like.shape[1:], generator=g, dtype=torch.float32) for g in gens]
    return torch.stack(rows).to(device=like.device, dtype=like.dtype)


def build_vp_ddim(config: VPDDIMConfig) -> VPDDIM:
    """DDIM on the vp_cosine path (eta = 0: deterministic; eta = 1: ancestral)."""
    return VPDDIM(config)
