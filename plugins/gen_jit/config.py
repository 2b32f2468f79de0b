"""JiT configuration: the published constructor's arguments, the size presets and the ablation switches."""

from __future__ import annotations

from typing import Literal

import attrs

import gen

#: Published sizes (LTH14/JiT ``model_jit.py``) plus the paper's G models. Each preset fixes the fields
#: below; any of them can still be overridden in the recipe.
_SIZE_COLUMNS = ("depth", "hidden_size", "num_heads", "bottleneck_dim", "in_context_len", "in_context_start")
_SIZES = {  # depth, width, heads, bottleneck, in-context tokens, in-context start block
    "B": (12, 768, 12, 128, 32, 4),
    "L": (24, 1024, 16, 128, 32, 8),
    "H": (32, 1280, 16, 256, 32, 10),
    "G": (40, 1664, 16, 256, 32, 10),
}
PRESETS: dict[str, dict[str, int]] = {
    f"{size}/{patch}": {**dict(zip(_SIZE_COLUMNS, row, strict=True)), "patch_size": patch}
    for size, row in _SIZES.items()
    for patch in (16, 32, 64)  # 256 tokens at 256, 512 and 1024 px: the paper's resolution ladder
}

#: Sizes used when no preset is given: a small JiT (S-like width, 16-pixel patches) for quick runs.
DEFAULT_SIZES: dict[str, int] = {
    **dict(zip(_SIZE_COLUMNS, (12, 384, 6, 128, 32, 4), strict=True)),
    "patch_size": 16,
}

#: The fields a preset sets (``None`` in a config means "from the preset").
SIZE_FIELDS: tuple[str, ...] = tuple(DEFAULT_SIZES)

_opt_pos = attrs.validators.optional(attrs.validators.ge(1))
_opt_nonneg = attrs.validators.optional(attrs.validators.ge(0))
_prob = attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.lt(1.0))


@attrs.frozen(kw_only=True)
class JiTConfig:
    """Configuration of the JiT backbone (field names follow the published ``JiT`` constructor).

    Size fields left at ``None`` come from ``preset`` (or from `DEFAULT_SIZES` without a preset);
    use `sizes` for the resolved values.
    """

    preset: str | None = gen.field(
        None,
        doc=f"size preset: one of {', '.join(PRESETS)}; size fields set explicitly override it",
        validator=attrs.validators.optional(attrs.validators.in_(tuple(PRESETS))),
    )
    input_size: int = gen.field(256, doc="image height and width in pixels", validator=attrs.validators.ge(1))
    in_channels: int = gen.field(3, doc="image channels", validator=attrs.validators.ge(1))
    num_classes: int = gen.field(
        1000,
        doc="number of classes (id num_classes is the null label; 0 = unconditional)",
        validator=attrs.validators.ge(0),
    )
    patch_size: int | None = gen.field(
        None, doc="patch size in pixels (None: from the preset)", validator=_opt_pos
    )
    hidden_size: int | None = gen.field(
        None, doc="transformer width (None: from the preset)", validator=_opt_pos
    )
    depth: int | None = gen.field(
        None, doc="number of transformer blocks (None: from the preset)", validator=_opt_pos
    )
    num_heads: int | None = gen.field(None, doc="attention heads (None: from the preset)", validator=_opt_pos)
    mlp_ratio: float = gen.field(
        4.0, doc="MLP hidden size / width (SwiGLU uses 2/3 of it)", validator=attrs.validators.gt(0.0)
    )
    bottleneck_dim: int | None = gen.field(
        None,
        doc="patch-embedding bottleneck width; 0 = plain linear patch embedding (None: preset)",
        validator=_opt_nonneg,
    )
    in_context_len: int | None = gen.field(
        None, doc="in-context class tokens; 0 = off (None: from the preset)", validator=_opt_nonneg
    )
    in_context_start: int | None = gen.field(
        None,
        doc="block before which the in-context tokens are prepended (None: from the preset)",
        validator=_opt_nonneg,
    )
    attn_drop: float = gen.field(
        0.0, doc="attention dropout in the middle half of the blocks", validator=_prob
    )
    proj_drop: float = gen.field(
        0.0, doc="projection and MLP dropout in the middle half of the blocks", validator=_prob
    )
    mlp: Literal["swiglu", "gelu"] = gen.field("swiglu", doc="MLP type: SwiGLU (JiT) or GELU (ViT/DiT)")
    norm: Literal["rms", "layer"] = gen.field("rms", doc="normalization: RMSNorm (JiT) or LayerNorm")
    rope: bool = gen.field(True, doc="2-D rotary position embedding in attention")
    qk_norm: bool = gen.field(True, doc="normalize queries and keys per head")
    compile: bool = gen.field(False, doc="torch.compile each block and the final layer")
    scalar_inputs: tuple[str, ...] = gen.field(
        (),
        doc="per-sample scalars the network also takes, each embedded and added to t's (set by the process: "
        "a MeanFlow's interval h)",
        validator=attrs.validators.deep_iterable(attrs.validators.instance_of(str)),
    )

    def __attrs_post_init__(self) -> None:
        s = self.sizes()
        p, size = s["patch_size"], self.input_size
        if size % p:
            raise ValueError(
                f"patch_size ({p}) must divide input_size ({size}); choose a patch size among "
                f"{[d for d in range(1, size + 1) if size % d == 0]}"
            )
        width, heads = s["hidden_size"], s["num_heads"]
        if width % heads:
            raise ValueError(f"num_heads ({heads}) must divide hidden_size ({width}); change one of them")
        if self.rope and (width // heads) % 4:
            raise ValueError(
                f"2-D RoPE needs a head dim (hidden_size / num_heads = {width // heads}) divisible by 4 "
                "(each spatial axis rotates pairs of channels); change hidden_size or num_heads, "
                "or set rope = false"
            )
        if width % 4:
            raise ValueError(
                f"hidden_size ({width}) must be divisible by 4 for the 2-D sin-cos position embedding"
            )
        if s["in_context_len"] > 0 and s["in_context_start"] >= s["depth"]:
            raise ValueError(
                f"in_context_start ({s['in_context_start']}) must be below depth ({s['depth']}); "
                "lower it, or set in_context_len = 0 to turn in-context tokens off"
            )

    def sizes(self) -> dict[str, int]:
        """The resolved size fields: explicit values, else the preset's, else `DEFAULT_SIZES`."""
        base = PRESETS[self.preset] if self.preset is not None else DEFAULT_SIZES
        return {k: (getattr(self, k) if getattr(self, k) is not None else base[k]) for k in SIZE_FIELDS}

    def resolved(self) -> JiTConfig:
        """This config with every size field filled in (``preset`` kept for the record)."""
        return attrs.evolve(self, **self.sizes())
