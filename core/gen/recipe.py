"""TOML recipes: read, inherit (``extends``), override from the command line, validate, print back.

A recipe has the sections ``[backbone]``, ``[data]`` (both required), ``[objective]``, ``[sample]``
and ``[train]``. A section (or sub-section such as ``[objective.schedule]``) that selects a component
has a ``name`` key; its other keys go to that component's config class. Everything is validated
before any work starts, and every mistake is one `RecipeError` line naming the file,
the section and the key.

Merging rules (``extends`` and overrides alike): tables merge key by key, other values replace; a
component table whose ``name`` changes is replaced whole, because the old component's options do not
apply to the new one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from gen.components import ComponentSpec, merge, to_table, validate_component, validate_config
from gen.config import component_field
from gen.errors import GenError, RecipeError
from gen.latent_space import model_spec
from gen.objective import ObjectiveConfig
from gen.plugins import get_registry
from gen.protocols import DataSpec, EncodedData, ShapeFromConfig, SpecFromConfig
from gen.sampling.config import SampleConfig
from gen.sampling.driver import check_sampler
from gen.term_specs import LossTermSpec, check_process_takes_terms, loss_terms_field
from gen.train_config import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "Recipe",
    "build_backbone",
    "load_recipe",
    "parse_override",
    "recipe_to_toml",
    "validate_recipe",
    "with_data_fields",
]


@attrs.frozen(kw_only=True)
class Recipe:
    """A validated recipe: what to train, on what, and how to sample from it."""

    backbone: ComponentSpec = component_field("backbone", None, doc="The network (a registered backbone).")
    data: ComponentSpec = component_field("dataset", None, doc="The training data (a registered dataset).")
    autoencoder: ComponentSpec = component_field(
        "autoencoder",
        "identity",
        doc="The space the model works in: identity (pixels) or an autoencoder's latents (sd_vae).",
    )
    objective: ObjectiveConfig = attrs.field(
        factory=ObjectiveConfig, metadata={"doc": "The denoising objective."}
    )
    sample: SampleConfig = attrs.field(factory=SampleConfig, metadata={"doc": "How to generate samples."})
    train: TrainConfig = attrs.field(factory=TrainConfig, metadata={"doc": "How to train."})
    loss_terms: tuple[LossTermSpec, ...] = loss_terms_field()
    source: str | None = attrs.field(
        default=None,
        eq=False,
        metadata={
            "recipe": False,
            "doc": "The file the recipe was loaded from; None when built from a table.",
        },
    )


# -- reading and merging ------------------------------------------------------------------------------


def read_toml(path: Path, *, included_from: str | None = None) -> dict[str, Any]:
    """Read a TOML file; a missing file, a directory or bad TOML is a one-line RecipeError. A UTF-8
    byte-order mark (which some editors write) is skipped."""
    if not path.is_file():
        where = f" (extended by {included_from})" if included_from else ""
        if path.is_dir():
            raise RecipeError(f"is a directory, not a recipe file{where}; give a .toml file", file=str(path))
        raise RecipeError(f"recipe file not found{where}; check the path", file=str(path))
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"invalid TOML: {e}", file=str(path)) from None
    except UnicodeDecodeError:
        raise RecipeError("not a UTF-8 text file", file=str(path)) from None


def load_table(path: str | Path, _stack: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a recipe and everything it ``extends`` into one merged table (``extends`` removed)."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _stack:
        chain = " -> ".join(str(p) for p in (*_stack, resolved))
        raise RecipeError(f"`extends` cycle: {chain}; remove one of the `extends`", file=str(path))
    table = read_toml(path, included_from=str(_stack[-1]) if _stack else None)
    extends = table.pop("extends", None)
    if extends is None:
        return table
    if isinstance(extends, str):
        extends = [extends]
    if not isinstance(extends, list) or not all(isinstance(e, str) for e in extends):
        raise RecipeError(
            "`extends` must be a path or a list of paths (relative to this file)",
            file=str(path),
            key="extends",
        )
    base: dict[str, Any] = {}
    for parent in extends:
        base = merge(base, load_table(path.parent / parent, (*_stack, resolved)))
    return merge(base, table)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``section.key=value`` (value as TOML; a bare word that is not TOML is a string).

    Example:
        >>> parse_override("sample.cfg_interval=[0.1, 1.0]")
        (['sample', 'cfg_interval'], [0.1, 1.0])
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or not key or not all(p.strip() for p in parts):
        raise RecipeError(
            f"bad override {text!r}: write SECTION.KEY=VALUE, e.g. train.lr=1e-4 or backbone.preset='L/16'"
        )
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        # The shell ate the quotes of backbone.preset="L/16"; a bare word is a string.
        if not raw or any(c in raw for c in "[]{}\"'=,"):
            raise RecipeError(f"bad override {text!r}: {raw!r} is not a TOML value") from None
        value = raw
    return [p.strip() for p in parts], value


def apply_overrides(table: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``SECTION.KEY=VALUE`` overrides with the same merge rules as ``extends``."""
    for text in overrides:
        parts, value = parse_override(text)
        nested: Any = value
        for part in reversed(parts):
            nested = {part: nested}
        node = table
        for depth, part in enumerate(parts[:-1]):
            if part in node and not isinstance(node[part], dict):
                # `objective.schedule.mean=...` where the recipe says `schedule = "logit_normal"`.
                if isinstance(node[part], str):
                    node[part] = {"name": node[part]}
                else:
                    raise RecipeError(f"cannot set {text!r}: {'.'.join(parts[: depth + 1])} is not a table")
            node = node.setdefault(part, {})
        table = merge(table, nested)
    return table


