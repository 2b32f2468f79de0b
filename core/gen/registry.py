"""Typed registries of components, one per kind, filled by the plugins' ``register_<kind>`` hooks."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import attrs

from gen.errors import DuplicateComponentError, UnknownComponentError

T = TypeVar("T")

#: kind -> name of the hook that fills its registry.
KINDS: dict[str, str] = {
    "backbone": "register_backbones",
    "prediction": "register_predictions",
    "schedule": "register_schedules",
    "sampler": "register_samplers",
    "time_grid": "register_time_grids",
    "dataset": "register_datasets",
    "process": "register_processes",
    "autoencoder": "register_autoencoders",
    "logger": "register_loggers",
    "exporter": "register_exporters",
    "loss_term": "register_loss_terms",
}


@attrs.frozen(kw_only=True)
class Component(Generic[T]):
    """One registered component.

    Attributes:
        kind: The registry it lives in (``backbone``, ``sampler``...).
        name: The name a recipe selects it by.
        factory: ``factory(config) -> T``.
        config: Its attrs config class, or ``None`` when it takes no options.
        description: One line for ``gen components`` and the docs.
        plugin: The name of the plugin that registered it.
        process: For a sampler: the registered process it samples (``flow``, ``ddpm``), so that a model
            of another process refuses it by name; None where it does not say.
    """

    kind: str
    name: str
    factory: Callable[[Any], T]
    config: type | None
    description: str
    plugin: str
    process: str | None = None

    def make_config(self, **fields: Any) -> Any:
        """Instantiate the config class (no validation beyond attrs'; see `gen.build`)."""
        if self.config is None:
            return None
        return self.config(**fields)


def check_kind(kind: str) -> None:
    """Raise `gen.UnknownComponentError` (with the closest kind) unless ``kind`` is a registry."""
    if kind not in KINDS:
        close = difflib.get_close_matches(kind, list(KINDS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise UnknownComponentError(f"unknown component kind {kind!r}{hint} Kinds: {', '.join(KINDS)}")


class Registry(Generic[T]):
    """Components of one kind by name. Duplicate names are an error that names both plugins."""

    def __init__(self, kind: str):
        self.kind = kind
        self._components: dict[str, Component[T]] = {}

    def add(self, component: Component[T]) -> None:
        if component.process is not None and self.kind != "sampler":
            raise TypeError(
                f"plugin {component.plugin!r}: {self.kind} {component.name!r}: only a sampler says which "
                "process it samples (process=...)"
            )
        config = component.config
        if config is not None and not (isinstance(config, type) and attrs.has(config)):
            raise TypeError(
                f"plugin {component.plugin!r}: {self.kind} {component.name!r}: config must be an attrs "
                f"class, got {component.config!r}"
            )
        old = self._components.get(component.name)
        if old is not None:
            raise DuplicateComponentError(
                f"{self.kind} {component.name!r} is registered twice: by plugin {old.plugin!r} and by "
                f"plugin {component.plugin!r}; uninstall one of them or restrict loading with GEN_PLUGINS"
            )
        self._components[component.name] = component

    def get(self, name: str) -> Component[T]:
        try:
            return self._components[name]
        except KeyError:
            raise UnknownComponentError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        known = sorted(self._components)
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        known_text = ", ".join(known) if known else "none (is a plugin missing? see `gen plugins`)"
        return f"unknown {self.kind} {name!r}{hint} Known {self.kind}s: {known_text}"

    def names(self) -> list[str]:
        return sorted(self._components)

    def __contains__(self, name: object) -> bool:
        return name in self._components

    def __iter__(self) -> Iterator[Component[T]]:
        return iter(sorted(self._components.values(), key=lambda c: c.name))

    def __len__(self) -> int:
        return len(self._components)


def make_register(registry: Registry, plugin: str) -> Callable[..., None]:
    """The ``register`` callable handed to one plugin's ``register_<kind>`` hook."""

    def register(
        name: str,
        factory: Callable[[Any], Any],
        *,
        config: type | None = None,
        description: str | None = None,
        process: str | None = None,
    ) -> None:
        if description is None:
            doc = inspect.getdoc(factory) or ""
            description = doc.strip().splitlines()[0] if doc.strip() else ""
        registry.add(
            Component(
                kind=registry.kind,
                name=name,
                factory=factory,
                config=config,
                description=description,
                plugin=plugin,
                process=process,
            )
        )

    return register


__all__ = ["KINDS", "Component", "Registry", "check_kind", "make_register"]
