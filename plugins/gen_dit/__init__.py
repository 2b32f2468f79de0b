"""gen_dit: the DiT baseline backbone (Peebles & Xie, 2023), registered as backbone ``dit``.

Presets S, B, L, XL with any patch size (``"XL/2"``, ``"B/4"``), and the paper's four conditioning
designs: adaLN-Zero (default), adaLN, cross-attention and in-context; ``gen convert dit`` imports the
published checkpoints.
"""

from __future__ import annotations

import gen
from gen_dit.config import DiTConfig, parse_preset
from gen_dit.model import DiT, build_dit

__all__ = ["DiT", "DiTConfig", "build_dit", "parse_preset", "register_backbones", "register_commands"]


@gen.hookimpl
def register_backbones(register):
    register(
        "dit",
        build_dit,
        config=DiTConfig,
        description="DiT: Diffusion Transformer (Peebles & Xie, 2023), S/B/L/XL presets, four conditionings.",
    )


@gen.hookimpl
def register_commands(app):
    from gen_dit.convert import add_convert_command

    add_convert_command(app)