# -- validation -------------------------------------------------------------------------------------


def model_fields(recipe_objective: ObjectiveConfig, spec: DataSpec) -> dict[str, Any]:
    """The backbone fields the model's data (``spec``, in the model's space) and process decide:
    ``input_size``, ``in_channels``, ``num_classes`` (or ``input_dim``), and the process's own
    (``out_channels = 2 C`` for DDPM's learned variance)."""
    fields = spec.backbone_fields()
    fields.update(recipe_objective.build_process().backbone_fields(spec))
    return fields


def _no_out_channels(backbone: str, wanted: int, file: str | None) -> RecipeError:
    return RecipeError(
        f"the process's learned variance needs out_channels = {wanted}, but backbone {backbone!r} has no "
        "out_channels; set objective.process.learn_sigma = false or use backbone dit",
        file=file,
        section="backbone",
    )


def check_backbone_takes(
    objective: ObjectiveConfig, spec: DataSpec, backbone: str, names: set[str], file: str | None
) -> None:
    """Raise `RecipeError` when the process needs backbone fields (`gen.Process.backbone_fields`) that the
    backbone's config (field ``names``) does not have: a MeanFlow's ``scalar_inputs`` on an ``mlp``."""
    lacking = [k for k in objective.build_process().backbone_fields(spec) if k not in names]
    if lacking:
        process = (
            objective.process.name if isinstance(objective.process, ComponentSpec) else objective.process
        )
        raise RecipeError(
            f"the {process} process needs the backbone field(s) {', '.join(lacking)}, which backbone "
            f"{backbone!r} does not have; use jit or dit",
            file=file,
            section="backbone",
        )


def with_data_fields(recipe: Recipe, spec: DataSpec) -> Recipe:
    """The recipe with the backbone's data-derived fields (``input_size``, ``in_channels``,
    ``num_classes`` or ``input_dim``, and the process's ``out_channels``) taken from ``spec`` (the model's
    space) wherever the recipe did not set them."""
    section = recipe.backbone
    if section.config is None:
        return recipe
    names = {f.name for f in attrs.fields(type(section.config))}
    given = model_fields(recipe.objective, spec)
    if "out_channels" in given and "out_channels" not in names:
        raise _no_out_channels(section.name, given["out_channels"], recipe.source)
    check_backbone_takes(recipe.objective, spec, section.name, names, recipe.source)
    fill = {k: v for k, v in given.items() if k in names and k not in section.explicit}
    if not fill:
        return recipe
    try:
        config = attrs.evolve(section.config, **fill)
    except (ValueError, TypeError) as e:
        raise RecipeError(
            f"with the data's {', '.join(fill)}: {e}", file=recipe.source, section="backbone"
        ) from None
    backbone = attrs.evolve(section, config=config, explicit=section.explicit | set(fill))
    return attrs.evolve(recipe, backbone=backbone)


def build_backbone(recipe: Recipe, spec: DataSpec) -> Any:
    """Build the recipe's backbone (an ``nn.Module``) for data of ``spec``, its data-derived fields filled
    from ``spec`` where the recipe set none; a factory's ValueError is one `gen.GenError` line."""
    section = with_data_fields(recipe, spec).backbone
    component = get_registry("backbone").get(section.name)
    try:
        return component.factory(section.config)
    except ValueError as e:
        raise GenError(f"[backbone] {section.name}: {e}") from None


def data_spec_of(data: ComponentSpec) -> tuple[DataSpec | None, bool]:
    """What the data section's config tells without reading data (see
    `gen.protocols.SpecFromConfig` and `gen.protocols.ShapeFromConfig`): a spec (None when
    it tells nothing), and whether its classes are known too."""
    config = data.config
    spec = config.spec() if isinstance(config, SpecFromConfig) else None
    if spec is not None:
        return spec, True
    if isinstance(config, ShapeFromConfig):
        return DataSpec(shape=config.sample_shape()), False
    return None, False


