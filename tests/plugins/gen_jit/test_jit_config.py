"""JiT configuration: presets, overrides, defaults and clear errors."""

from __future__ import annotations

import pytest

import gen
from gen_jit.config import DEFAULT_SIZES, PRESETS, JiTConfig


def test_preset_sets_sizes_and_fields_override_it():
    config = JiTConfig(preset="L/16", depth=10, patch_size=32, input_size=512)
    sizes = config.sizes()
    assert sizes == {**PRESETS["L/16"], "depth": 10, "patch_size": 32}
    resolved = config.resolved()
    assert (resolved.depth, resolved.hidden_size, resolved.num_heads, resolved.patch_size) == (
        10,
        1024,
        16,
        32,
    )
    assert (resolved.bottleneck_dim, resolved.in_context_len, resolved.in_context_start) == (128, 32, 8)
    assert resolved.preset == "L/16"


def test_without_preset_uses_small_defaults():
    config = JiTConfig()
    assert config.preset is None and config.hidden_size is None
    assert config.sizes() == DEFAULT_SIZES
    assert DEFAULT_SIZES["hidden_size"] < PRESETS["B/16"]["hidden_size"]


def test_build_resolves_through_the_registry():
    config = gen.resolve_config("backbone", "jit", preset="B/32", input_size=512, mlp="gelu")
    assert isinstance(config, JiTConfig)
    assert config.sizes()["patch_size"] == 32 and config.mlp == "gelu"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (dict(input_size=30, patch_size=4), ["patch_size (4)", "input_size (30)"]),
        (
            dict(input_size=32, patch_size=4, hidden_size=30, num_heads=4),
            ["num_heads (4)", "hidden_size (30)"],
        ),
        (
            dict(input_size=32, patch_size=4, hidden_size=24, num_heads=4),
            ["RoPE", "head dim", "rope = false"],
        ),
        (
            dict(input_size=32, patch_size=4, hidden_size=30, num_heads=5, rope=False),
            ["hidden_size (30)", "divisible by 4"],
        ),
        (
            dict(input_size=32, patch_size=4, depth=3, in_context_start=3),
            ["in_context_start (3)", "depth (3)"],
        ),
    ],
)
def test_cross_field_errors_name_the_fields(fields, words):
    with pytest.raises(ValueError) as info:
        JiTConfig(**fields)
    for word in words:
        assert word in str(info.value)


def test_rope_off_allows_head_dims_not_divisible_by_four():
    config = JiTConfig(input_size=32, patch_size=4, hidden_size=24, num_heads=4, rope=False)
    assert config.sizes()["hidden_size"] // config.sizes()["num_heads"] == 6


def test_in_context_off_ignores_the_start_block():
    JiTConfig(input_size=32, patch_size=4, depth=3, in_context_len=0, in_context_start=3)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (dict(preset="X/16"), ["preset", "X/16"]),
        (dict(depth=0), ["depth"]),
        (dict(attn_drop=1.5), ["attn_drop"]),
        (dict(mlp="relu"), ["mlp"]),
        (dict(norm="batch"), ["norm"]),
        (dict(hidden_size="wide"), ["hidden_size"]),
        (dict(deep=3), ["deep", "depth"]),
        (dict(input_size=250, preset="B/16"), ["patch_size (16)", "input_size (250)"]),
    ],
)
def test_recipe_errors_are_one_clear_line(fields, words):
    with pytest.raises(gen.RecipeError) as info:
        gen.build("backbone", "jit", **fields)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message
