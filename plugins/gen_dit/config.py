"""DiT configuration: the published constructor's arguments, the size presets and the conditioning design."""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs

import gen

#: Model sizes of the DiT paper (Table 1). A preset is a size and a patch size: ``"XL/2"``, ``"B/16"``...
SIZES: dict[str, dict[str, int]] = {
    "S": dict(depth=12, hidden_size=384, num_heads=6),
    "B": dict(depth=12, hidden_size=768, num_heads=12),
    "L": dict(depth=24, hidden_size=1024, num_heads=16),
    "XL": dict(depth=28, hidden_size=1152, num_heads=16),
}

#: Sizes used when no preset is given: the published ``DiT()`` constructor's defaults (DiT-XL/2).
DEFAULT_SIZES: dict[str, int] = dict(depth=28, hidden_size=1152, num_heads=16, patch_size=2)

#: The fields a preset sets (``None`` in a config means "from the preset").
SIZE_FIELDS: tuple[str, ...] = tuple(DEFAULT_SIZES)

#: The four conditioning designs of the DiT paper (section 3.2, Figure 3).
CONDITIONINGS: tuple[str, ...] = ("adaln_zero", "adaln", "cross_attention", "in_context")

_PRESET = re.compile(r"^(S|B|L|XL)/([1-9][0-9]*)$")


def parse_preset(preset: str) -> dict[str, int]:
    """The sizes a preset names: ``"B/4"`` -> depth 12, hidden_size 768, num_heads 12, patch_size 4.

    Raises:
        ValueError: if ``preset`` is not ``SIZE/PATCH`` with SIZE one of S, B, L, XL.
    """
    match = _PRESET.match(preset)
    if match is None:
        raise ValueError(
            f"unknown DiT preset {preset!r}; write SIZE/PATCH with SIZE one of {', '.join(SIZES)} and a "
            "positive patch size, e.g. 'XL/2', 'B/4', 'S/8'"
        )
    return {**SIZES[match.group(1)], "patch_size": int(match.group(2))}


def _check_preset(_instance: Any, _attribute: Any, value: str | None) -> None:
    if value is not None:
        parse_preset(value)


_opt_pos = attrs.validators.optional(attrs.validators.ge(1))


@attrs.frozen(kw_only=True)
class DiTConfig:
    """Configuration of the DiT backbone (field names follow the published ``DiT`` constructor).

    Size fields left at ``None`` come from ``preset`` (or, without a preset, from the published
    constructor's defaults, which are DiT-XL/2); use `sizes` for the resolved values and
    `resolved` for a config with every field filled in. ``out_channels = None`` means
    ``in_channels`` (set it to ``2 * in_channels`` for DiT's ``learn_sigma``).
    """

    preset: str | None = gen.field(
        None,
        doc="size preset SIZE/PATCH, SIZE one of S, B, L, XL (e.g. 'XL/2'); explicit size fields override it",
        validator=_check_preset,
    )
    input_size: int = gen.field(
        32, doc="input height and width (pixels or latent cells)", validator=attrs.validators.ge(1)
    )
    in_channels: int = gen.field(4, doc="input channels", validator=attrs.validators.ge(1))
    out_channels: int | None = gen.field(
        None,
        doc="output channels (None: in_channels; 2 * in_channels is DiT's learn_sigma)",
        validator=_opt_pos,
    )
    num_classes: int = gen.field(
        1000,
        doc="number of classes (id num_classes is the null label; 0 = unconditional)",
        validator=attrs.validators.ge(0),
    )
    patch_size: int | None = gen.field(None, doc="patch size (None: from the preset)", validator=_opt_pos)
    hidden_size: int | None = gen.field(
        None, doc="transformer width (None: from the preset)", validator=_opt_pos
    )
    depth: int | None = gen.field(
        None, doc="number of transformer blocks (None: from the preset)", validator=_opt_pos
    )
    num_heads: int | None = gen.field(None, doc="attention heads (None: from the preset)", validator=_opt_pos)
    mlp_ratio: float = gen.field(4.0, doc="MLP hidden size / width", validator=attrs.validators.gt(0.0))
    conditioning: Literal["adaln_zero", "adaln", "cross_attention", "in_context"] = gen.field(
        "adaln_zero",
        doc="how t and y condition the blocks: adaln_zero (DiT), adaln, cross_attention or in_context",
        validator=attrs.validators.in_(CONDITIONINGS),
    )
    compile: bool = gen.field(False, doc="torch.compile each block and the final layer")
    scalar_inputs: tuple[str, ...] = gen.field(
        (),
        doc="per-sample scalars the network also takes, each embedded like t and conditioning as t does "
        "(set by the process: a MeanFlow's interval h)",
        validator=attrs.validators.deep_iterable(attrs.validators.instance_of(str)),
    )

    def __attrs_post_init__(self) -> None:
        s = self.sizes()
        p, size = s["patch_size"], self.input_size
        if size % p:
            divisors = [d for d in range(1, size + 1) if size % d == 0]
            raise ValueError(
                f"patch_size ({p}) must divide input_size ({size}); choose a patch size among {divisors}"
            )
        width, heads = s["hidden_size"], s["num_heads"]
        if width % heads:
            raise ValueError(f"num_heads ({heads}) must divide hidden_size ({width}); change one of them")
        if width % 4:
            raise ValueError(
                f"hidden_size ({width}) must be divisible by 4 for the 2-D sin-cos position embedding"
            )
        if int(width * self.mlp_ratio) < 1:
            raise ValueError(f"mlp_ratio ({self.mlp_ratio}) * hidden_size ({width}) must be at least 1")

    def sizes(self) -> dict[str, int]:
        """The resolved size fields: explicit values, else the preset's, else `DEFAULT_SIZES`."""
        base = parse_preset(self.preset) if self.preset is not None else DEFAULT_SIZES
        return {k: (getattr(self, k) if getattr(self, k) is not None else base[k]) for k in SIZE_FIELDS}

    def resolved(self) -> DiTConfig:
        """This config with every ``None`` field filled in (``preset`` kept for the record)."""
        out = self.out_channels if self.out_channels is not None else self.in_channels
        return attrs.evolve(self, out_channels=out, **self.sizes())
