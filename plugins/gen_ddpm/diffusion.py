"""The discrete Gaussian diffusion of DDPM with improved DDPM's learned variance, as ADM and DiT train it.

Forward process (Ho et al., 2020): ``q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)`` for integer steps
t = 0..T−1 (t = T−1 is the noise end), ``ᾱ_t = ∏_{s≤t} (1 − β_s)``. Its posterior
``q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I)`` with ``β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)`` and
``μ̃_t = β_t √ᾱ_{t−1} / (1 − ᾱ_t) · x_0 + (1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t) · x_t``.

The network predicts ε; the reverse step's mean is μ̃_t at ``x̂_0 = √(1/ᾱ_t) x_t − √(1/ᾱ_t − 1) ε̂``. Its
variance is either learned (``learned_range``, Nichol & Dhariwal, 2021, eq. 15: the network outputs
2C channels, ε̂ then v in [−1, 1], and ``log σ² = frac · log β_t + (1 − frac) · log β̃_t`` with
``frac = (v + 1)/2``), or fixed: ``fixed_large`` (β_t, with β̃_1 at t = 0 for a better decoder
likelihood; DiT's and ADM's default without a learned variance) or ``fixed_small`` (β̃_t).

The training loss of a learned variance is improved DDPM's hybrid ``L_simple + L_vlb``: the ε-MSE plus
the variational-bound term in bits per dimension computed with the mean detached, so that only the
variance learns from it (DiT: ``LossType.MSE``, the bound not rescaled).

Every table is computed in float64 (β̃_0 = 0, so its log is clipped to log β̃_1) and gathered per
timestep, then cast to the dtype of the tensor it multiplies, as the published code does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

import gen
from gen_ddpm.likelihoods import discretized_gaussian_log_likelihood, mean_flat, normal_kl

__all__ = ["VARIANCES", "GaussianDiffusion", "ReverseStep"]

#: How the reverse step's variance is chosen.
VARIANCES: tuple[str, ...] = ("learned_range", "fixed_large", "fixed_small")

_LN2 = float(np.log(2.0))


class ReverseStep(NamedTuple):
    """The model's ``p(x_{t−1} | x_t)``: mean and log variance (B, ...), and its x̂_0 (B, ...)."""

    mean: Tensor
    log_variance: Tensor
    x0: Tensor


def _table(values: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))


