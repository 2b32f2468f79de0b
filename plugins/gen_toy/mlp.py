"""``mlp``: the paper's toy network (JiT Figure 2), a 5-layer ReLU MLP of width 256 on D-dim vectors.

``depth`` linear layers: ``input_dim + 1 -> hidden``, ``depth - 2`` times ``hidden -> hidden`` and
``hidden -> input_dim``, with a ReLU after each but the last. The paper specifies the depth, the width
and the ReLUs but not how the time enters; here ``t`` is concatenated to ``z`` as one extra input
feature, the simplest choice (an additive sinusoidal embedding per layer trained more slowly on the
spiral in our runs). Nothing is wider than ``hidden``, so with ``input_dim = 512 > hidden = 256`` this
is the paper's "under-capacity" network: it can output points of a low-dimensional data plane
(x-prediction) but not full-dimensional noise (ε- or v-prediction).
"""

from __future__ import annotations

import attrs
import torch
from attrs import validators as v
from torch import Tensor, nn

import gen


@attrs.frozen(kw_only=True)
class MLPConfig:
    """A ReLU MLP on vectors, time concatenated to the input (JiT's toy network)."""

    input_dim: int = gen.field(2, doc="Dimension D of the vectors (filled from the data).", validator=v.ge(1))
    hidden: int = gen.field(256, doc="Width of every hidden layer.", validator=v.ge(1))
    depth: int = gen.field(
        5, doc="Number of linear layers, input and output included (>= 2).", validator=v.ge(2)
    )
    num_classes: int = gen.field(
        0,
        doc="Classes of the data (filled from the data); unused, the toy model is unconditional.",
        validator=v.ge(0),
    )


class MLP(nn.Module):
    """The toy denoiser ``forward(z, t, y) -> out``: z and out (B, D), t (B,) in [0, 1], y ignored."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        widths = [config.input_dim + 1] + [config.hidden] * (config.depth - 1) + [config.input_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))

    def forward(self, z: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """Args: z (B, D) the point on the path, t (B,) its time, y (B,) class ids (unused). -> (B, D)."""
        if z.ndim != 2 or z.shape[1] != self.config.input_dim:
            raise ValueError(f"mlp expects z of shape (B, {self.config.input_dim}), got {tuple(z.shape)}")
        t = t.reshape(-1, 1).to(z.dtype).expand(z.shape[0], 1)  # (B, 1); a 0-dim t broadcasts
        h = torch.cat([z, t], dim=1)  # (B, D + 1)
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))  # (B, hidden)
        return self.layers[-1](h)  # (B, D)


def build_mlp(config: MLPConfig) -> MLP:
    """Toy experiment: a 5-layer ReLU MLP of width 256 on D-dim vectors (JiT Figure 2)."""
    return MLP(config)
