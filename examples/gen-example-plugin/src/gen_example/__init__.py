"""gen_example: a third-party plugin for ``gen``, packaged on its own.

It registers a backbone (``patch_mixer``), two samplers (``midpoint``, ``rk4``), a training-time
schedule (``mode``) and a command (``gen example solver-error``). It is found through the entry point
``gen_example = "gen_example"`` in the group ``gen`` of its ``pyproject.toml``, and it uses only the
public ``gen`` API (``import gen``), like the first-party plugins.
"""

from __future__ import annotations

import gen

from gen_example.mixer import PatchMixer, PatchMixerConfig, build_patch_mixer
from gen_example.schedules import ModeConfig, ModeSchedule, build_mode
from gen_example.solvers import midpoint, rk4

__all__ = ["ModeConfig", "ModeSchedule", "PatchMixer", "PatchMixerConfig", "midpoint", "rk4"]


# --8<-- [start:backbones]
@gen.hookimpl
def register_backbones(register):
    # factory(config) receives the validated PatchMixerConfig; the recipe's [backbone] keys fill it.
    register("patch_mixer", build_patch_mixer, config=PatchMixerConfig)


# --8<-- [end:backbones]


# --8<-- [start:samplers]
@gen.hookimpl
def register_samplers(register):
    # A sampler without options: the factory ignores its config (None) and returns the solver.
    register(
        "midpoint",
        lambda config: midpoint,
        description="Explicit midpoint: second order, 2 evaluations a step.",
    )
    register(
        "rk4",
        lambda config: rk4,
        description="Classical Runge-Kutta 4 (midpoint last step): 4N - 2 evaluations.",
    )


# --8<-- [end:samplers]


# --8<-- [start:schedules]
@gen.hookimpl
def register_schedules(register):
    register("mode", build_mode, config=ModeConfig)


# --8<-- [end:schedules]


# --8<-- [start:commands]
@gen.hookimpl
def register_commands(app):
    # Imported here so that loading the plugin (every `gen` command does) stays cheap.
    from gen_example.commands import example_app

    app.add_typer(example_app, name="example")


# --8<-- [end:commands]
