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

from typing import TYPE_CHECKING

import gen

if TYPE_CHECKING:
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

#: Where the names of `__all__` live, imported on first use: loading the plugin (``gen --help`` loads every
#: plugin) imports no torch; the hooks import what they register when the registries are built.
_MODULE_OF: dict[str, str] = {
    "named_betas": "gen_ddpm.betas",
    "GaussianDiffusion": "gen_ddpm.diffusion",
    "DDPMConfig": "gen_ddpm.process",
    "DDPMProcess": "gen_ddpm.process",
    "respace": "gen_ddpm.respacing",
    "space_timesteps": "gen_ddpm.respacing",
    "AncestralConfig": "gen_ddpm.samplers",
    "AncestralSampler": "gen_ddpm.samplers",
    "DDIMConfig": "gen_ddpm.samplers",
    "DDIMSampler": "gen_ddpm.samplers",
    "DDPMSampler": "gen_ddpm.samplers",
}


__getattr__ = gen.lazy_getattr(__name__, _MODULE_OF)  # PEP 562: NAME imports its module on first use


@gen.hookimpl
def register_processes(register):  # noqa: ANN001, ANN201
    from gen_ddpm.process import DDPMConfig, DDPMProcess

    register(
        "ddpm",
        DDPMProcess,
        config=DDPMConfig,
        description="DiT's discrete Gaussian diffusion: integer steps, eps-prediction, learned variance "
        "(hybrid loss); samplers ddpm and ddim.",
    )


@gen.hookimpl
def register_samplers(register):  # noqa: ANN001, ANN201
    from gen_ddpm.samplers import AncestralConfig, AncestralSampler, DDIMConfig, DDIMSampler

    register(
        "ddpm",
        AncestralSampler,
        config=AncestralConfig,
        description="Ancestral sampling of the ddpm process with the model's variance "
        "(DiT's default, 250 steps).",
        process="ddpm",
    )
    register(
        "ddim",
        DDIMSampler,
        config=DDIMConfig,
        description="DDIM sampling of the ddpm process (eta = 0: deterministic), DDIM's stride spacing.",
        process="ddpm",
    )
