"""Components as recipes name them: a validated selection (`ComponentSpec`), the validation of a
TOML table into a config class, and `build` — the one path from a table to a component.

A recipe section ``[backbone] name = "jit" depth = 12`` and ``gen.build("backbone", "jit", depth=12)``
both go through `validate_component`, so code and recipes cannot disagree: unknown keys (with the
closest known ones), TOML types, attrs validators for ranges, then the class's own cross-field checks,
each a `gen.RecipeError` naming the file, the section and the key. And back: `to_table` turns a
validated config into its table, and `merge` is the one rule by which tables combine (``extends``,
overrides, a command's ``[sample]`` options).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from gen.config import check_value
from gen.errors import RecipeError, UnknownComponentError
from gen.plugins import get_registry


@attrs.frozen(kw_only=True)
class ComponentSpec:
    """A validated selection of a registered component: its kind, name and config instance.

    This is what a recipe section such as ``[backbone] name = "jit"`` becomes.
    """

    kind: str
    name: str
    config: Any
    # Keys the recipe set explicitly (the others took their defaults); the recipe loader uses this to
    # fill data-dependent fields such as a backbone's ``input_size`` only where the author said nothing.
    explicit: frozenset[str] = attrs.field(default=frozenset(), eq=False)

    def build(self, **overrides: Any) -> Any:
        """Build the component, with config fields replaced by ``overrides``."""
        config = attrs.evolve(self.config, **overrides) if overrides else self.config
        return get_registry(self.kind).get(self.name).factory(config)


def registered(kind: str) -> Any:
    """An attrs validator: the value must name a registered component of ``kind``."""

    def check(instance: Any, attribute: Any, value: Any) -> None:  # noqa: ARG001
        registry = get_registry(kind)
        if value not in registry:
            raise ValueError(registry.unknown_message(value))

    return check


def build_component(kind: str, value: Any) -> Any:
    """Build a component given as a name (default config) or a validated `ComponentSpec`."""
    if isinstance(value, ComponentSpec):
        return value.build()
    if isinstance(value, str):
        component = get_registry(kind).get(value)
        return component.factory(component.make_config())
    raise TypeError(f"expected a {kind} name or a ComponentSpec, got {type(value).__name__} {value!r}")


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


def _validate_field(f: attrs.Attribute, value: Any, *, section: str, file: str | None) -> Any:
    try:
        value = check_value(value, f.type)
    except TypeError as e:
        raise RecipeError(str(e), file=file, section=section, key=f.name) from None
    if f.validator is not None:
        # attrs validates the converted value; the class converts again at construction, so the
        # converted value is only checked here, and the value given is what the class receives.
        converted = f.converter(value) if f.converter is not None else value
        try:
            f.validator(None, f, converted)
        except (ValueError, TypeError) as e:
            raise RecipeError(_attr_message(e, f.name), file=file, section=section, key=f.name) from None
    return value


def _validate_selector(
    f: attrs.Attribute, table: Mapping[str, Any], *, sub: str, file: str | None
) -> ComponentSpec | None:
    """A component field (``schedule = "uniform"`` or ``[objective.schedule]``) into a ComponentSpec."""
    kind = f.metadata["component"]
    if f.name in table:
        value = table[f.name]
        if isinstance(value, Mapping) and "name" not in value and isinstance(f.default, str):
            value = {"name": f.default, **value}  # [objective.schedule] mean = ... keeps the default
        return validate_component(kind, value, section=sub, file=file)
    if f.default is None:
        known = ", ".join(get_registry(kind).names())
        raise RecipeError(f"missing section [{sub}]: add it with name = one of: {known}", file=file)
    if isinstance(f.default, str):
        return validate_component(kind, f.default, section=sub, file=file)
    return None


def _validate_selectors(kind: str, value: Any, *, sub: str, file: str | None) -> tuple[ComponentSpec, ...]:
    """A list of components (``loggers = ["tensorboard", {name = "wandb"}]``) into ComponentSpecs, each
    item checked like a section of its own (``[train.loggers.1]``); a name listed twice is an error."""
    if not isinstance(value, (list, tuple)):
        raise RecipeError(
            f"expected a list of {kind} names or tables, got {type(value).__name__} {value!r}",
            file=file,
            section=sub.rpartition(".")[0],
            key=sub.rpartition(".")[2],
        )
    specs = tuple(
        validate_component(kind, item, section=f"{sub}.{i}", file=file) for i, item in enumerate(value)
    )
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RecipeError(
            f"{kind} {twice[0]!r} is listed twice; list it once (with its options, if any)",
            file=file,
            section=sub.rpartition(".")[0],
            key=sub.rpartition(".")[2],
        )
    return specs


def validate_config(cls: type, table: Mapping[str, Any], *, section: str, file: str | None) -> Any:
    """Validate a TOML table into the attrs class ``cls`` (recursing into sub-sections).

    Fields with ``init=False`` or ``metadata={"recipe": False}`` are not recipe keys.
    """
    if not isinstance(table, Mapping):
        raise RecipeError(
            f"must be a table, got {type(table).__name__} {table!r}", file=file, section=section
        )
    attrs.resolve_types(cls)
    fields = {f.name: f for f in attrs.fields(cls) if f.init and f.metadata.get("recipe", True)}
    for key in table:
        if key not in fields:
            raise _unknown_key(key, fields, file=file, section=section)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        sub = f"{section}.{name}" if section else name
        if "component" in f.metadata:
            spec = _validate_selector(f, table, sub=sub, file=file)
            if spec is not None:
                kwargs[name] = spec
        elif "validate" in f.metadata:  # a field that validates itself (``loss_terms``)
            if name in table:
                kwargs[name] = f.metadata["validate"](table[name], section=sub, file=file)
        elif "components" in f.metadata:
            if name in table:
                kwargs[name] = _validate_selectors(f.metadata["components"], table[name], sub=sub, file=file)
        elif isinstance(f.type, type) and attrs.has(f.type):
            # Validated even when absent, so that its component defaults become ComponentSpecs.
            kwargs[name] = validate_config(f.type, table.get(name, {}), section=sub, file=file)
        elif name in table:
            kwargs[name] = _validate_field(f, table[name], section=section, file=file)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise RecipeError(str(e), file=file, section=section) from None


def validate_component(kind: str, value: Any, *, section: str, file: str | None) -> ComponentSpec:
    """Validate ``"name"`` or ``{name = ..., **config}`` into a `ComponentSpec` of ``kind``."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        raise RecipeError(
            f"must be a component name or a table with `name`, got {value!r}", file=file, section=section
        )
    name = value.get("name")
    if name is None:
        known = ", ".join(get_registry(kind).names())
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


