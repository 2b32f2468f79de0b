"""The plugin manager: loads every plugin of the entry-point group ``gen`` and fills the registries.

First-party plugins (``gen_jit``, ``gen_flow``...) are entry points of this group exactly like
third-party ones. ``GEN_PLUGINS=gen_jit,gen_flow`` restricts loading to the named plugins
(``GEN_PLUGINS=""`` loads none). A plugin that fails to import, implements a hook that does not
exist, or raises inside a hook is recorded in `PluginHost.errors` (shown by ``gen plugins`` and
as a warning by the CLI); the other plugins keep working.
"""

from __future__ import annotations

import os
import traceback
from importlib import metadata
from typing import Any

import attrs
import pluggy

from gen import hookspecs
from gen.errors import DuplicateComponentError
from gen.registry import KINDS, Registry, check_kind, make_register

ENTRY_POINT_GROUP = "gen"
ENV_VAR = "GEN_PLUGINS"


@attrs.define
class PluginError:
    """A plugin that could not be loaded or whose hook failed."""

    plugin: str
    error: str


@attrs.define
class PluginInfo:
    """What ``gen plugins`` shows of a loaded plugin."""

    name: str
    version: str | None
    hooks: list[str]
    components: dict[str, list[str]]


class PluginHost:
    """Owns the pluggy manager, the loaded plugins and the registries built from them."""

    def __init__(self, *, load_entry_points: bool = True):
        self.pm = pluggy.PluginManager("gen")
        self.pm.add_hookspecs(hookspecs)
        self.errors: list[PluginError] = []
        self.versions: dict[str, str | None] = {}
        self._registries: dict[str, Registry] | None = None
        if load_entry_points:
            self._load_entry_points()

    # -- loading ----------------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        wanted = os.environ.get(ENV_VAR)
        allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if allowed is not None and ep.name not in allowed:
                continue
            if self.pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as e:  # noqa: BLE001 - any import failure is reported, not raised
                self.errors.append(PluginError(ep.name, f"failed to import: {type(e).__name__}: {e}"))
                continue
            version = ep.dist.version if ep.dist is not None else None
            self.register(module, name=ep.name, version=version)

    def register(self, plugin: Any, *, name: str, version: str | None = None) -> bool:
        """Register a plugin object (a module, a class or an instance with hook implementations).

        Returns False (and records the error) when it implements a hook that does not exist.
        """
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as e:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self.errors.append(PluginError(name, f"invalid hook implementation: {e}"))
            return False
        self.versions[name] = version
        self._registries = None
        return True

    def unregister(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.versions.pop(name, None)
        self._registries = None

    # -- registries -------------------------------------------------------------------------------
    @property
    def registries(self) -> dict[str, Registry]:
        if self._registries is None:
            self._registries = self._build_registries()
        return self._registries

    def _build_registries(self) -> dict[str, Registry]:
        registries = {kind: Registry(kind) for kind in KINDS}
        for kind, hook_name in KINDS.items():
            hook = getattr(self.pm.hook, hook_name)
            # Call each implementation separately (in registration order) so that a failure names its
            # plugin and spares the rest.
            for impl in hook.get_hookimpls():
                try:
                    impl.function(register=make_register(registries[kind], impl.plugin_name))
                except DuplicateComponentError:
                    raise
                except Exception as e:  # noqa: BLE001
                    tb = traceback.format_exception_only(type(e), e)[-1].strip()
                    self.errors.append(PluginError(impl.plugin_name, f"{hook_name} failed: {tb}"))
        return registries

    def add_commands(self, app: Any) -> None:
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(app=app)
            except Exception as e:  # noqa: BLE001
                self.errors.append(PluginError(impl.plugin_name, f"register_commands failed: {e}"))

    def plugins(self) -> list[PluginInfo]:
        """Loaded plugins, their versions, hooks and the components each registered."""
        regs = self.registries
        out = []
        for name, plugin in sorted(self.pm.list_name_plugin()):
            if plugin is None:
                continue
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            components: dict[str, list[str]] = {}
            for kind, reg in regs.items():
                names = [c.name for c in reg if c.plugin == name]
                if names:
                    components[kind] = names
            out.append(PluginInfo(name, self.versions.get(name), hooks, components))
        return out


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, created (and entry points loaded) on first use."""
    global _host
    if _host is None:
        _host = PluginHost()
    return _host


def reset_host(host: PluginHost | None = None) -> PluginHost:
    """Replace the process-wide host (tests use this to start from a clean slate)."""
    global _host
    _host = host if host is not None else PluginHost()
    return _host


def get_registry(kind: str) -> Registry:
    """The registry of ``kind``, filled from every loaded plugin (loads plugins on first use)."""
    check_kind(kind)
    return get_host().registries[kind]


def command_group(parent: Any, name: str, help: str) -> Any:
    """The Typer sub-app ``name`` of the Typer app ``parent``, created with ``help`` unless another plugin
    made it first: plugins that each add a command to one group (``gen convert jit``, ``gen convert
    dit``) call it from their ``register_commands`` hook and share the group."""
    for group in parent.registered_groups:
        if group.name == name and group.typer_instance is not None:
            return group.typer_instance
    import typer  # only where commands are built: `import gen` stays free of it

    group_app = typer.Typer(help=help, no_args_is_help=True)
    parent.add_typer(group_app, name=name)
    return group_app
