"""gen_toy: the paper's toy experiment (JiT Figure 2) as a plugin.

Registers the backbone ``mlp`` (a 5-layer ReLU MLP of width 256 on vectors) and the command
``gen toy run``, which trains one model per (prediction, dimension) cell on the ``manifold`` dataset (a
2-D spiral embedded in D dimensions) and draws the grid of their samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gen

if TYPE_CHECKING:
    from gen_toy.mlp import MLP, MLPConfig, build_mlp

__all__ = ["MLP", "MLPConfig", "build_mlp"]

#: Where the names of `__all__` live, imported on first use: loading the plugin (``gen --help`` loads every
#: plugin) imports no torch; the hooks import what they register when the registries are built.
_MODULE_OF: dict[str, str] = {
    "MLP": "gen_toy.mlp",
    "MLPConfig": "gen_toy.mlp",
    "build_mlp": "gen_toy.mlp",
}


__getattr__ = gen.lazy_getattr(__name__, _MODULE_OF)  # PEP 562: NAME imports its module on first use


@gen.hookimpl
def register_backbones(register):  # noqa: ANN001, ANN201
    from gen_toy.mlp import MLPConfig, build_mlp

    register(
        "mlp",
        build_mlp,
        config=MLPConfig,
        description="Toy ReLU MLP on D-dim vectors, t concatenated to the input (JiT Figure 2).",
    )


@gen.hookimpl
def register_commands(app):  # noqa: ANN001, ANN201
    from gen_toy.command import toy_app

    app.add_typer(toy_app, name="toy")
