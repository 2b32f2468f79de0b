"""DiTConfig: presets, overrides, defaults and clear errors for impossible shapes."""

from __future__ import annotations

import pytest

from gen_dit import DiTConfig, parse_preset


@pytest.mark.parametrize(
    ("preset", "sizes"),
    [
        ("S/2", dict(depth=12, hidden_size=384, num_heads=6, patch_size=2)),
        ("B/16", dict(depth=12, hidden_size=768, num_heads=12, patch_size=16)),
        ("L/4", dict(depth=24, hidden_size=1024, num_heads=16, patch_size=4)),
        ("XL/8", dict(depth=28, hidden_size=1152, num_heads=16, patch_size=8)),
    ],
)
def test_presets(preset, sizes):
    assert parse_preset(preset) == sizes
    assert DiTConfig(preset=preset, input_size=256).sizes() == sizes


def test_no_preset_means_the_published_constructor_defaults():
    cfg = DiTConfig().resolved()
    assert (cfg.input_size, cfg.patch_size, cfg.in_channels, cfg.out_channels) == (32, 2, 4, 4)
    assert (cfg.hidden_size, cfg.depth, cfg.num_heads, cfg.num_classes) == (1152, 28, 16, 1000)
    assert cfg.mlp_ratio == 4.0 and cfg.conditioning == "adaln_zero" and cfg.compile is False


def test_explicit_fields_override_the_preset():
    cfg = DiTConfig(preset="B/2", depth=3, patch_size=4, in_channels=3, out_channels=6).resolved()
    assert (cfg.depth, cfg.hidden_size, cfg.num_heads, cfg.patch_size) == (3, 768, 12, 4)
    assert cfg.out_channels == 6 and cfg.preset == "B/2"


@pytest.mark.parametrize("preset", ["M/2", "XL", "B/0", "b/2", "XL/2x", "/4"])
def test_unknown_preset_is_a_clear_error(preset):
    with pytest.raises(ValueError, match="SIZE/PATCH"):
        DiTConfig(preset=preset)


def test_patch_not_dividing_input():
    with pytest.raises(ValueError, match=r"patch_size \(3\) must divide input_size \(32\)"):
        DiTConfig(preset="S/2", patch_size=3, input_size=32)
    with pytest.raises(ValueError, match="must divide input_size"):
        DiTConfig(preset="B/16", input_size=40)


def test_heads_not_dividing_width():
    with pytest.raises(ValueError, match=r"num_heads \(5\) must divide hidden_size \(384\)"):
        DiTConfig(preset="S/2", num_heads=5)


def test_width_not_divisible_by_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        DiTConfig(hidden_size=6, num_heads=2)


@pytest.mark.parametrize(
    "fields",
    [dict(depth=0), dict(input_size=0), dict(mlp_ratio=0.0), dict(num_classes=-1), dict(conditioning="film")],
)
def test_out_of_range_fields_are_rejected(fields):
    with pytest.raises(ValueError):
        DiTConfig(**fields)
