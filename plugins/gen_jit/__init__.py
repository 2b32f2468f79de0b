"""gen_jit: the JiT backbone ("Just image Transformers", Li & He 2025) and ``gen convert jit``.

Registers the backbone ``jit`` (presets B/L/H/G x /16 /32 and every ablation switch of the paper) and
the command ``gen convert jit CHECKPOINT OUT`` that imports published checkpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gen

if TYPE_CHECKING:
    from gen_jit.config import PRESETS, JiTConfig
    from gen_jit.model import JiT, build_jit

__all__ = ["PRESETS", "JiT", "JiTConfig", "build_jit"]

#: Where the names of `__all__` live, imported on first use: loading the plugin (``gen --help`` loads every
#: plugin) imports no torch; the hooks import what they register when the registries are built.
_MODULE_OF: dict[str, str] = {
    "PRESETS": "gen_jit.config",
    "JiTConfig": "gen_jit.config",
    "JiT": "gen_jit.model",
    "build_jit": "gen_jit.model",
}


__getattr__ = gen.lazy_getattr(__name__, _MODULE_OF)  # PEP 562: NAME imports its module on first use


@gen.hookimpl
def register_backbones(register):
    from gen_jit.config import JiTConfig
    from gen_jit.model import build_jit

    register("jit", build_jit, config=JiTConfig, description="JiT: plain ViT on pixels (Li & He, 2025).")


@gen.hookimpl
def register_commands(app):
    from gen_jit.convert import add_convert_command

    add_convert_command(app)
