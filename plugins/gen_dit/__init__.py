"""gen_dit: the DiT baseline backbone (Peebles & Xie, 2023), registered as backbone ``dit``.

Presets S, B, L, XL with any patch size (``"XL/2"``, ``"B/4"``), and the paper's four conditioning
designs: adaLN-Zero (default), adaLN, cross-attention and in-context; ``gen convert dit`` imports the
published checkpoints, and ``gen export RUN OUT --format diffusers`` writes a DiT as a diffusers
``DiTPipeline`` folder (`gen_dit.diffusers_export`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gen

if TYPE_CHECKING:
    from gen_dit.config import DiTConfig, parse_preset
    from gen_dit.model import DiT, build_dit

__all__ = [
    "DiT",
    "DiTConfig",
    "build_dit",
    "parse_preset",
    "register_backbones",
    "register_commands",
    "register_exporters",
]

#: Where the names of `__all__` live, imported on first use: loading the plugin (``gen --help`` loads every
#: plugin) imports no torch; the hooks import what they register when the registries are built.
_MODULE_OF: dict[str, str] = {
    "DiTConfig": "gen_dit.config",
    "parse_preset": "gen_dit.config",
    "DiT": "gen_dit.model",
    "build_dit": "gen_dit.model",
}


__getattr__ = gen.lazy_getattr(__name__, _MODULE_OF)  # PEP 562: NAME imports its module on first use


@gen.hookimpl
def register_backbones(register):
    from gen_dit.config import DiTConfig
    from gen_dit.model import build_dit

    register(
        "dit",
        build_dit,
        config=DiTConfig,
        description="DiT: Diffusion Transformer (Peebles & Xie, 2023), S/B/L/XL presets, four conditionings.",
    )


@gen.hookimpl
def register_exporters(register):
    from gen_dit.diffusers_export import build_exporter

    register("diffusers", build_exporter)


@gen.hookimpl
def register_commands(app):
    from gen_dit.convert import add_convert_command

    add_convert_command(app)
