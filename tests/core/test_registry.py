"""Registries of components (gen.registry) and gen.get_registry's check of the kind."""

from __future__ import annotations

import attrs
import pytest

import gen
from gen.errors import DuplicateComponentError, GenError, UnknownComponentError
from gen.plugins import PluginHost, get_host, get_registry, reset_host
from gen.registry import KINDS, Component, Registry, check_kind, make_register


@attrs.frozen(kw_only=True)
class StepConfig:
    size: float = gen.field(0.5, doc="Step size.")
    order: int = gen.field(1, doc="Order.")


class NotAttrs:
    size: float = 0.5


def build_euler(config):
    """Euler: first order.

    A longer explanation that is not the description.
    """
    return ("euler", config)


def build_heun(config):
    """

    Heun, after a blank first line.
    Second line.
    """
    return ("heun", config)


def build_nodoc(config):
    return config


@pytest.fixture
def reg():
    return Registry("sampler")


def test_register_fills_the_component(reg):
    register = make_register(reg, "gen_flow")
    register("euler", build_euler, config=StepConfig)
    c = reg.get("euler")
    assert isinstance(c, Component)
    assert c.kind == "sampler"
    assert c.name == "euler"
    assert c.factory is build_euler
    assert c.config is StepConfig
    assert c.plugin == "gen_flow"
    assert c.description == "Euler: first order."


def test_description_defaults_to_the_first_docstring_line(reg):
    register = make_register(reg, "p")
    register("heun", build_heun)
    register("nodoc", build_nodoc)
    register("lam", lambda config: config)
    register("explicit", build_euler, description="Given explicitly.")
    assert reg.get("heun").description == "Heun, after a blank first line."
    assert reg.get("nodoc").description == ""
    assert reg.get("lam").description == ""
    assert reg.get("explicit").description == "Given explicitly."
    # An explicit empty description is kept, not replaced by the docstring.
    register("empty", build_euler, description="")
    assert reg.get("empty").description == ""


def test_make_config(reg):
    register = make_register(reg, "p")
    register("euler", build_euler, config=StepConfig)
    register("plain", build_nodoc)
    assert reg.get("euler").make_config() == StepConfig()
    assert reg.get("euler").make_config(size=0.25, order=2) == StepConfig(size=0.25, order=2)
    assert reg.get("plain").make_config() is None
    with pytest.raises(TypeError):
        reg.get("euler").make_config(nope=1)


def test_duplicate_names_both_plugins(reg):
    make_register(reg, "gen_flow")("euler", build_euler)
    with pytest.raises(DuplicateComponentError) as info:
        make_register(reg, "gen_fast")("euler", build_heun)
    assert str(info.value) == (
        "sampler 'euler' is registered twice: by plugin 'gen_flow' and by plugin 'gen_fast'; "
        "uninstall one of them or restrict loading with GEN_PLUGINS"
    )
    assert isinstance(info.value, GenError)
    # The first registration stays.
    assert reg.get("euler").factory is build_euler
    assert reg.get("euler").plugin == "gen_flow"
    assert len(reg) == 1


def test_duplicate_within_one_plugin(reg):
    register = make_register(reg, "p")
    register("euler", build_euler)
    with pytest.raises(DuplicateComponentError, match="by plugin 'p' and by plugin 'p'"):
        register("euler", build_euler)


def test_config_must_be_an_attrs_class(reg):
    with pytest.raises(TypeError) as info:
        make_register(reg, "p")("bad", build_euler, config=NotAttrs)
    assert str(info.value) == (f"plugin 'p': sampler 'bad': config must be an attrs class, got {NotAttrs!r}")
    assert "bad" not in reg
    assert len(reg) == 0


def test_config_instance_is_refused(reg):
    # A plugin that passes config=StepConfig() by mistake is accepted today; gen.build then fails with
    # attrs' FrozenInstanceError ("can't set attribute") instead of naming the plugin.
    try:
        make_register(reg, "p")("inst", build_euler, config=StepConfig())
    except TypeError as e:
        assert "config must be an attrs class" in str(e)
    else:
        raise AssertionError("an attrs instance was accepted as a config class")


