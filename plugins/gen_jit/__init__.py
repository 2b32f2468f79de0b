"""gen_jit: the JiT backbone ("Just image Transformers", Li & He 2025) and ``gen convert jit``.

Registers the backbone ``jit`` (presets B/L/H/G x /16 /32 and every ablation switch of the paper) and
the command ``gen convert jit CHECKPOINT OUT`` that imports published checkpoints.
"""

from __future__ import annotations

import gen
from gen_jit.config import PRESETS, JiTConfig
from gen_jit.model import JiT, build_jit

__all__ = ["PRESETS", "JiT", "JiTConfig", "build_jit"]


@gen.hookimpl
def register_backbones(register):
    register("jit", build_jit, config=JiTConfig, description="JiT: plain ViT on pixels (Li & He, 2025).")


@gen.hookimpl
def register_commands(app):
    from gen_jit.convert import add_convert_command

    add_convert_command(app)
