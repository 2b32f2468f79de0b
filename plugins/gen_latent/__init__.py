"""gen_latent: the space a model works in, as a plugin.

Registers the autoencoders ``identity`` (pixel space, the default) and ``sd_vae`` (the Stable Diffusion
VAE that DiT and SiT train in, through diffusers: ``pip install 'gen[latent]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gen

if TYPE_CHECKING:
    from gen_latent.identity import IdentityAutoencoder
    from gen_latent.sd_vae import SdVae, SdVaeConfig

__all__ = ["IdentityAutoencoder", "SdVae", "SdVaeConfig", "register_autoencoders"]

#: Where the names of `__all__` live, imported on first use: loading the plugin (``gen --help`` loads every
#: plugin) imports no torch; the hooks import what they register when the registries are built.
_MODULE_OF: dict[str, str] = {
    "IdentityAutoencoder": "gen_latent.identity",
    "SdVae": "gen_latent.sd_vae",
    "SdVaeConfig": "gen_latent.sd_vae",
}


__getattr__ = gen.lazy_getattr(__name__, _MODULE_OF)  # PEP 562: NAME imports its module on first use


@gen.hookimpl
def register_autoencoders(register):  # noqa: ANN001, ANN201
    from gen_latent.identity import IdentityAutoencoder
    from gen_latent.sd_vae import SdVaeConfig, build_sd_vae

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
