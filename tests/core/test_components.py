"""Component selection and validation (gen.components) and config field types (gen.config).

The plugin host of these tests holds exactly gen_flow (predictions x/eps/v, schedules logit_normal and
uniform, samplers euler/heun/ab2/dpmpp_2m/dpmpp_3m) and the test plugin below, whatever else is installed.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional

import attrs
import pytest
from attrs import validators as v

import gen
import gen_flow
from gen.components import (
    ComponentSpec,
    build,
    build_component,
    registered,
    resolve_config,
    validate_component,
    validate_config,
)
from gen.config import FieldInfo, check_value, fields_of, type_name
from gen.errors import RecipeError, UnknownComponentError
from gen.plugins import PluginHost, get_host, reset_host
from gen_flow import solvers
from gen_flow.schedules import LogitNormal, LogitNormalConfig, Uniform, UniformConfig

# -- config classes and a plugin of the tests --------------------------------------------------------


@attrs.frozen(kw_only=True)
class WidgetConfig:
    depth: int = gen.field(2, doc="Depth.", validator=v.ge(1))
    ratio: float = gen.field(0.5, doc="A ratio.", validator=[v.gt(0), v.le(1)])
    mode: str = gen.field("fast", doc="Speed.", validator=v.in_(("fast", "slow")))
    act: Literal["relu", "gelu"] = gen.field("relu", doc="Activation.")
    limit: int | None = gen.field(None, doc="Optional cap.", validator=v.optional(v.ge(0)))
    scale: float = gen.field(1.0, doc="A scale.")
    scales: tuple[int, ...] = gen.field((1, 2), doc="Scales.")
    interval: tuple[float, float] = gen.field((0.0, 1.0), doc="A pair.")
    names: list[str] = gen.field(attrs.Factory(list), doc="A list.")
    extra: dict[str, int] = gen.field(attrs.Factory(dict), doc="A table.")
    hidden: int = attrs.field(default=7, init=False)
    internal: int = attrs.field(default=0, metadata={"recipe": False, "doc": "Not a recipe key."})

    def __attrs_post_init__(self):
        if self.limit is not None and self.limit > self.depth:
            raise ValueError(f"limit ({self.limit}) must not exceed depth ({self.depth})")


WIDGET_KEYS = "act, depth, extra, interval, limit, mode, names, ratio, scale, scales"


class Widget:
    def __init__(self, cfg: WidgetConfig):
        self.cfg = cfg


def build_widget(cfg: WidgetConfig) -> Widget:
    """A widget backbone (tests)."""
    return Widget(cfg)


@attrs.frozen(kw_only=True)
class InnerConfig:
    alpha: float = gen.field(1.0, doc="Alpha.", validator=v.ge(0))


@attrs.frozen(kw_only=True)
class CompositeConfig:
    size: int = gen.field(4, doc="Size.")
    schedule = gen.component_field("schedule", "logit_normal", doc="How t is drawn.")
    sampler = gen.component_field("sampler", None, doc="The solver (required).")
    inner: InnerConfig = gen.field(InnerConfig(), doc="Nested options.")


@attrs.frozen(kw_only=True)
class PickConfig:
    prediction: str = gen.field("x", doc="A prediction.", validator=registered("prediction"))


@attrs.frozen(kw_only=True)
class NoKeysConfig:
    internal: int = attrs.field(default=0, metadata={"recipe": False})


@attrs.frozen(kw_only=True)
class CountConfig:
    count: int = gen.field(0, doc="Converted by adding one.", converter=lambda n: n + 1)


class WidgetPlugin:
    @gen.hookimpl
    def register_backbones(self, register):
        register("widget", build_widget, config=WidgetConfig)
        register("bare", lambda config: ("bare", config), description="No options.")


@pytest.fixture(autouse=True)
def host():
    old = get_host()
    h = reset_host(PluginHost(load_entry_points=False))
    assert h.register(gen_flow, name="gen_flow")
    assert h.register(WidgetPlugin(), name="widgets")
    assert h.errors == []
    yield h
    reset_host(old)


def recipe_error(fn, *args, **kwargs) -> RecipeError:
    with pytest.raises(RecipeError) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, gen.GenError)
    return info.value


# -- RecipeError's format ----------------------------------------------------------------------------


def test_recipe_error_format():
    assert str(RecipeError("bad", file="r.toml", section="a.b", key="k")) == "r.toml: [a.b] k: bad"
    assert str(RecipeError("bad", file="r.toml", section="a")) == "r.toml: [a]: bad"
    assert str(RecipeError("bad", section="a", key="k")) == "[a] k: bad"
    assert str(RecipeError("bad", file="r.toml")) == "r.toml: bad"
    assert str(RecipeError("bad")) == "bad"
    e = RecipeError("bad", file="f", section="s", key="k")
    assert (e.message, e.file, e.section, e.key) == ("bad", "f", "s", "k")


# -- validate_config ----------------------------------------------------------------------------------


def test_validate_config_converts_every_type():
    table = {
        "depth": 3,
        "ratio": 1,  # int -> float
        "mode": "slow",
        "act": "gelu",
        "limit": 2,
        "scales": [3, 4, 5],  # TOML arrays -> tuples
        "interval": [0, 2],
        "names": ("a", "b"),
        "extra": {"k": 1},
    }
    cfg = validate_config(WidgetConfig, table, section="backbone", file="r.toml")
    assert cfg == WidgetConfig(
        depth=3,
        ratio=1.0,
        mode="slow",
        act="gelu",
        limit=2,
        scales=(3, 4, 5),
        interval=(0.0, 2.0),
        names=["a", "b"],
        extra={"k": 1},
    )
    assert type(cfg.ratio) is float
    assert type(cfg.scales) is tuple
    assert type(cfg.interval) is tuple and all(type(x) is float for x in cfg.interval)
    assert type(cfg.names) is list
    assert cfg.hidden == 7 and cfg.internal == 0


def test_validate_config_empty_table_takes_the_defaults():
    assert validate_config(WidgetConfig, {}, section="backbone", file=None) == WidgetConfig()


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("depht", f"unknown key; did you mean 'depth'? Known keys: {WIDGET_KEYS}"),
        ("scal", f"unknown key; did you mean 'scale' or 'scales'? Known keys: {WIDGET_KEYS}"),
        ("zzzzzz", f"unknown key. Known keys: {WIDGET_KEYS}"),
        # Neither init=False fields nor fields marked recipe=False are recipe keys.
        ("hidden", f"unknown key. Known keys: {WIDGET_KEYS}"),
        ("internal", f"unknown key; did you mean 'interval'? Known keys: {WIDGET_KEYS}"),
    ],
)
def test_unknown_key(key, expected):
    e = recipe_error(validate_config, WidgetConfig, {"depth": 3, key: 1}, section="backbone", file="r.toml")
    assert (e.file, e.section, e.key) == ("r.toml", "backbone", key)
    assert e.message == expected
    assert str(e) == f"r.toml: [backbone] {key}: {expected}"


def test_unknown_key_without_known_keys():
    e = recipe_error(validate_config, NoKeysConfig, {"internal": 1}, section="s", file=None)
    assert str(e) == "[s] internal: unknown key. Known keys: none"


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ({"depth": "3"}, "depth", "expected int, got str '3'"),
        ({"depth": True}, "depth", "expected int, got bool True"),
        ({"depth": 2.0}, "depth", "expected int, got float 2.0"),
        ({"ratio": True}, "ratio", "expected float, got bool True"),
        ({"ratio": "0.5"}, "ratio", "expected float, got str '0.5'"),
        ({"ratio": math.inf}, "ratio", "expected a finite number, got inf"),
        ({"ratio": math.nan}, "ratio", "expected a finite number, got nan"),
        ({"mode": 1}, "mode", "expected str, got int 1"),
        ({"act": "tanh"}, "act", "expected 'relu' | 'gelu', got str 'tanh'"),
        ({"limit": "no"}, "limit", "expected int | None, got str 'no'"),
        ({"scales": 3}, "scales", "expected tuple[int, ...], got int 3"),
        ({"scales": [1, "2"]}, "scales", "expected tuple[int, ...], got list [1, '2']"),
        ({"interval": [0.0]}, "interval", "expected tuple[float, float], got list [0.0]"),
        ({"interval": [0.0, -math.inf]}, "interval", "expected a finite number, got [0.0, -inf]"),
        ({"names": "ab"}, "names", "expected list[str], got str 'ab'"),
        ({"extra": {"k": "v"}}, "extra", "expected dict[str, int], got dict {'k': 'v'}"),
        ({"extra": [1]}, "extra", "expected dict[str, int], got list [1]"),
    ],
)
def test_wrong_type(table, key, message):
    e = recipe_error(validate_config, WidgetConfig, table, section="backbone", file="r.toml")
    assert (e.file, e.section, e.key, e.message) == ("r.toml", "backbone", key, message)
    assert str(e) == f"r.toml: [backbone] {key}: {message}"


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ({"depth": 0}, "depth", "must be >= 1: 0"),
        ({"ratio": 0}, "ratio", "must be > 0: 0.0"),  # the int is a float before the validator
        ({"ratio": 2}, "ratio", "must be <= 1: 2.0"),
        ({"mode": "medium"}, "mode", "must be in ('fast', 'slow') (got 'medium')"),
        ({"limit": -1}, "limit", "must be >= 0: -1"),
    ],
)
def test_validator_ranges(table, key, message):
    e = recipe_error(validate_config, WidgetConfig, table, section="backbone", file=None)
    assert str(e) == f"[backbone] {key}: {message}"
    assert e.key == key and e.file is None


def test_cross_field_check_names_the_section():
    e = recipe_error(
        validate_config, WidgetConfig, {"depth": 2, "limit": 5}, section="backbone", file="r.toml"
    )
    assert str(e) == "r.toml: [backbone]: limit (5) must not exceed depth (2)"
    assert e.key is None
    # Within range: fine.
    assert validate_config(WidgetConfig, {"depth": 5, "limit": 5}, section="b", file=None).limit == 5


def test_table_must_be_a_mapping():
    e = recipe_error(validate_config, WidgetConfig, [1, 2], section="backbone", file="r.toml")
    assert str(e) == "r.toml: [backbone]: must be a table, got list [1, 2]"


def test_registered_validator_in_a_config():
    assert (
        validate_config(PickConfig, {"prediction": "eps"}, section="objective", file=None).prediction == "eps"
    )
    e = recipe_error(validate_config, PickConfig, {"prediction": "xx"}, section="objective", file=None)
    assert (
        str(e)
        == "[objective] prediction: unknown prediction 'xx'; did you mean 'x'? Known predictions: eps, v, x"
    )


def test_registered():
    check = registered("prediction")
    for name in ("x", "eps", "v"):
        assert check(None, None, name) is None
    with pytest.raises(ValueError) as info:
        check(None, None, "y")
    assert str(info.value) == "unknown prediction 'y'. Known predictions: eps, v, x"
    with pytest.raises(ValueError, match="did you mean 'eps'"):
        PickConfig(prediction="epss")
    with pytest.raises(UnknownComponentError, match="unknown component kind 'predictions'"):
        registered("predictions")(None, None, "x")


# -- component fields and nested sections -------------------------------------------------------------


def test_component_fields_and_nested_defaults():
    cfg = validate_config(CompositeConfig, {"sampler": "heun"}, section="data", file=None)
    assert cfg.size == 4
    assert cfg.sampler == ComponentSpec(kind="sampler", name="heun", config=None)
    assert cfg.schedule == ComponentSpec(kind="schedule", name="logit_normal", config=LogitNormalConfig())
    assert cfg.schedule.explicit == frozenset()
    assert cfg.inner == InnerConfig()


def test_component_table_without_name_keeps_the_default():
    cfg = validate_config(
        CompositeConfig, {"sampler": {"name": "ab2"}, "schedule": {"mean": 0}}, section="data", file=None
    )
    assert cfg.schedule.name == "logit_normal"
    assert cfg.schedule.config == LogitNormalConfig(mean=0.0, std=0.8, shift=1.0)
    assert type(cfg.schedule.config.mean) is float
    assert cfg.schedule.explicit == frozenset({"mean"})
    assert cfg.sampler.name == "ab2"
    cfg = validate_config(
        CompositeConfig, {"sampler": "euler", "schedule": "uniform"}, section="d", file=None
    )
    assert cfg.schedule == ComponentSpec(kind="schedule", name="uniform", config=UniformConfig())


def test_missing_required_component_section():
    e = recipe_error(validate_config, CompositeConfig, {"size": 3}, section="data", file="r.toml")
    assert (
        str(e)
        == "r.toml: missing section [data.sampler]: add it with name = one of: ab2, deis_pc, dopri5, dpmpp_2m, dpmpp_3m, euler, euler_maruyama, heun"
    )
    assert (e.file, e.section, e.key) == ("r.toml", None, None)
    # At the top level the section is the field's name.
    e = recipe_error(validate_config, CompositeConfig, {}, section="", file=None)
    assert (
        str(e)
        == "missing section [sampler]: add it with name = one of: ab2, deis_pc, dopri5, dpmpp_2m, dpmpp_3m, euler, euler_maruyama, heun"
    )


def test_errors_inside_component_and_nested_sections():
    cases = [
        (
            {"sampler": "euler", "schedule": {"maen": 0}},
            "r.toml: [data.schedule] maen: unknown key; did you mean 'mean'? Known keys: mean, shift, std",
        ),
        (
            {"sampler": "euler", "schedule": {"std": 0}},
            "r.toml: [data.schedule] std: must be > 0: 0.0",
        ),
        (
            {"sampler": {"steps": 3}},
            "r.toml: [data.sampler] name: missing `name`: set it to one of: ab2, deis_pc, dopri5, dpmpp_2m, dpmpp_3m, euler, euler_maruyama, heun",
        ),
        (
            {"sampler": "eulr"},
            "r.toml: [data.sampler] name: unknown sampler 'eulr'; did you mean 'euler'? Known samplers: ab2, deis_pc, dopri5, dpmpp_2m, dpmpp_3m, euler, euler_maruyama, heun",
        ),
        (
            {"sampler": 3},
            "r.toml: [data.sampler]: must be a component name or a table with `name`, got 3",
        ),
        (
            {"sampler": {"name": "euler", "mean": 0}},
            "r.toml: [data.sampler] mean: sampler 'euler' takes no options; remove mean",
        ),
        (
            {"sampler": "euler", "inner": {"alpha": -1}},
            "r.toml: [data.inner] alpha: must be >= 0: -1.0",
        ),
        (
            {"sampler": "euler", "inner": {"beta": 1}},
            "r.toml: [data.inner] beta: unknown key. Known keys: alpha",
        ),
        (
            {"sampler": "euler", "inner": 3},
            "r.toml: [data.inner]: must be a table, got int 3",
        ),
    ]
    for table, expected in cases:
        e = recipe_error(validate_config, CompositeConfig, table, section="data", file="r.toml")
        assert str(e) == expected, table


# -- validate_component -------------------------------------------------------------------------------


def test_validate_component_name_or_table():
    spec = validate_component("backbone", "widget", section="backbone", file=None)
    assert spec == ComponentSpec(kind="backbone", name="widget", config=WidgetConfig())
    assert spec.explicit == frozenset()
    spec = validate_component("backbone", {"name": "widget", "depth": 3, "ratio": 1}, section="b", file=None)
    assert spec.config == WidgetConfig(depth=3, ratio=1.0)
    assert spec.explicit == frozenset({"depth", "ratio"})
    # `explicit` does not take part in equality.
    assert spec == ComponentSpec(kind="backbone", name="widget", config=WidgetConfig(depth=3, ratio=1.0))
    spec = validate_component("backbone", {"name": "bare"}, section="b", file=None)
    assert spec == ComponentSpec(kind="backbone", name="bare", config=None)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("backbone", {"depth": 3}, "r.toml: [backbone] name: missing `name`: set it to one of: bare, widget"),
        (
            "sampler",
            {"name": None},
            "r.toml: [backbone] name: missing `name`: set it to one of: ab2, deis_pc, dopri5, dpmpp_2m, dpmpp_3m, euler, euler_maruyama, heun",
        ),
        ("backbone", {"name": 3}, "r.toml: [backbone] name: expected str, got int 3"),
        ("backbone", 3.5, "r.toml: [backbone]: must be a component name or a table with `name`, got 3.5"),
        (
            "backbone",
            "widgt",
            "r.toml: [backbone] name: unknown backbone 'widgt'; did you mean 'widget'? Known backbones: bare, widget",
        ),
        (
            "backbone",
            {"name": "bare", "b": 1, "a": 2},
            "r.toml: [backbone] a: backbone 'bare' takes no options; remove a, b",
        ),
        (
            "sampler",
            {"name": "euler", "low": 0.1},
            "r.toml: [backbone] low: sampler 'euler' takes no options; remove low",
        ),
    ],
)
def test_validate_component_errors(kind, value, expected):
    e = recipe_error(validate_component, kind, value, section="backbone", file="r.toml")
    assert str(e) == expected


# -- build, resolve_config, ComponentSpec.build, build_component ---------------------------------------


def test_build_goes_through_the_same_validation():
    sched = build("schedule", "logit_normal", mean=0.5, std=2)
    assert isinstance(sched, LogitNormal)
    assert (sched.mean, sched.std) == (0.5, 2.0)
    assert isinstance(build("schedule", "uniform"), Uniform)
    assert build("sampler", "euler") is solvers.euler
    assert gen.build("sampler", "ab2") is solvers.ab2
    net = gen.build("backbone", "widget", depth=4, scales=[8])
    assert isinstance(net, Widget)
    assert net.cfg == WidgetConfig(depth=4, scales=(8,))

    assert str(recipe_error(build, "schedule", "logit_normal", std=0)) == "[schedule] std: must be > 0: 0.0"
    assert str(recipe_error(build, "schedule", "logit_normal", sdt=1)) == (
        "[schedule] sdt: unknown key; did you mean 'std'? Known keys: mean, shift, std"
    )
    assert str(recipe_error(build, "schedule", "logit_normal", mean="0")) == (
        "[schedule] mean: expected float, got str '0'"
    )
    assert str(recipe_error(build, "sampler", "euler", mean=1)) == (
        "[sampler] mean: sampler 'euler' takes no options; remove mean"
    )
    assert str(recipe_error(build, "sampler", "eulr")) == (
        "[sampler] name: unknown sampler 'eulr'; did you mean 'euler'? Known samplers: ab2, deis_pc, dopri5, dpmpp_2m, dpmpp_3m, euler, euler_maruyama, heun"
    )
    assert str(recipe_error(build, "backbone", "widget", depth=0)) == "[backbone] depth: must be >= 1: 0"


def test_resolve_config():
    cfg = resolve_config("schedule", "logit_normal", mean=1)
    assert cfg == LogitNormalConfig(mean=1.0, std=0.8)
    assert type(cfg.mean) is float
    assert resolve_config("schedule", "uniform") == UniformConfig(shift=1.0)
    assert resolve_config("sampler", "euler") is None
    assert gen.resolve_config("backbone", "widget", interval=[1, 2]).interval == (1.0, 2.0)
    with pytest.raises(RecipeError, match=r"^\[backbone\] mode: must be in"):
        resolve_config("backbone", "widget", mode="x")


def test_spec_build_with_overrides():
    spec = validate_component("backbone", {"name": "widget", "depth": 3}, section="backbone", file=None)
    same = spec.build()
    assert same.cfg is spec.config
    changed = spec.build(ratio=0.25, mode="slow")
    assert changed.cfg == WidgetConfig(depth=3, ratio=0.25, mode="slow")
    assert spec.config == WidgetConfig(depth=3)  # the spec is unchanged
    # Overrides go through attrs' validators.
    with pytest.raises(ValueError, match="'depth' must be >= 1"):
        spec.build(depth=0)
    sched = validate_component("schedule", {"name": "logit_normal", "mean": 0.1}, section="s", file=None)
    built = sched.build(std=3.0)
    assert isinstance(built, LogitNormal) and (built.mean, built.std) == (0.1, 3.0)


def test_build_component():
    assert build_component("sampler", "heun") is solvers.heun
    sched = build_component("schedule", "logit_normal")
    assert isinstance(sched, LogitNormal) and (sched.mean, sched.std) == (-0.8, 0.8)
    spec = validate_component("schedule", {"name": "logit_normal", "std": 2}, section="s", file=None)
    built = build_component("schedule", spec)
    assert isinstance(built, LogitNormal) and built.std == 2.0
    assert build_component("backbone", "widget").cfg == WidgetConfig()
    with pytest.raises(TypeError) as info:
        build_component("sampler", 3)
    assert str(info.value) == "expected a sampler name or a ComponentSpec, got int 3"
    with pytest.raises(UnknownComponentError, match="unknown sampler 'nope'"):
        build_component("sampler", "nope")


# -- check_value ----------------------------------------------------------------------------------


def converted(value, tp):
    out = check_value(value, tp)
    return out, type(out)


def test_check_value_scalars():
    assert converted(True, bool) == (True, bool)
    assert converted(False, bool) == (False, bool)
    assert converted(3, int) == (3, int)
    assert converted(-(2**70), int) == (-(2**70), int)
    assert converted(3, float) == (3.0, float)
    assert converted(2.5, float) == (2.5, float)
    assert converted("s", str) == ("s", str)
    assert check_value(object, Any) is object


@pytest.mark.parametrize(
    ("value", "tp", "message"),
    [
        (1, bool, "expected bool, got int 1"),
        ("true", bool, "expected bool, got str 'true'"),
        (True, int, "expected int, got bool True"),
        (False, int, "expected int, got bool False"),
        (1.0, int, "expected int, got float 1.0"),
        ("1", int, "expected int, got str '1'"),
        (True, float, "expected float, got bool True"),
        (None, float, "expected float, got NoneType None"),
        (1, str, "expected str, got int 1"),
        (0, type(None), "expected None, got int 0"),
    ],
)
def test_check_value_refuses(value, tp, message):
    with pytest.raises(TypeError) as info:
        check_value(value, tp)
    assert str(info.value) == message


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_floats_are_refused(value):
    cases = [
        (value, float),
        (value, float | None),
        ([1.0, value], tuple[float, ...]),
        ([1.0, value], tuple[float, float]),
        ([1.0, value], list[float]),
        ({"k": value}, dict[str, float]),
    ]
    for bad, tp in cases:
        with pytest.raises(TypeError) as info:
            check_value(bad, tp)
        assert str(info.value) == f"expected a finite number, got {bad!r}", tp


def test_non_finite_is_allowed_where_no_float_is_expected():
    # An untyped (Any) field does not look at the number.
    assert math.isinf(check_value(math.inf, Any))


def test_check_value_literal():
    tp = Literal["relu", "gelu"]
    assert check_value("gelu", tp) == "gelu"
    with pytest.raises(TypeError, match=r"^expected 'relu' \| 'gelu', got str 'tanh'$"):
        check_value("tanh", tp)
    ints = Literal[1, 2]
    assert converted(2, ints) == (2, int)
    with pytest.raises(TypeError, match=r"^expected 1 \| 2, got bool True$"):
        check_value(True, ints)  # True == 1, but it is a bool
    with pytest.raises(TypeError, match=r"^expected 1 \| 2, got float 1.0$"):
        check_value(1.0, ints)


def test_check_value_optional():
    for tp in (int | None, Optional[int]):  # both spellings
        assert check_value(None, tp) is None
        assert converted(4, tp) == (4, int)
        with pytest.raises(TypeError, match=r"^expected int \| None, got bool True$"):
            check_value(True, tp)
        with pytest.raises(TypeError, match=r"^expected int \| None, got str 'x'$"):
            check_value("x", tp)
    assert converted(1, float | None) == (1.0, float)
    # A union takes the first member that accepts the value.
    assert check_value("a", str | tuple[str, ...]) == "a"
    assert check_value(["a", "b"], str | tuple[str, ...]) == ("a", "b")
    with pytest.raises(TypeError, match=r"^expected str \| tuple\[str, \.\.\.\], got list \['a', 1\]$"):
        check_value(["a", 1], str | tuple[str, ...])


def test_check_value_tuples_lists_dicts():
    assert converted([1, 2, 3], tuple[int, ...]) == ((1, 2, 3), tuple)
    assert converted((), tuple[int, ...]) == ((), tuple)
    assert check_value([1, 2], tuple[float, ...]) == (1.0, 2.0)
    assert all(type(x) is float for x in check_value([1, 2], tuple[float, ...]))
    assert converted([0, 1], tuple[float, float]) == ((0.0, 1.0), tuple)
    assert check_value(["a", 2], tuple[str, int]) == ("a", 2)
    for bad in ([1], [1, 2, 3], "ab", 1):
        with pytest.raises(TypeError, match=r"^expected tuple\[float, float\], got "):
            check_value(bad, tuple[float, float])
    with pytest.raises(TypeError, match=r"^expected tuple\[str, int\], got list \[2, 'a'\]$"):
        check_value([2, "a"], tuple[str, int])
    with pytest.raises(TypeError, match=r"^expected tuple\[int, \.\.\.\], got list \[1, True\]$"):
        check_value([1, True], tuple[int, ...])
    assert converted((1, 2), list[int]) == ([1, 2], list)
    assert converted([], list[int]) == ([], list)
    with pytest.raises(TypeError, match=r"^expected list\[int\], got dict \{\}$"):
        check_value({}, list[int])
    assert converted({"a": 1}, dict[str, float]) == ({"a": 1.0}, dict)
    assert check_value({"a": [1, 2]}, dict[str, tuple[int, ...]]) == {"a": (1, 2)}
    with pytest.raises(TypeError, match=r"^expected dict\[str, int\], got dict \{1: 1\}$"):
        check_value({1: 1}, dict[str, int])
    with pytest.raises(TypeError, match=r"^expected dict\[str, int\], got list \[\]$"):
        check_value([], dict[str, int])


def test_check_value_does_not_change_its_input():
    value = [1, 2]
    assert check_value(value, tuple[float, ...]) == (1.0, 2.0)
    assert value == [1, 2] and type(value[0]) is int
    table = {"a": 1}
    check_value(table, dict[str, float])
    assert type(table["a"]) is int


def test_check_value_other_classes():
    assert check_value(InnerConfig(), InnerConfig) == InnerConfig()
    with pytest.raises(TypeError, match=r"^expected InnerConfig, got int 1$"):
        check_value(1, InnerConfig)


def test_huge_int_for_a_float_is_a_recipe_error():
    # TOML (tomllib) reads `mean = 1000...0` (400 digits) as a Python int; a float field should refuse it
    # with a RecipeError, not crash with OverflowError.
    with pytest.raises(TypeError):
        check_value(10**400, float)
    with pytest.raises(RecipeError):
        validate_config(WidgetConfig, {"scale": 10**400}, section="backbone", file=None)


def test_converter_is_applied_once():
    assert CountConfig(count=1).count == 2
    assert validate_config(CountConfig, {"count": 1}, section="s", file=None).count == 2


# -- type_name, fields_of ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "name"),
    [
        (int, "int"),
        (float, "float"),
        (bool, "bool"),
        (str, "str"),
        (type(None), "None"),
        (float | None, "float | None"),
        (Optional[int], "int | None"),
        (Literal["relu", "gelu"], "'relu' | 'gelu'"),
        (Literal[1, 2] | None, "1 | 2 | None"),
        (tuple[int, ...], "tuple[int, ...]"),
        (tuple[float, float], "tuple[float, float]"),
        (tuple[str, int, bool], "tuple[str, int, bool]"),
        (list[str], "list[str]"),
        (dict[str, int], "dict[str, int]"),
        (dict[str, tuple[float, ...]], "dict[str, tuple[float, ...]]"),
        (str | tuple[str, ...], "str | tuple[str, ...]"),
        (InnerConfig, "InnerConfig"),
    ],
)
def test_type_name(tp, name):
    assert type_name(tp) == name


def test_fields_of():
    infos = fields_of(WidgetConfig)
    assert all(isinstance(f, FieldInfo) for f in infos)
    assert [f.name for f in infos] == [
        "depth",
        "ratio",
        "mode",
        "act",
        "limit",
        "scale",
        "scales",
        "interval",
        "names",
        "extra",
        "hidden",
        "internal",
    ]
    by_name = {f.name: f for f in infos}
    # Types are resolved from the (postponed) annotations.
    assert by_name["depth"] == FieldInfo(name="depth", type=int, default=2, doc="Depth.", component=None)
    assert by_name["limit"].type == (int | None)
    assert by_name["act"].type == Literal["relu", "gelu"]
    assert by_name["interval"] == FieldInfo(
        name="interval", type=tuple[float, float], default=(0.0, 1.0), doc="A pair.", component=None
    )
    assert by_name["internal"].doc == "Not a recipe key."
    assert by_name["hidden"].doc == ""

    comp = {f.name: f for f in fields_of(CompositeConfig)}
    assert [f.name for f in fields_of(CompositeConfig)] == ["size", "schedule", "sampler", "inner"]
    assert comp["schedule"] == FieldInfo(
        name="schedule", type=None, default="logit_normal", doc="How t is drawn.", component="schedule"
    )
    assert comp["sampler"].component == "sampler" and comp["sampler"].default is None
    assert comp["inner"].type is InnerConfig
    assert comp["inner"].default == InnerConfig()
    assert comp["size"].component is None


def test_field_and_component_field_metadata():
    f = attrs.fields_dict(WidgetConfig)["depth"]
    assert f.default == 2 and f.metadata == {"doc": "Depth."}
    assert f.validator is not None
    s = attrs.fields_dict(CompositeConfig)["schedule"]
    assert s.default == "logit_normal"
    assert dict(s.metadata) == {"doc": "How t is drawn.", "component": "schedule"}
