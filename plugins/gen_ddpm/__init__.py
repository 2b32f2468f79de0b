"""gen_ddpm: DiT's discrete Gaussian diffusion (DDPM with improved DDPM's learned variance) as a plugin.

Registers the process ``ddpm`` (`DDPMProcess`: the training loss and sampling of DiT's published
``diffusion`` package) and its two samplers, ``ddpm`` (ancestral; DiT's default with 250 steps) and
``ddim`` (eta option). A recipe::

    [objective]
    prediction = "eps"
    loss = "eps"
    process = { name = "ddpm", learn_sigma = true }

    [sample]
    sampler = "ddpm"
    steps = 250
    cfg = 1.5
"""

from __future__ import annotations

import gen
from gen_ddpm.betas import named_betas
from gen_ddpm.diffusion import GaussianDiffusion
from gen_ddpm.process import DDPMConfig, DDPMProcess
from gen_ddpm.respacing import respace, space_timesteps
from gen_ddpm.samplers import AncestralConfig, AncestralSampler, DDIMConfig, DDIMSampler, DDPMSampler

__all__ = [
    "AncestralConfig",
    "AncestralSampler",
    "DDIMConfig",
    "DDIMSampler",
    "DDPMConfig",
    "DDPMProcess",
    "DDPMSampler",
    "GaussianDiffusion",
    "named_betas",
    "register_processes",
    "register_samplers",
    "respace",
    "space_timesteps",
]


@gen.hookimpl
def register_processes(register):  # noqa: ANN001, ANN201
    register(
        "ddpm",
        DDPMProcess,
        config=DDPMConfig,
        description="DiT's discrete Gaussian diffusion: integer steps, eps-prediction, learned variance "
        "(hybrid loss); samplers ddpm and ddim.",
    )


@gen.hookimpl
def register_samplers(register):  # noqa: ANN001, ANN201
    register(
        "ddpm",
        AncestralSampler,
        config=AncestralConfig,
        description="Ancestral sampling of the ddpm process with the model's variance "
        "(DiT's default, 250 steps).",
    )
    register(
        "ddim",
        DDIMSampler,
        config=DDIMConfig,
        description="DDIM sampling of the ddpm process (eta = 0: deterministic), DDIM's stride spacing.",
    )
