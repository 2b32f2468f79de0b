"""gen_meanflow: the MeanFlow family as a plugin.

Registers the process ``meanflow`` (`gen_meanflow.process.MeanFlowProcess`: MeanFlow, improved
MeanFlow and pixel MeanFlow, chosen by ``[objective.process] variant``) and its sampler ``meanflow``
(the multi-step rule of the average velocity, `gen_meanflow.sampling.mean_flow_steps`).
"""

from __future__ import annotations

import gen

# Each hook imports the modules (and torch) of what it registers: every `gen` command imports every plugin.

__all__ = ["register_processes", "register_samplers"]


@gen.hookimpl
def register_processes(register):  # noqa: ANN001, ANN201
    from gen_meanflow.config import MeanFlowConfig
    from gen_meanflow.process import MeanFlowProcess

    register(
        "meanflow",
        MeanFlowProcess,
        config=MeanFlowConfig,
        description="The average velocity over [t, t_end] by the MeanFlow identity: one-step generation "
        "(MeanFlow, improved MeanFlow, pixel MeanFlow).",
    )


@gen.hookimpl
def register_samplers(register):  # noqa: ANN001, ANN201
    from gen_meanflow.sampling import mean_flow_steps

    register(
        "meanflow",
        lambda config: mean_flow_steps,
        process="meanflow",
        description="MeanFlow's multi-step rule: z += (t' - t) U(z, t, t'), one evaluation a step.",
    )
