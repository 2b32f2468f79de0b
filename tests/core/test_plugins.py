"""Plugin discovery, broken plugins, duplicate names, GEN_PLUGINS, and `gen plugins`."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.plugins import PluginHost, get_host, reset_host

runner = CliRunner()


def install_fake_dist(root, dist: str, module: str, code: str) -> None:
    """Make ``dist`` look installed: a dist-info with an entry point of group ``gen`` on sys.path."""
    info = root / f"{dist}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[gen]\n{dist} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(code))


GOOD_PLUGIN = """
import gen

def build_echo(cfg):
    '''Returns its input.'''
    return lambda velocity_fn, z0, timesteps: z0

@gen.hookimpl
def register_samplers(register):
    register("echo", build_echo)
"""


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    old = get_host()
    yield tmp_path
    reset_host(old)


def test_throwaway_plugin_registered_in_fixture(toy_host):
    assert gen.get_registry("backbone").names() == ["toynet"]
    component = gen.get_registry("backbone").get("toynet")
    assert component.plugin == "toy"
    assert component.description == "A one-layer toy backbone."
    net = gen.build("backbone", "toynet", width=3, input_dim=5)
    assert net.cfg.width == 3 and net.lin.in_features == 5


def test_installed_entry_point_is_discovered(fake_site):
    install_fake_dist(fake_site, "gen_echo_plugin", "gen_echo_mod", GOOD_PLUGIN)
    host = reset_host(PluginHost())
    assert "echo" in host.registries["sampler"]
    info = {p.name: p for p in host.plugins()}["gen_echo_plugin"]
    assert info.version == "1.2.3"
    assert info.hooks == ["register_samplers"]
    assert info.components == {"sampler": ["echo"]}
    # The first-party plugins are entry points of the same group.
    assert {"gen_jit", "gen_flow", "gen_data", "gen_dit"} <= set(host.versions)


def test_broken_plugin_is_reported_and_others_keep_working(fake_site):
    install_fake_dist(fake_site, "gen_echo_plugin", "gen_echo_mod", GOOD_PLUGIN)
    install_fake_dist(
        fake_site, "gen_broken", "gen_broken_mod", "raise ImportError('no module named cupy')\n"
    )
    install_fake_dist(
        fake_site,
        "gen_badhook",
        "gen_badhook_mod",
        "import gen\n\n@gen.hookimpl\ndef register_widgets(register):\n    pass\n",
    )
    install_fake_dist(
        fake_site,
        "gen_raises",
        "gen_raises_mod",
        "import gen\n\n@gen.hookimpl\ndef register_datasets(register):\n    raise RuntimeError('boom')\n",
    )
    reset_host(PluginHost())
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    errors = {e["plugin"]: e["error"] for e in data["errors"]}
    assert errors["gen_broken"] == "failed to import: ImportError: no module named cupy"
    assert errors["gen_badhook"].startswith("invalid hook implementation: unknown hook 'register_widgets'")
    assert errors["gen_raises"] == "register_datasets failed: RuntimeError: boom"
    assert "gen_echo_plugin" in {p["name"] for p in data["plugins"]}
    assert "gen_badhook" not in {p["name"] for p in data["plugins"]}
    # Every command warns about them on stderr, once each.
    assert (
        "warning: plugin 'gen_broken': failed to import: ImportError: no module named cupy" in result.stderr
    )


def test_duplicate_names_name_both_plugins(toy_host):
    class Again:
        @gen.hookimpl
        def register_backbones(self, register):
            register("toynet", lambda cfg: None)

    toy_host.register(Again(), name="again")
    with pytest.raises(gen.DuplicateComponentError) as e:
        gen.get_registry("backbone")
    assert str(e.value) == (
        "backbone 'toynet' is registered twice: by plugin 'toy' and by plugin 'again'; "
        "uninstall one of them or restrict loading with GEN_PLUGINS"
    )


def test_gen_plugins_env_restricts_loading(fake_site, monkeypatch):
    install_fake_dist(fake_site, "gen_echo_plugin", "gen_echo_mod", GOOD_PLUGIN)
    monkeypatch.setenv("GEN_PLUGINS", "gen_echo_plugin")
    host = reset_host(PluginHost())
    assert set(host.versions) == {"gen_echo_plugin"}
    monkeypatch.setenv("GEN_PLUGINS", "")
    assert reset_host(PluginHost()).versions == {}


def test_unknown_name_lists_known_and_closest(toy_host):
    with pytest.raises(gen.UnknownComponentError) as e:
        gen.get_registry("backbone").get("toynte")
    assert str(e.value) == "unknown backbone 'toynte'; did you mean 'toynet'? Known backbones: toynet"
    with pytest.raises(gen.UnknownComponentError, match="unknown component kind 'backbones'; did you mean"):
        gen.get_registry("backbones")


def test_plugins_table_and_components(toy_host):
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0
    assert "toy" in result.stdout and "toynet" in result.stdout
    result = runner.invoke(app, ["components", "backbone", "--json"])
    assert result.exit_code == 0
    (net,) = json.loads(result.stdout)["backbone"]
    width = next(f for f in net["fields"] if f["name"] == "width")
    assert width == {"name": "width", "type": "int", "default": "8", "doc": "Hidden width."}
    limit = next(f for f in net["fields"] if f["name"] == "limit")
    assert limit["type"] == "int | None"


def test_config_class_must_be_attrs(toy_host):
    class NotAttrs:
        pass

    class Bad:
        @gen.hookimpl
        def register_samplers(self, register):
            register("bad", lambda cfg: None, config=NotAttrs)

    toy_host.register(Bad(), name="bad")
    gen.get_registry("sampler")
    assert any(e.plugin == "bad" and "config must be an attrs class" in e.error for e in toy_host.errors)
