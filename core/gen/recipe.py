"""TOML recipes: read, inherit (``extends``), override from the command line, validate, print back.

A recipe has the sections ``[backbone]``, ``[data]`` (both required), ``[objective]``, ``[sample]``
and ``[train]``. A section (or sub-section such as ``[objective.schedule]``) that selects a component
has a ``name`` key; its other keys go to that component's config class. Everything is validated
before any work starts, and every mistake is one :class:`~gen.errors.RecipeError` line naming the file,
the section and the key.

Merging rules (``extends`` and overrides alike): tables merge key by key, other values replace; a
component table whose ``name`` changes is replaced whole, because the old component's options do not
apply to the new one.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from gen.config import ComponentSpec, check_value, component_field
from gen.data import DataSpec
from gen.errors import RecipeError, UnknownComponentError
from gen.objective import ObjectiveConfig
from gen.registry import get_registry
from gen.sampling import SampleConfig
from gen.training.config import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "Recipe",
    "load_recipe",
    "parse_override",
    "recipe_to_toml",
    "validate_component",
    "validate_recipe",
]


@attrs.frozen(kw_only=True)
class Recipe:
    """A validated recipe: what to train, on what, and how to sample from it."""

    backbone: ComponentSpec = component_field("backbone", None, doc="The network (a registered backbone).")
    data: ComponentSpec = component_field("dataset", None, doc="The training data (a registered dataset).")
    objective: ObjectiveConfig = attrs.field(
        factory=ObjectiveConfig, metadata={"doc": "The denoising objective."}
    )
    sample: SampleConfig = attrs.field(factory=SampleConfig, metadata={"doc": "How to generate samples."})
    train: TrainConfig = attrs.field(factory=TrainConfig, metadata={"doc": "How to train."})
    #: The file the recipe was loaded from (None when built from a table).
    source: str | None = attrs.field(default=None, eq=False)


# -- reading and merging ------------------------------------------------------------------------------


def read_toml(path: Path, *, included_from: str | None = None) -> dict[str, Any]:
    """Read a TOML file; a missing file or bad TOML is a one-line RecipeError."""
    if not path.is_file():
        where = f" (extended by {included_from})" if included_from else ""
        raise RecipeError(f"recipe file not found{where}; check the path", file=str(path))
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"invalid TOML: {e}", file=str(path)) from None
    except UnicodeDecodeError:
        raise RecipeError("not a UTF-8 text file", file=str(path)) from None


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into ``base``: tables key by key, other values replaced.

    A table with a ``name`` other than the base's selects another component and replaces it whole.
    """
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            if "name" in value and old.get("name") != value["name"]:
                out[key] = dict(value)
            else:
                out[key] = merge(old, value)
        else:
            out[key] = value
    return out


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


def _unknown_key(key: str, known: Iterable[str], *, file: str | None, section: str | None) -> RecipeError:
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
    return RecipeError(
        f"unknown key{hint} Known keys: {', '.join(known) if known else 'none'}",
        file=file,
        section=section,
        key=key,
    )


