"""gen_example: a third-party plugin for ``gen``, packaged on its own.

It registers a backbone (``patch_mixer``), two samplers (``midpoint``, ``rk4``), a training-time
schedule (``mode``) and a command (``gen example solver-error``). It is found through the entry point
``gen_example = "gen_example"`` in the group ``gen`` of its ``pyproject.toml``, and it uses only the
public ``gen`` API (``import gen``), like the first-party plugins.

Every ``gen`` command, ``gen --help`` included, imports every plugin: this module imports only ``gen``,
and each hook imports the modules (and torch) of what it registers.
"""

from __future__ import annotations

import gen


# --8<-- [start:backbones]
@gen.hookimpl
def register_backbones(register):
    from gen_example.mixer import PatchMixerConfig, build_patch_mixer

    # factory(config) receives the validated PatchMixerConfig; the recipe's
    # [backbone] keys fill it.
    register("patch_mixer", build_patch_mixer, config=PatchMixerConfig)


# --8<-- [end:backbones]


# --8<-- [start:samplers]
@gen.hookimpl
def register_samplers(register):
    from gen_example.solvers import midpoint, rk4

    # A sampler without options: the factory ignores its config (None) and
    # returns the solver. process="flow": it integrates the flow's velocity, so
    # a model of another process (ddpm) refuses it by name.
    register(
        "midpoint",
        lambda config: midpoint,
        description="Explicit midpoint: second order, 2 evaluations a step.",
        process="flow",
    )
    register(
        "rk4",
        lambda config: rk4,
        description="Classical Runge-Kutta 4 (midpoint last step): 4N - 2 evaluations.",
        process="flow",
    )


# --8<-- [end:samplers]


# --8<-- [start:schedules]
@gen.hookimpl
def register_schedules(register):
    from gen_example.schedules import ModeConfig, build_mode

    register("mode", build_mode, config=ModeConfig)


# --8<-- [end:schedules]


# --8<-- [start:commands]
@gen.hookimpl
def register_commands(app):
    # Imported here, and torch only inside the command: `gen --help` builds the
    # command without it.
    from gen_example.commands import example_app

    app.add_typer(example_app, name="example")


# --8<-- [end:commands]
