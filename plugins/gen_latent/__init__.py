"""gen_latent: the space a model works in, as a plugin.

Registers the autoencoders ``identity`` (pixel space, the default) and ``sd_vae`` (the Stable Diffusion
VAE that DiT and SiT train in, through diffusers: ``pip install 'gen[latent]'``).
"""

from __future__ import annotations

import gen
from gen_latent.identity import IdentityAutoencoder
from gen_latent.sd_vae import SdVae, SdVaeConfig, build_sd_vae

__all__ = ["IdentityAutoencoder", "SdVae", "SdVaeConfig", "register_autoencoders"]


@gen.hookimpl
def register_autoencoders(register):  # noqa: ANN001, ANN201
    register(
        "identity",
        lambda config: IdentityAutoencoder(),
        description="Pixel space: the model sees the images themselves (JiT).",
    )
    register(
        "sd_vae",
        build_sd_vae,
        config=SdVaeConfig,
        description="The Stable Diffusion VAE (sd-vae-ft-ema/-mse) of DiT and SiT, through diffusers.",
    )
