"""Recipes: extends chains, overrides of every TOML value type, `recipe show` round trip, gen.build."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.recipe import load_recipe, parse_override, recipe_to_toml

runner = CliRunner()


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def base(tmp_path):
    write(
        tmp_path / "base.toml",
        """
        [backbone]
        name = "toynet"
        width = 16
        act = "gelu"

        [data]
        name = "toyset"

        [train]
        steps = 100
        ema_decays = [0.999]
        """,
    )
    return tmp_path / "base.toml"


def test_extends_chain_merges_key_by_key(toy_host, tmp_path, base):
    (tmp_path / "sub").mkdir()
    write(
        tmp_path / "sub" / "mid.toml",
        'extends = "../base.toml"\n[backbone]\nwidth = 32\n[train]\nblr = 1e-4\n',
    )
    write(tmp_path / "sub" / "leaf.toml", 'extends = "mid.toml"\n[train]\nsteps = 7\n')
    recipe = load_recipe(tmp_path / "sub" / "leaf.toml")
    assert recipe.backbone.config.width == 32  # from mid
    assert recipe.backbone.config.act == "gelu"  # from base, kept by the key-by-key merge
    assert recipe.train.steps == 7 and recipe.train.blr == 1e-4 and recipe.train.ema_decays == (0.999,)
    assert recipe.backbone.explicit == {"width", "act"}


def test_extends_list_and_component_switch_replaces_table(toy_host, tmp_path, base):
    write(tmp_path / "sched.toml", "[objective.schedule]\nlow = 0.5\n")
    write(tmp_path / "leaf.toml", 'extends = ["base.toml", "sched.toml"]\n')
    recipe = load_recipe(tmp_path / "leaf.toml")
    assert recipe.objective.schedule.name == "logit_normal"
    assert recipe.objective.schedule.config.low == 0.5
    # Switching the component drops the old component's options instead of failing on `low`.
    recipe = load_recipe(tmp_path / "leaf.toml", ["objective.schedule={name='uniform'}"])
    assert recipe.objective.schedule.name == "uniform" and recipe.objective.schedule.config is None
    recipe = load_recipe(tmp_path / "leaf.toml", ["objective.schedule.low=0.25"])
    assert recipe.objective.schedule.config.low == 0.25


def test_string_shorthand_for_components(toy_host, base):
    recipe = load_recipe(base, ["sample.sampler='heun'", "objective.schedule=uniform"])
    assert recipe.sample.sampler.name == "heun"
    assert recipe.objective.schedule.name == "uniform"
    # A dotted override into a component given as a bare name turns it into a table.
    recipe = load_recipe(base, ["objective.schedule=logit_normal", "objective.schedule.low=0.1"])
    assert recipe.objective.schedule.config.low == 0.1


@pytest.mark.parametrize(
    ("override", "attr", "expected"),
    [
        ("backbone.width=64", "width", 64),  # integer
        ("backbone.ratio=2.5e-1", "ratio", 0.25),  # float
        ("backbone.ratio=3", "ratio", 3.0),  # integer accepted for a float
        ("backbone.bias=false", "bias", False),  # boolean
        ('backbone.tag="L/16"', "tag", "L/16"),  # basic string
        ("backbone.tag='a \\b'", "tag", "a \\b"),  # literal string
        ("backbone.tag=L/16", "tag", "L/16"),  # bare word (the shell ate the quotes)
        ("backbone.scales=[1, 2, 4]", "scales", (1, 2, 4)),  # array -> tuple
        ("backbone.scales=[]", "scales", ()),  # empty array
        ("backbone.interval=[0.1, 1]", "interval", (0.1, 1.0)),  # pair
        ("backbone.extra={a = 1, b = 2}", "extra", {"a": 1, "b": 2}),  # inline table
        ("backbone.limit=4", "limit", 4),  # optional
    ],
)
def test_override_value_types(toy_host, base, override, attr, expected):
    recipe = load_recipe(base, [override])
    value = getattr(recipe.backbone.config, attr)
    assert value == expected and type(value) is type(expected)


def test_parse_override_every_toml_type():
    assert parse_override("a.b=1") == (["a", "b"], 1)
    assert parse_override("a.b=-1.5") == (["a", "b"], -1.5)
    assert parse_override("a.b=inf")[1] == float("inf")
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("a.b='x y'") == (["a", "b"], "x y")
    assert parse_override('a.b="x"') == (["a", "b"], "x")
    assert parse_override("a.b=[1, 'two', [3]]") == (["a", "b"], [1, "two", [3]])
    assert parse_override("a.b={c = 1}") == (["a", "b"], {"c": 1})
    assert parse_override("a.b=2026-11-22") == (["a", "b"], dt.date(2026, 11, 22))
    assert parse_override("a.b=2026-11-22T10:00:00Z")[1] == dt.datetime(
        2026, 11, 22, 10, tzinfo=dt.timezone.utc
    )
    assert parse_override("a.b=07:30:00") == (["a", "b"], dt.time(7, 30))
    assert parse_override(" a.b = 3 ") == (["a", "b"], 3)
    with pytest.raises(gen.RecipeError, match="is not a TOML value"):
        parse_override("a.b=[1, 2")
    with pytest.raises(gen.RecipeError, match="write SECTION.KEY=VALUE"):
        parse_override("=3")


def test_recipe_show_round_trip(toy_host, tmp_path, base):
    result = runner.invoke(app, ["recipe", "show", str(base), "train.lr=3e-4", "backbone.scales=[3]"])
    assert result.exit_code == 0, result.output
    shown = tmp_path / "shown.toml"
    shown.write_text(result.stdout)
    original = load_recipe(base, ["train.lr=3e-4", "backbone.scales=[3]"])
    again = load_recipe(shown)
    assert again == original
    assert again.train.lr == 3e-4 and again.backbone.config.scales == (3,)
    # Everything is spelled out, so a second round gives the same text.
    assert recipe_to_toml(again) == recipe_to_toml(original)
    assert "[objective.schedule]" in result.stdout and 'name = "logit_normal"' in result.stdout


def test_build_validates_like_a_recipe(toy_host):
    with pytest.raises(gen.RecipeError) as e:
        gen.build("backbone", "toynet", width=0)
    assert str(e.value) == "[backbone] width: must be >= 1: 0"
    with pytest.raises(gen.RecipeError) as e:
        gen.build("backbone", "toynet", wdth=3)
    assert str(e.value).startswith("[backbone] wdth: unknown key; did you mean 'width'?")
    with pytest.raises(gen.RecipeError, match=r"unknown backbone 'nope'\. Known backbones: toynet"):
        gen.build("backbone", "nope")
    config = gen.resolve_config("backbone", "toynet", scales=[5, 6])
    assert config.scales == (5, 6)


def test_load_recipe_api(toy_host, base):
    recipe = gen.load_recipe(base, overrides=["train.steps=3"])
    assert recipe.train.steps == 3
    assert recipe.source == str(base)
    net = recipe.backbone.build()
    assert net.cfg.width == 16
