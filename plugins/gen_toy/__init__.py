"""gen_toy: the paper's toy experiment (JiT Figure 2) as a plugin.

Registers the backbone ``mlp`` (a 5-layer ReLU MLP of width 256 on vectors) and the command
``gen toy run``, which trains one model per (prediction, dimension) cell on the ``manifold`` dataset (a
2-D spiral embedded in D dimensions) and draws the grid of their samples.
"""

from __future__ import annotations

import gen
from gen_toy.mlp import MLP, MLPConfig, build_mlp

__all__ = ["MLP", "MLPConfig", "build_mlp"]


@gen.hookimpl
def register_backbones(register):  # noqa: ANN001, ANN201
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