# -- tables ---------------------------------------------------------------------------------------


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


def to_table(obj: Any) -> Any:
    """A validated config (or recipe) as a plain TOML-ready table; None values are left out."""
    if isinstance(obj, ComponentSpec):
        table: dict[str, Any] = {"name": obj.name}
        own = {f.name for f in attrs.fields(ComponentSpec)}
        for f in attrs.fields(type(obj)):  # a subclass's keys (a loss term's weight) before the options
            if f.name not in own:
                table[f.name] = to_table(getattr(obj, f.name))
        if obj.config is not None:
            table.update(to_table(obj.config))
        return table
    if attrs.has(type(obj)):
        out = {}
        for f in attrs.fields(type(obj)):
            if f.metadata.get("recipe") is False:  # not a key of the section (a recipe's source file)
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


def build(kind: str, name: str, **fields: Any) -> Any:
    """Build the component a recipe section ``{name = name, **fields}`` would build.

    Same validation and the same errors as a recipe: unknown keys, wrong types and out-of-range
    values raise [`gen.RecipeError`][].

    Example:
        >>> net = gen.build("backbone", "jit", preset="B/16", input_size=256, num_classes=1000)
    """
    return validate_component(kind, {"name": name, **fields}, section=kind, file=None).build()


def resolve_config(kind: str, name: str, **fields: Any) -> Any:
    """The validated config instance that [`build`][gen.build] would pass to the factory."""
    return validate_component(kind, {"name": name, **fields}, section=kind, file=None).config


__all__ = [
    "ComponentSpec",
    "build",
    "build_component",
    "merge",
    "registered",
    "resolve_config",
    "to_table",
    "validate_component",
    "validate_config",
]
