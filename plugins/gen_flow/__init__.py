"""gen_flow: the flow-matching parts of ``gen`` as a plugin.

Registers the prediction parameterizations (``x``, ``eps``, ``v``), the training-time schedules
(``logit_normal``, ``uniform``) and the ODE solvers (``euler``, ``heun``, ``ab2``).
"""

from __future__ import annotations

import gen
from gen_flow import solvers
from gen_flow.predictions import EpsPrediction, VPrediction, XPrediction
from gen_flow.schedules import LogitNormal, LogitNormalConfig, Uniform

__all__ = ["register_predictions", "register_schedules", "register_samplers"]


@gen.hookimpl
def register_predictions(register):  # noqa: ANN001, ANN201
    register("x", lambda config: XPrediction(), description="The network predicts the clean image x (JiT).")
    register("eps", lambda config: EpsPrediction(), description="The network predicts the noise eps.")
    register("v", lambda config: VPrediction(), description="The network predicts the velocity v = x - eps.")


@gen.hookimpl
def register_schedules(register):  # noqa: ANN001, ANN201
    register(
        "logit_normal",
        LogitNormal,
        config=LogitNormalConfig,
        description="t = sigmoid(mean + std * n), n ~ N(0, 1) (JiT: mean -0.8, std 0.8).",
    )
    register("uniform", lambda config: Uniform(), description="t ~ U(0, 1).")


@gen.hookimpl
def register_samplers(register):  # noqa: ANN001, ANN201
    register("euler", lambda config: solvers.euler, description="Euler: first order, one evaluation a step.")
    register(
        "heun",
        lambda config: solvers.heun,
        description="Heun, last step Euler (as published JiT): second order, two evaluations a step.",
    )
    register(
        "ab2",
        lambda config: solvers.ab2,
        description="Adams-Bashforth 2 (Heun start): second order, one evaluation a step.",
    )