class GaussianDiffusion:
    """A discrete Gaussian diffusion of T steps, given its betas.

    Args:
        betas: (T,) the betas of steps 0..T−1, each in (0, 1].
        variance: ``learned_range``, ``fixed_large`` or ``fixed_small`` (see the module docstring).
        timestep_map: (T,) the timestep the network sees at each step (a respaced diffusion keeps the
            original process's integers); default ``0..T−1``.
    """

    def __init__(
        self,
        betas: np.ndarray | Sequence[float],
        *,
        variance: str = "learned_range",
        timestep_map: Sequence[int] | None = None,
    ):
        b = np.asarray(betas, dtype=np.float64)
        if b.ndim != 1 or b.size == 0 or not ((b > 0).all() and (b <= 1).all()):
            raise ValueError("betas must be a non-empty 1-D array of values in (0, 1]")
        if variance not in VARIANCES:
            raise ValueError(f"unknown variance {variance!r}; choose one of {', '.join(VARIANCES)}")
        self.variance = variance
        self.num_timesteps = int(b.size)
        steps = range(self.num_timesteps) if timestep_map is None else timestep_map
        self.timestep_map = torch.as_tensor(list(steps), dtype=torch.long)  # (T,)
        if self.timestep_map.shape != (self.num_timesteps,):
            raise ValueError(f"timestep_map must have {self.num_timesteps} entries")

        abar = np.cumprod(1.0 - b)
        abar_prev = np.append(1.0, abar[:-1])
        post_var = b * (1.0 - abar_prev) / (1.0 - abar)  # β̃_t; β̃_0 = 0
        # log β̃_t with β̃_0 replaced by β̃_1 (a one-step process has no β̃_1: its β is used).
        post_logvar = np.log(np.append(post_var[1], post_var[1:])) if b.size > 1 else np.log(b)
        large = np.append(post_var[1], b[1:]) if b.size > 1 else b

        self.betas = _table(b)
        self.alphas_cumprod = _table(abar)
        self.alphas_cumprod_prev = _table(abar_prev)
        self.sqrt_alphas_cumprod = _table(np.sqrt(abar))
        self.sqrt_one_minus_alphas_cumprod = _table(np.sqrt(1.0 - abar))
        self.sqrt_recip_alphas_cumprod = _table(np.sqrt(1.0 / abar))
        self.sqrt_recipm1_alphas_cumprod = _table(np.sqrt(1.0 / abar - 1.0))
        self.posterior_variance = _table(post_var)
        self.posterior_log_variance_clipped = _table(post_logvar)
        self.posterior_mean_coef1 = _table(b * np.sqrt(abar_prev) / (1.0 - abar))
        self.posterior_mean_coef2 = _table((1.0 - abar_prev) * np.sqrt(1.0 - b) / (1.0 - abar))
        self.log_betas = _table(np.log(b))
        self.fixed_large_log_variance = _table(np.log(large))

    def __repr__(self) -> str:
        return f"GaussianDiffusion(num_timesteps={self.num_timesteps}, variance={self.variance!r})"

    # -- tables -------------------------------------------------------------------------------------
    @staticmethod
    def at(table: Tensor, t: Tensor, like: Tensor) -> Tensor:
        """``table[t]`` as (B, 1, ..., 1) in ``like``'s dtype and device (float64 gather, then cast).

        Args:
            table: (T,) float64 on the CPU.
            t: (B,) integer steps (any integer or float dtype holding integers).
            like: (B, ...) the tensor the values will multiply.
        """
        idx = t.long()
        if idx.device.type == "mps":  # no float64 there: gather on the CPU
            values = table[idx.cpu()].to(like.dtype).to(like.device)
        else:
            values = table.to(idx.device)[idx].to(device=like.device, dtype=like.dtype)
        return values.reshape(-1, *([1] * (like.ndim - 1)))

    # -- the forward process and its posterior --------------------------------------------------------
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) noise. x0, noise: (B, ...); t: (B,) integer steps."""
        return (
            self.at(self.sqrt_alphas_cumprod, t, x0) * x0
            + self.at(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise
        )

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean μ̃_t (B, ...) and clipped log variance log β̃_t (B, 1, ..., 1) of q(x_{t−1} | x_t, x_0)."""
        mean = (
            self.at(self.posterior_mean_coef1, t, x_t) * x0 + self.at(self.posterior_mean_coef2, t, x_t) * x_t
        )
        return mean, self.at(self.posterior_log_variance_clipped, t, x_t)

    def predict_x0(self, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """x̂_0 = √(1/ᾱ_t) x_t − √(1/ᾱ_t − 1) ε. (B, ...)."""
        return (
            self.at(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t
            - self.at(self.sqrt_recipm1_alphas_cumprod, t, x_t) * eps
        )

    def predict_eps(self, x_t: Tensor, t: Tensor, x0: Tensor) -> Tensor:
        """ε = (√(1/ᾱ_t) x_t − x̂_0) / √(1/ᾱ_t − 1). (B, ...)."""
        return (self.at(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t - x0) / self.at(
            self.sqrt_recipm1_alphas_cumprod, t, x_t
        )

    # -- the model's reverse step -----------------------------------------------------------------------
    def split_output(self, out: Tensor, channels: int) -> tuple[Tensor, Tensor | None]:
        """The network output (B, 2C, ...) -> ε̂ (B, C, ...) and v (B, C, ...); (B, C, ...) -> (ε̂, None)
        for a fixed variance. Raises `gen.GenError` when the channels do not match."""
        expected = 2 * channels if self.variance == "learned_range" else channels
        if out.ndim < 2 or out.shape[1] != expected:
            fix = (
                f"set backbone.out_channels = {expected} (ε and the variance), or "
                "objective.process.learn_sigma = false"
                if self.variance == "learned_range"
                else f"set backbone.out_channels = {expected}, or objective.process.learn_sigma = true"
            )
            raise gen.GenError(
                f"the ddpm process needs {expected} output channels from the backbone for {channels} input "
                f"channels, got output of shape {tuple(out.shape)}; {fix}"
            )
        if self.variance != "learned_range":
            return out, None
        eps, var_values = out.split(channels, dim=1)
        return eps, var_values

    def log_variance(self, t: Tensor, var_values: Tensor | None, like: Tensor) -> Tensor:
        """log σ²_t of the reverse step: learned (``var_values`` (B, C, ...) in [−1, 1]) or fixed."""
        if self.variance == "learned_range":
            if var_values is None:
                raise ValueError("a learned variance needs the network's variance channels")
            frac = (var_values + 1) / 2
            max_log = self.at(self.log_betas, t, like)
            min_log = self.at(self.posterior_log_variance_clipped, t, like)
            return frac * max_log + (1 - frac) * min_log
        table = (
            self.fixed_large_log_variance
            if self.variance == "fixed_large"
            else self.posterior_log_variance_clipped
        )
        return self.at(table, t, like).expand_as(like)

    def p_mean_variance(
        self, eps: Tensor, var_values: Tensor | None, x_t: Tensor, t: Tensor, *, clip_denoised: bool = False
    ) -> ReverseStep:
        """The model's ``p(x_{t−1} | x_t)`` from its ε̂ (B, C, ...) and variance values at (x_t, t).

        ``clip_denoised`` clamps x̂_0 to [−1, 1] before the posterior mean (DiT samples without it).
        """
        x0 = self.predict_x0(x_t, t, eps)
        if clip_denoised:
            x0 = x0.clamp(-1, 1)
        mean, _ = self.q_posterior(x0, x_t, t)
        return ReverseStep(mean, self.log_variance(t, var_values, x_t), x0)

    # -- the training loss -----------------------------------------------------------------------------
    def vb_terms_bpd(
        self, x0: Tensor, x_t: Tensor, t: Tensor, eps: Tensor, var_values: Tensor | None
    ) -> Tensor:
        """The variational-bound term at t in bits per dimension, (B,).

        KL(q(x_{t−1} | x_t, x_0) ‖ p(x_{t−1} | x_t)) for t > 0, the decoder NLL −log p(x_0 | x_1) at t = 0,
        each averaged over the non-batch dims. Pass ``eps`` detached to let only the variance learn.
        """
        true_mean, true_log_var = self.q_posterior(x0, x_t, t)
        step = self.p_mean_variance(eps, var_values, x_t, t, clip_denoised=False)
        kl = mean_flat(normal_kl(true_mean, true_log_var, step.mean, step.log_variance)) / _LN2
        nll = -discretized_gaussian_log_likelihood(x0, means=step.mean, log_scales=0.5 * step.log_variance)
        return torch.where(t.to(kl.device) == 0, mean_flat(nll) / _LN2, kl)

    def training_losses(
        self, out: Tensor, x0: Tensor, x_t: Tensor, t: Tensor, noise: Tensor
    ) -> dict[str, Tensor]:
        """The per-sample hybrid loss of the network output ``out`` at (x_t, t), each (B,).

        Args:
            out: (B, 2C, ...) ε̂ then v (``learned_range``) or (B, C, ...) ε̂ (a fixed variance).
            x0: (B, C, ...) clean data; x_t: (B, C, ...) its noised version; noise: (B, C, ...) the ε used.
            t: (B,) integer steps.

        Returns:
            ``mse`` (mean over non-batch dims of (ε̂ − ε)²), ``vb`` (bits per dim, mean detached; 0 for a
            fixed variance) and ``loss = mse + vb``; all (B,), with grad.
        """
        eps, var_values = self.split_output(out, x0.shape[1])
        mse = mean_flat((noise - eps) ** 2)
        if var_values is None:
            vb = torch.zeros_like(mse)
        else:
            vb = self.vb_terms_bpd(x0, x_t, t, eps.detach(), var_values)
        return {"mse": mse, "vb": vb, "loss": mse + vb}