def _attr_message(error: Exception, name: str) -> str:
    # attrs' in_() validator raises ValueError(message, attribute, options, value): keep the message.
    msg = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
    # attrs validators say "'depth' must be >= 1: 0"; the key is already in the prefix.
    for prefix in (f"'{name}' ", f"{name} "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


def validate_config(cls: type, table: Mapping[str, Any], *, section: str, file: str | None) -> Any:
    """Validate a TOML table into the attrs class ``cls`` (recursing into sub-sections)."""
    if not isinstance(table, Mapping):
        raise RecipeError(
            f"must be a table, got {type(table).__name__} {table!r}", file=file, section=section
        )
    attrs.resolve_types(cls)
    fields = {f.name: f for f in attrs.fields(cls) if f.init and not (cls is Recipe and f.name == "source")}
    kwargs: dict[str, Any] = {}
    for key in table:
        if key not in fields:
            raise _unknown_key(key, fields, file=file, section=section)
    for name, f in fields.items():
        sub = f"{section}.{name}" if section else name
        kind = f.metadata.get("component")
        if kind is not None:
            if name in table:
                value = table[name]
                if isinstance(value, Mapping) and "name" not in value and isinstance(f.default, str):
                    value = {"name": f.default, **value}  # [objective.schedule] mean = ... keeps the default
                kwargs[name] = validate_component(kind, value, section=sub, file=file)
            elif f.default is None:
                known = ", ".join(_known_names(kind))
                raise RecipeError(
                    f"missing section [{sub}]: add it with name = one of: {known}", file=file, section=None
                )
            elif isinstance(f.default, str):
                kwargs[name] = validate_component(kind, f.default, section=sub, file=file)
            continue
        if isinstance(f.type, type) and attrs.has(f.type):
            # Validated even when absent, so that its component defaults become ComponentSpecs.
            kwargs[name] = validate_config(f.type, table.get(name, {}), section=sub, file=file)
            continue
        if name not in table:
            continue
        value = table[name]
        try:
            value = check_value(value, f.type)
        except TypeError as e:
            raise RecipeError(str(e), file=file, section=section, key=name) from None
        if f.converter is not None:
            value = f.converter(value)
        if f.validator is not None:
            try:
                f.validator(None, f, value)
            except (ValueError, TypeError) as e:
                raise RecipeError(f"{_attr_message(e, name)}", file=file, section=section, key=name) from None
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise RecipeError(str(e), file=file, section=section) from None


def _known_names(kind: str) -> list[str]:
    return get_registry(kind).names()


def validate_component(kind: str, value: Any, *, section: str, file: str | None) -> ComponentSpec:
    """Validate ``"name"`` or ``{name = ..., **config}`` into a :class:`ComponentSpec` of ``kind``."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        raise RecipeError(
            f"must be a component name or a table with `name`, got {value!r}", file=file, section=section
        )
    name = value.get("name")
    if name is None:
        known = ", ".join(_known_names(kind))
        raise RecipeError(
            f"missing `name`: set it to one of: {known}", file=file, section=section, key="name"
        )
    if not isinstance(name, str):
        raise RecipeError(
            f"expected str, got {type(name).__name__} {name!r}", file=file, section=section, key="name"
        )
    try:
        component = get_registry(kind).get(name)
    except UnknownComponentError as e:
        raise RecipeError(str(e), file=file, section=section, key="name") from None
    fields = {k: v for k, v in value.items() if k != "name"}
    if component.config is None:
        if fields:
            raise RecipeError(
                f"{kind} {name!r} takes no options; remove {', '.join(sorted(fields))}",
                file=file,
                section=section,
                key=sorted(fields)[0],
            )
        config = None
    else:
        config = validate_config(component.config, fields, section=section, file=file)
    return ComponentSpec(kind=kind, name=name, config=config, explicit=frozenset(fields))


def with_data_fields(recipe: Recipe, spec: DataSpec) -> Recipe:
    """The recipe with the backbone's data-derived fields (``input_size``, ``in_channels``,
    ``num_classes`` or ``input_dim``) taken from ``spec`` wherever the recipe did not set them."""
    section = recipe.backbone
    if section.config is None:
        return recipe
    names = {f.name for f in attrs.fields(type(section.config))}
    fill = {k: v for k, v in spec.backbone_fields().items() if k in names and k not in section.explicit}
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


def validate_recipe(table: Mapping[str, Any], *, file: str | None = None) -> Recipe:
    """Validate a merged recipe table into a :class:`Recipe`.

    When the dataset's config can tell its :class:`DataSpec` without reading data (a ``spec()``
    method that may return None when it cannot tell), the backbone's data-derived fields are filled here, so that ``gen recipe show`` prints
    what will really be built; otherwise the training engine fills them once the data is open.
    """
    recipe = attrs.evolve(validate_config(Recipe, table, section="", file=file), source=file)
    spec_of = getattr(recipe.data.config, "spec", None)
    spec = spec_of() if callable(spec_of) else None
    if spec is not None:
        recipe = with_data_fields(recipe, spec)
    return recipe


def load_recipe(path: str | Path, overrides: Iterable[str] = ()) -> Recipe:
    """Load a recipe file with its ``extends`` chain and command-line overrides, and validate it.

    Args:
        path: The TOML file.
        overrides: ``SECTION.KEY=VALUE`` strings, values parsed as TOML (``train.lr=1e-4``).

    Raises:
        RecipeError: on any mistake, naming the file, section and key.
    """
    table = apply_overrides(load_table(path), overrides)
    return validate_recipe(table, file=str(path))


# -- printing ---------------------------------------------------------------------------------------


def to_table(obj: Any) -> Any:
    """A validated config (or recipe) as a plain TOML-ready table; None values are left out."""
    if isinstance(obj, ComponentSpec):
        table: dict[str, Any] = {"name": obj.name}
        if obj.config is not None:
            table.update(to_table(obj.config))
        return table
    if attrs.has(type(obj)):
        out = {}
        for f in attrs.fields(type(obj)):
            if f.name == "source" and isinstance(obj, Recipe):
                continue
            value = to_table(getattr(obj, f.name))
            if value is not None:
                out[f.name] = value
        return out
    if isinstance(obj, (list, tuple)):
        return [to_table(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_table(v) for k, v in obj.items()}
    return obj


def recipe_to_toml(recipe: Recipe, *, header: str | None = None) -> str:
    """The fully resolved recipe as TOML text; loading it back gives an equal :class:`Recipe`."""
    import tomli_w

    table = to_table(recipe)
    # Scalars first, then tables, so that the output reads like a hand-written recipe.
    text = tomli_w.dumps(table, multiline_strings=False)
    if header:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + "\n" + text
    return text
