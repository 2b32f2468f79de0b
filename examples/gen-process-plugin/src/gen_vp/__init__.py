"""gen_vp: a third-party process for ``gen``, packaged on its own.

It registers the process ``vp_cosine`` (the variance-preserving cosine path, eps- or
v-prediction) and its sampler ``vp_ddim`` (DDIM, deterministic or with eta), through
the entry point ``gen_vp = "gen_vp"`` in the group ``gen``, with only the public ``gen``
API.

Every ``gen`` command imports every plugin: this module imports only ``gen``, and each
hook imports what it registers (and torch).
"""

from __future__ import annotations

import gen


# --8<-- [start:hooks]
@gen.hookimpl
def register_processes(register):
    from gen_vp.process import VPCosineConfig, build_vp_cosine

    register("vp_cosine", build_vp_cosine, config=VPCosineConfig)


@gen.hookimpl
def register_samplers(register):
    from gen_vp.ddim import VPDDIMConfig, build_vp_ddim

    # process= ties the sampler to its process: `gen components sampler` shows it, a
    # flow model refuses vp_ddim and this model refuses the flow's solvers by name.
    register("vp_ddim", build_vp_ddim, config=VPDDIMConfig, process="vp_cosine")


# --8<-- [end:hooks]
