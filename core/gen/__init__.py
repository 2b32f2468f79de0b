"""gen: train and sample denoising generative models of images (JiT, DiT), extended by plugins.

The public API (what plugins may import) is exactly what this module exports.
"""

from __future__ import annotations

from gen.config import ComponentSpec, component_field, field, fields_of, registered, type_name
from gen.data import Dataset, DataSpec
from gen.errors import DuplicateComponentError, GenError, RecipeError, UnknownComponentError
from gen.hookspecs import hookimpl
from gen.objective import Objective, ObjectiveConfig
from gen.prediction import Prediction, Schedule, Solver, VelocityFn
from gen.registry import KINDS, Component, Registry, build, get_registry, resolve_config
from gen.sampling import SampleConfig, guided_velocity, sample, sample_noise, time_grid

__version__ = "0.1.0"


def load_recipe(path, overrides=()):  # noqa: ANN001, ANN201 - re-exported, documented in gen.recipe
    """Load, merge and validate a TOML recipe; see :func:`gen.recipe.load_recipe`."""
    from gen.recipe import load_recipe as _load

    return _load(path, overrides=overrides)


__all__ = [
    "Component",
    "ComponentSpec",
    "DataSpec",
    "Dataset",
    "DuplicateComponentError",
    "GenError",
    "KINDS",
    "Objective",
    "ObjectiveConfig",
    "Prediction",
    "RecipeError",
    "Registry",
    "SampleConfig",
    "Schedule",
    "Solver",
    "UnknownComponentError",
    "VelocityFn",
    "__version__",
    "build",
    "component_field",
    "field",
    "fields_of",
    "get_registry",
    "guided_velocity",
    "hookimpl",
    "load_recipe",
    "registered",
    "resolve_config",
    "sample",
    "sample_noise",
    "time_grid",
    "type_name",
]
