"""Config classes: attrs classes whose every field has a default and a one-line doc.

A component declares its configuration as ``@attrs.frozen(kw_only=True)`` class built from
[`field`][gen.config.field]. The recipe loader validates a TOML table into it (unknown keys, types,
ranges), the docs and ``gen components`` are generated from it, and ``gen recipe show`` prints it back.

Supported field types are the ones TOML can express: ``bool``, ``int``, ``float``, ``str``, ``Literal``,
``X | None``, ``tuple[T, ...]``, ``tuple[A, B]``, ``list[T]`` and ``dict[str, T]``, plus nested config
classes and component selectors (see [`component_field`][gen.config.component_field]).
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Literal, Union

import attrs

__all__ = [
    "field",
    "component_field",
    "component_list_field",
    "fields_of",
    "FieldInfo",
    "check_value",
    "type_name",
]

_NOTHING = attrs.NOTHING


def field(default: Any, *, doc: str, validator: Any = None, converter: Any = None) -> Any:
    """An attrs field with a default and a one-line doc (shown by ``gen components`` and the docs).

    Args:
        default: The default value. Use a tuple, not a list, for sequences (config classes are frozen).
        doc: One line that says what the field means, in the recipe author's terms.
        validator: An attrs validator (``attrs.validators.ge(0)``...) checked at construction.
        converter: An attrs converter.
    """
    return attrs.field(default=default, validator=validator, converter=converter, metadata={"doc": doc})


def component_field(kind: str, default: str | None, *, doc: str) -> Any:
    """A field that selects a registered component of ``kind`` (a nested ``name = ...`` table).

    In TOML the value is either a table (``[objective.schedule]`` with ``name`` and the component's
    config keys) or just the name as a string (``schedule = "uniform"``).
    """
    return attrs.field(default=default, metadata={"doc": doc, "component": kind})


def component_list_field(kind: str, *, doc: str) -> Any:
    """A field that selects any number of registered components of ``kind`` (default: none).

    In TOML the value is a list whose items are names or tables with ``name`` and the component's config
    keys (``loggers = ["tensorboard", {name = "wandb", project = "jit"}]``, or ``[[train.loggers]]``
    tables); it is validated into a tuple of [`gen.ComponentSpec`][].
    """
    return attrs.field(default=(), metadata={"doc": doc, "components": kind})


@attrs.frozen
class FieldInfo:
    """What the docs and ``gen components`` show of one config field."""

    name: str
    type: Any
    default: Any
    doc: str
    component: str | None


def fields_of(cls: type) -> list[FieldInfo]:
    """The documented fields of a config class ([`FieldInfo`][gen.config.FieldInfo]), with resolved types."""
    attrs.resolve_types(cls)
    out = []
    for f in attrs.fields(cls):
        out.append(
            FieldInfo(
                name=f.name,
                type=f.type,
                default=f.default,
                doc=f.metadata.get("doc", ""),
                component=f.metadata.get("component"),
            )
        )
    return out


def type_name(tp: Any) -> str:
    """A short human name of a field type: ``int``, ``float | None``, ``tuple[float, float]``."""
    if tp is type(None):
        return "None"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"tuple[{type_name(args[0])}, ...]"
        return f"tuple[{', '.join(type_name(a) for a in args)}]"
    if origin is list:
        return f"list[{type_name(args[0])}]"
    if origin is dict:
        return f"dict[{type_name(args[0])}, {type_name(args[1])}]"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp)


class _Mismatch(Exception):
    pass


class _NotFinite(Exception):
    pass


def check_value(value: Any, tp: Any) -> Any:
    """Check a TOML value against a field type; return it converted (lists to tuples, ints to floats).

    Non-finite floats (``inf``, ``nan``, which TOML can write) are refused wherever a float is expected:
    no option of a recipe means anything with them.

    Raises:
        TypeError: with a message such as ``expected float, got str 'abc'``.
    """
    try:
        return _check(value, tp)
    except _Mismatch:
        raise TypeError(f"expected {type_name(tp)}, got {type(value).__name__} {value!r}") from None
    except _NotFinite:
        raise TypeError(f"expected a finite number, got {value!r}") from None


def _check(value: Any, tp: Any) -> Any:
    if tp is Any:
        return value
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        for a in args:
            if type(value) is type(a) and value == a:
                return value
        raise _Mismatch
    if origin in (Union, types.UnionType):
        for a in args:
            try:
                return _check(value, a)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check(v, args[0]) for v in value)
        if len(value) != len(args):
            raise _Mismatch
        return tuple(_check(v, a) for v, a in zip(value, args, strict=True))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        return [_check(v, args[0]) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return {_check(k, args[0]): _check(v, args[1]) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                finite = math.isfinite(value)
            except OverflowError:  # an integer beyond the float range
                finite = False
            if not finite:
                raise _NotFinite
            return float(value)
        raise _Mismatch
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Mismatch
    return value