def model_fields_at_load(
    table: Mapping[str, Any], data: ComponentSpec, *, file: str | None
) -> dict[str, Any]:
    """The backbone fields known at recipe load: the data's, through the ``[autoencoder]`` (latents) and
    the process (``out_channels``); validates those two sections on the way."""
    spec, classes_known = data_spec_of(data)
    if spec is None:
        return {}
    section = validate_component(
        "autoencoder", table.get("autoencoder", "identity"), section="autoencoder", file=file
    )
    try:
        spec = model_spec(section.build(), spec, encoded=isinstance(data.config, EncodedData))
    except GenError as e:
        raise RecipeError(str(e).removeprefix("[autoencoder] "), file=file, section="autoencoder") from None
    objective = validate_config(ObjectiveConfig, table.get("objective", {}), section="objective", file=file)
    fields = model_fields(objective, spec)
    backbone = table.get("backbone")
    name = (
        backbone
        if isinstance(backbone, str)
        else backbone.get("name")
        if isinstance(backbone, Mapping)
        else None
    )
    registry = get_registry("backbone")
    if isinstance(name, str) and name in registry and registry.get(name).config is not None:
        names = {f.name for f in attrs.fields(registry.get(name).config)}
        if "out_channels" in fields and "out_channels" not in names:
            raise _no_out_channels(name, fields["out_channels"], file)
        check_backbone_takes(objective, spec, name, names, file)
    if not classes_known:
        fields.pop("num_classes", None)  # the classes are not known without the data
    return fields


def _with_data_keys(table: Mapping[str, Any], fields: dict[str, Any], *, file: str | None) -> dict[str, Any]:
    """The recipe table with the data's backbone fields written into ``[backbone]`` where it says nothing
    (only fields the selected backbone's config has), so that the backbone is validated once, against
    the data it will see."""
    backbone = table.get("backbone")
    if isinstance(backbone, str):
        backbone = {"name": backbone}
    if not fields or not isinstance(backbone, Mapping) or not isinstance(backbone.get("name"), str):
        return dict(table)  # the validation that follows reports what is wrong
    registry = get_registry("backbone")
    if backbone["name"] not in registry or registry.get(backbone["name"]).config is None:
        return dict(table)
    names = {f.name for f in attrs.fields(registry.get(backbone["name"]).config)}
    fill = {k: v for k, v in fields.items() if k in names and k not in backbone}
    return {**table, "backbone": {**backbone, **fill}}


def _process_sampler(objective: ObjectiveConfig, sample: SampleConfig) -> SampleConfig:
    """``[sample]`` with the first sampler registered for the model's process when the recipe names none
    and the default (``heun``) samples another process: a MeanFlow recipe without a ``sampler`` key
    samples with ``meanflow``, not an error."""
    process = objective.process.name if isinstance(objective.process, ComponentSpec) else objective.process
    samplers = get_registry("sampler")
    if samplers.get(sample.sampler.name).process in (None, process):
        return sample
    own = [c.name for c in samplers if c.process == process]
    if not own:
        return sample  # check_sampler names the problem
    return attrs.evolve(sample, sampler=validate_component("sampler", own[0], section="sample", file=None))


def validate_recipe(table: Mapping[str, Any], *, file: str | None = None) -> Recipe:
    """Validate a merged recipe table into a `Recipe`.

    The ``[data]`` section is validated first: the backbone's data-derived fields that its config can
    tell without reading data are filled before the backbone is validated, so that ``gen recipe show``
    prints what will really be built; the training engine fills the rest once the data is open.
    """
    if isinstance(table, Mapping) and "data" in table:
        data = validate_component("dataset", table["data"], section="data", file=file)
        table = _with_data_keys(table, model_fields_at_load(table, data, file=file), file=file)
    recipe = attrs.evolve(validate_config(Recipe, table, section="", file=file), source=file)
    sample_table = table.get("sample") if isinstance(table, Mapping) else None
    if not (isinstance(sample_table, Mapping) and "sampler" in sample_table):
        recipe = attrs.evolve(recipe, sample=_process_sampler(recipe.objective, recipe.sample))
    try:
        check_sampler(recipe.objective, recipe.sample)
    except ValueError as e:
        raise RecipeError(str(e), file=file, section="sample") from None
    process = recipe.objective.build_process()
    check_process_takes_terms(process, recipe.objective.process.name, recipe.loss_terms, file=file)
    check_training = getattr(process, "check_training", None)
    if check_training is not None:  # optional (gen.Process): what of [train] the process cannot train with
        try:
            check_training(recipe.train, recipe.backbone.config)
        except ValueError as e:
            raise RecipeError(str(e), file=file, section="train") from None
    return recipe


def load_recipe(path: str | Path, overrides: Iterable[str] = ()) -> Recipe:
    """Load a recipe file with its ``extends`` chain and command-line overrides, and validate it into a
    [`gen.Recipe`][].

    Args:
        path: The TOML file.
        overrides: ``SECTION.KEY=VALUE`` strings, values parsed as TOML (``train.lr=1e-4``).

    Raises:
        RecipeError: on any mistake, naming the file, section and key.
    """
    table = apply_overrides(load_table(path), overrides)
    return validate_recipe(table, file=str(path))


# -- printing ---------------------------------------------------------------------------------------


def recipe_to_toml(recipe: Recipe, *, header: str | None = None) -> str:
    """The fully resolved recipe as TOML text; loading it back gives an equal `Recipe`."""
    import tomli_w

    table = to_table(recipe)
    if not table.get("loss_terms"):
        table.pop("loss_terms", None)  # no term: the recipe reads as it did before terms existed
    # Scalars first, then tables, so that the output reads like a hand-written recipe.
    text = tomli_w.dumps(table, multiline_strings=False)
    if header:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + "\n" + text
    return text
