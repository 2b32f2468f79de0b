"""gen_flow: the flow-matching parts of ``gen`` as a plugin.

Registers the process ``flow`` (`gen_flow.process.FlowProcess`: the linear path, its loss and its
guided sampling), the prediction parameterizations (``x``, ``eps``, ``v``), the training-time schedules
(``logit_normal``, ``uniform``), the solvers of the flow (``euler``, ``heun``, ``ab2``, ``dpmpp_2m``,
``dpmpp_3m``, ``deis_pc``, ``dopri5``, ``euler_maruyama``) and the sampling time grids (``linear``,
``shifted``, ``edm``, ``list``, ``density``).
"""

from __future__ import annotations

import functools

import gen

# Each hook imports the modules (and torch) of what it registers: every `gen` command, `gen --help`
# included, imports every plugin.

__all__ = [
    "register_processes",
    "register_predictions",
    "register_schedules",
    "register_samplers",
    "register_time_grids",
]


@gen.hookimpl
def register_processes(register):  # noqa: ANN001, ANN201
    from gen_flow.process import FlowConfig, FlowProcess

    register(
        "flow",
        FlowProcess,
        config=FlowConfig,
        description="The linear path z_t = t x + (1 - t) eps (JiT, SiT); options are [objective]'s own keys.",
    )


@gen.hookimpl
def register_predictions(register):  # noqa: ANN001, ANN201
    from gen_flow.predictions import EpsPrediction, VPrediction, XPrediction

    register("x", lambda config: XPrediction(), description="The network predicts the clean image x (JiT).")
    register("eps", lambda config: EpsPrediction(), description="The network predicts the noise eps.")
    register("v", lambda config: VPrediction(), description="The network predicts the velocity v = x - eps.")


@gen.hookimpl
def register_schedules(register):  # noqa: ANN001, ANN201
    from gen_flow.schedules import LogitNormal, LogitNormalConfig, Uniform, UniformConfig

    register(
        "logit_normal",
        LogitNormal,
        config=LogitNormalConfig,
        description="t = sigmoid(mean + std * n), n ~ N(0, 1) (JiT: mean -0.8, std 0.8).",
    )
    register("uniform", Uniform, config=UniformConfig, description="t ~ U(0, 1) (optionally shifted).")


@gen.hookimpl
def register_samplers(register):  # noqa: ANN001, ANN201
    from gen_flow import solvers

    register = functools.partial(register, process="flow")  # every solver here integrates the flow
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
    register(
        "dpmpp_2m",
        lambda config: solvers.dpmpp_2m,
        description="DPM-Solver++(2M) in the data prediction: second order, one evaluation a step.",
    )
    register(
        "dpmpp_3m",
        lambda config: solvers.dpmpp_3m,
        description="DPM-Solver++(3M) in the data prediction: third order, one evaluation a step.",
    )
    from gen_flow.deis_pc import DeisPC, DeisPCConfig

    register(
        "deis_pc",
        DeisPC,
        config=DeisPCConfig,
        description="DEIS predictor with a UniC corrector in the data prediction: order 3, one evaluation a step.",
    )
    register(
        "dopri5",
        solvers.Dopri5,
        config=solvers.Dopri5Config,
        description="Dormand-Prince 5(4), adaptive steps (torchdiffeq; SiT's ODE sampler).",
    )
    register(
        "euler_maruyama",
        solvers.EulerMaruyama,
        config=solvers.EulerMaruyamaConfig,
        description="Euler-Maruyama on the SDE with the flow's marginals (SiT's SDE sampler).",
    )


@gen.hookimpl
def register_time_grids(register):  # noqa: ANN001, ANN201
    from gen_flow import grids

    register("linear", lambda config: grids.linear, description="t_i = i / N (published JiT).")
    register(
        "shifted",
        grids.ShiftedGrid,
        config=grids.ShiftedGridConfig,
        description="The SD3 / Simple Diffusion SNR shift of the linear grid: more steps at high noise.",
    )
    register(
        "edm",
        grids.EDMGrid,
        config=grids.EDMGridConfig,
        description="EDM's rho-spacing of the noise-to-signal ratio (1 - t) / t.",
    )
    register(
        "density",
        grids.DensityGrid,
        config=grids.DensityGridConfig,
        description="Steps spread by a piecewise-constant density over t (any number of steps).",
    )
    register("list", grids.ListGrid, config=grids.ListGridConfig, description="The times given as a list.")
