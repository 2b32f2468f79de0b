"""gen: train and sample denoising generative models of images (JiT, DiT), extended by plugins.

The public API (what plugins may import) is exactly what this module exports: enough to declare and
register components, to load and validate recipes, to train in process and to sample a trained run.

The names are imported on first use (PEP 562): ``import gen`` costs only what it names, so that a
plugin's ``@gen.hookimpl`` and ``gen.field`` and the command line's ``gen --help`` do not import torch;
``gen.train`` imports the training engine the first time it is looked up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gen.lazy import lazy_getattr
from gen.version import __version__

if TYPE_CHECKING:  # the same names, imported for type checkers, IDEs and the API docs
    from gen.components import ComponentSpec, build, registered, resolve_config
    from gen.condition import ClassLabels
    from gen.config import component_field, field, fields_of, type_name
    from gen.errors import DuplicateComponentError, GenError, RecipeError, UnknownComponentError
    from gen.export.source import Exporter, ExportSource
    from gen.export.writer import export_model
    from gen.forward_ad import forward_mode
    from gen.hookspecs import hookimpl
    from gen.images import from_uint8, make_grid, read_image, save_png, to_uint8
    from gen.layers import (
        LabelEmbedder,
        ScalarEmbedders,
        TimestepEmbedder,
        init_adaln_zero,
        modulate,
        timestep_embedding,
    )
    from gen.loss_term import LossTerm, TermSetup, TermView
    from gen.metrics.dinov2 import DINOv2ViT, load_dinov2_encoder
    from gen.objective import Objective, ObjectiveConfig
    from gen.plots import (
        PlotLine,
        PlotPanel,
        figure_image,
        figure_png,
        pixel_axes,
        pixel_figure,
        pixel_text,
        plot_panels,
    )
    from gen.plugins import command_group, get_registry
    from gen.power_ema import EmaLength
    from gen.process import Condition, Process
    from gen.progress import progress_bar
    from gen.protocols import (
        Autoencoder,
        ClampsAtDataEnd,
        DataClampedVelocity,
        Dataset,
        DataSpec,
        EncodedData,
        KnowsSize,
        ListsImages,
        LocalPaths,
        Logger,
        Prediction,
        RanksScores,
        Schedule,
        ScoresSamples,
        ShapeFromConfig,
        Solver,
        SpecFromConfig,
        TimeGrid,
        VelocityFn,
    )
    from gen.recipe import Recipe, load_recipe
    from gen.registry import KINDS, Component, Registry
    from gen.runs.checkpoint import weights_name
    from gen.runs.run_dir import Checkpoint, RunDir, export_checkpoint, load_checkpoint
    from gen.sampling.config import SampleConfig
    from gen.sampling.driver import sample
    from gen.sampling.grids import grid_times, time_grid
    from gen.sampling.guidance import Guide, extrapolate, guidance_scale
    from gen.sampling.model import ModelSampler, load
    from gen.sampling.noise import sample_noise
    from gen.sampling.settings import SamplingSettings
    from gen.sampling.step_counter import StepCounter
    from gen.seeds import key_seed, per_sample_generators
    from gen.tensor_files import check_safetensors, read_safetensors, read_torch
    from gen.training.engine import train
    from gen.training.loggers import RunInfo

#: The module of each public name, in the order of the imports above (``tests/core/test_public_api.py``
#: checks that the two agree and that every name of `__all__` is one of them).
_MODULES: dict[str, tuple[str, ...]] = {
    "gen.components": ("ComponentSpec", "build", "registered", "resolve_config"),
    "gen.condition": ("ClassLabels",),
    "gen.config": ("component_field", "field", "fields_of", "type_name"),
    "gen.errors": ("DuplicateComponentError", "GenError", "RecipeError", "UnknownComponentError"),
    "gen.export.source": ("Exporter", "ExportSource"),
    "gen.export.writer": ("export_model",),
    "gen.forward_ad": ("forward_mode",),
    "gen.hookspecs": ("hookimpl",),
    "gen.images": ("from_uint8", "make_grid", "read_image", "save_png", "to_uint8"),
    "gen.layers": (
        "LabelEmbedder",
        "ScalarEmbedders",
        "TimestepEmbedder",
        "init_adaln_zero",
        "modulate",
        "timestep_embedding",
    ),
    "gen.loss_term": ("LossTerm", "TermSetup", "TermView"),
    "gen.metrics.dinov2": ("DINOv2ViT", "load_dinov2_encoder"),
    "gen.objective": ("Objective", "ObjectiveConfig"),
    "gen.plots": (
        "PlotLine",
        "PlotPanel",
        "figure_image",
        "figure_png",
        "pixel_axes",
        "pixel_figure",
        "pixel_text",
        "plot_panels",
    ),
    "gen.plugins": ("command_group", "get_registry"),
    "gen.power_ema": ("EmaLength",),
    "gen.process": ("Condition", "Process"),
    "gen.progress": ("progress_bar",),
    "gen.protocols": (
        "Autoencoder",
        "ClampsAtDataEnd",
        "DataClampedVelocity",
        "Dataset",
        "DataSpec",
        "EncodedData",
        "KnowsSize",
        "ListsImages",
        "LocalPaths",
        "Logger",
        "Prediction",
        "RanksScores",
        "Schedule",
        "ScoresSamples",
        "ShapeFromConfig",
        "Solver",
        "SpecFromConfig",
        "TimeGrid",
        "VelocityFn",
    ),
    "gen.recipe": ("Recipe", "load_recipe"),
    "gen.registry": ("KINDS", "Component", "Registry"),
    "gen.runs.checkpoint": ("weights_name",),
    "gen.runs.run_dir": ("Checkpoint", "RunDir", "export_checkpoint", "load_checkpoint"),
    "gen.sampling.config": ("SampleConfig",),
    "gen.sampling.driver": ("sample",),
    "gen.sampling.grids": ("grid_times", "time_grid"),
    "gen.sampling.guidance": ("Guide", "extrapolate", "guidance_scale"),
    "gen.sampling.model": ("ModelSampler", "load"),
    "gen.sampling.noise": ("sample_noise",),
    "gen.sampling.settings": ("SamplingSettings",),
    "gen.sampling.step_counter": ("StepCounter",),
    "gen.seeds": ("key_seed", "per_sample_generators"),
    "gen.tensor_files": ("check_safetensors", "read_safetensors", "read_torch"),
    "gen.training.engine": ("train",),
    "gen.training.loggers": ("RunInfo",),
}
_MODULE_OF: dict[str, str] = {name: module for module, names in _MODULES.items() for name in names}


__getattr__ = lazy_getattr(__name__, _MODULE_OF)  # PEP 562: gen.NAME imports its module on first use


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "Autoencoder",
    "EncodedData",
    "Process",
    "Checkpoint",
    "ClampsAtDataEnd",
    "ClassLabels",
    "Condition",
    "Component",
    "ComponentSpec",
    "command_group",
    "DataClampedVelocity",
    "DINOv2ViT",
    "DataSpec",
    "Dataset",
    "DuplicateComponentError",
    "EmaLength",
    "GenError",
    "Guide",
    "KINDS",
    "KnowsSize",
    "ListsImages",
    "LocalPaths",
    "Logger",
    "LossTerm",
    "ModelSampler",
    "Objective",
    "ObjectiveConfig",
    "Prediction",
    "RanksScores",
    "Recipe",
    "RecipeError",
    "RunDir",
    "RunInfo",
    "Registry",
    "SampleConfig",
    "SamplingSettings",
    "Schedule",
    "ScoresSamples",
    "ShapeFromConfig",
    "Solver",
    "SpecFromConfig",
    "StepCounter",
    "TermSetup",
    "TermView",
    "TimeGrid",
    "UnknownComponentError",
    "VelocityFn",
    "__version__",
    "lazy_getattr",
    "build",
    "export_checkpoint",
    "export_model",
    "ExportSource",
    "Exporter",
    "component_field",
    "field",
    "fields_of",
    "from_uint8",
    "get_registry",
    "guidance_scale",
    "extrapolate",
    "grid_times",
    "hookimpl",
    "key_seed",
    "per_sample_generators",
    "check_safetensors",
    "progress_bar",
    "read_image",
    "read_safetensors",
    "read_torch",
    "load",
    "load_checkpoint",
    "load_dinov2_encoder",
    "load_recipe",
    "make_grid",
    "registered",
    "resolve_config",
    "sample",
    "sample_noise",
    "save_png",
    "time_grid",
    "to_uint8",
    "train",
    "type_name",
    "LabelEmbedder",
    "ScalarEmbedders",
    "TimestepEmbedder",
    "forward_mode",
    "init_adaln_zero",
    "modulate",
    "timestep_embedding",
    "weights_name",
    "PlotLine",
    "PlotPanel",
    "figure_image",
    "figure_png",
    "pixel_axes",
    "pixel_figure",
    "pixel_text",
    "plot_panels",
]
