"""The three parameterizations of the network output: x-, eps- and v-prediction.

Each turns the output into x̂, ε̂ and v̂ through `gen_flow.conversions`; divisions by ``1 - t``
(and by ``t``) are clamped at ``t_eps``. ``t`` is broadcastable to ``z``: a float or a (B, 1, ..., 1)
tensor. JiT's point (Li & He, 2025) is that x-prediction keeps working when a patch's dimension reaches
the network width, where eps- and v-prediction collapse.
"""

from __future__ import annotations

from torch import Tensor

from gen_flow import conversions as c

__all__ = ["XPrediction", "EpsPrediction", "VPrediction"]


class XPrediction:
    """The network predicts the clean sample x (JiT)."""

    name = "x"
    #: Its velocity is (x̂ - z) / max(1 - t, t_eps) (`gen.ClampsAtDataEnd`).
    clamps_at_data_end = True

    def to_x(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        return out

    def to_eps(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        return c.eps_from_x(out, z, t, t_eps)

    def to_v(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        return c.v_from_x(out, z, t, t_eps)

    def target(self, x: Tensor, eps: Tensor) -> Tensor:
        return x

    def __repr__(self) -> str:
        return "XPrediction()"


class EpsPrediction:
    """The network predicts the noise eps (DDPM)."""

    name = "eps"

    def to_x(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        return c.x_from_eps(out, z, t, t_eps)

    def to_eps(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        return out

    def to_v(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        return c.v_from_eps(out, z, t, t_eps)

    def target(self, x: Tensor, eps: Tensor) -> Tensor:
        return eps

    def __repr__(self) -> str:
        return "EpsPrediction()"


class VPrediction:
    """The network predicts the velocity v = x - eps (flow matching, SiT)."""

    name = "v"

    def to_x(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        return c.x_from_v(out, z, t)

    def to_eps(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        return c.eps_from_v(out, z, t)

    def to_v(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        return out

    def target(self, x: Tensor, eps: Tensor) -> Tensor:
        return c.velocity(x, eps)

    def __repr__(self) -> str:
        return "VPrediction()"