def test_unknown_name_suggests_the_closest_and_lists_the_known(reg):
    register = make_register(reg, "p")
    for name in ("heun", "euler", "ab2"):
        register(name, build_nodoc)
    with pytest.raises(UnknownComponentError) as info:
        reg.get("eulr")
    assert str(info.value) == "unknown sampler 'eulr'; did you mean 'euler'? Known samplers: ab2, euler, heun"
    assert isinstance(info.value, GenError)
    assert reg.unknown_message("zzzz") == "unknown sampler 'zzzz'. Known samplers: ab2, euler, heun"
    # A non-string name (a recipe may hold anything) still gives the message.
    assert reg.unknown_message(3) == "unknown sampler 3. Known samplers: ab2, euler, heun"


def test_unknown_name_in_an_empty_registry(reg):
    with pytest.raises(UnknownComponentError) as info:
        reg.get("euler")
    assert str(info.value) == (
        "unknown sampler 'euler'. Known samplers: none (is a plugin missing? see `gen plugins`)"
    )


def test_names_iteration_len_contains(reg):
    assert reg.names() == []
    assert list(reg) == []
    assert len(reg) == 0
    register = make_register(reg, "p")
    for name in ("heun", "euler", "ab2", "Zeta"):
        register(name, build_nodoc)
    assert reg.names() == ["Zeta", "ab2", "euler", "heun"]  # sorted, not in registration order
    assert [c.name for c in reg] == ["Zeta", "ab2", "euler", "heun"]
    assert all(isinstance(c, Component) for c in reg)
    assert len(reg) == 4
    assert "euler" in reg
    assert "eule" not in reg
    assert 3 not in reg
    # names() is a copy: changing it does not change the registry.
    reg.names().append("x")
    assert reg.names() == ["Zeta", "ab2", "euler", "heun"]


def test_check_kind():
    for kind in KINDS:
        check_kind(kind)  # no error
    with pytest.raises(UnknownComponentError) as info:
        check_kind("samplers")
    assert str(info.value) == (
        "unknown component kind 'samplers'; did you mean 'sampler'? "
        "Kinds: backbone, prediction, schedule, sampler, time_grid, dataset, process, autoencoder, logger, "
        "exporter, loss_term"
    )
    with pytest.raises(UnknownComponentError) as info:
        check_kind("zzz")
    assert str(info.value) == (
        "unknown component kind 'zzz'. Kinds: backbone, prediction, schedule, sampler, time_grid, dataset, process, autoencoder, logger, "
        "exporter, loss_term"
    )


def test_kinds_name_their_hooks():
    assert KINDS == {
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


class EchoPlugin:
    @gen.hookimpl
    def register_samplers(self, register):
        register("echo", build_euler)


@pytest.fixture
def echo_host():
    old = get_host()
    host = reset_host(PluginHost(load_entry_points=False))
    assert host.register(EchoPlugin(), name="echo_plugin")
    yield host
    reset_host(old)


def test_get_registry_returns_the_hosts_registry(echo_host):
    reg = get_registry("sampler")
    assert reg is echo_host.registries["sampler"]
    assert reg is gen.get_registry("sampler")
    assert reg.kind == "sampler"
    assert reg.names() == ["echo"]
    assert reg.get("echo").plugin == "echo_plugin"
    assert reg.get("echo").description == "Euler: first order."
    assert get_registry("backbone").names() == []


def test_get_registry_unknown_kind(echo_host):
    with pytest.raises(UnknownComponentError) as info:
        gen.get_registry("backbones")
    assert str(info.value).startswith("unknown component kind 'backbones'; did you mean 'backbone'?")
    with pytest.raises(gen.UnknownComponentError, match="did you mean 'schedule'"):
        get_registry("shedule")
