"""``gen convert jit``: turn a published JiT training checkpoint into safetensors files and a recipe.

A published checkpoint (LTH14/JiT ``main_jit.py``) is a torch file holding the state dicts ``model``,
``model_ema1`` and ``model_ema2`` of the denoiser, whose backbone keys start with ``net.``. The
converter writes the backbone weights (without the prefix, so `gen_jit.model.JiT` loads them
directly) and a ``recipe.toml`` whose ``[backbone]`` section is inferred from the tensor shapes.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import tomli_w
import typer

import gen
from gen_jit.config import PRESETS, JiTConfig

if TYPE_CHECKING:  # imported where used: `gen --help` builds this command without torch
    import torch

CHECKPOINT_KEYS = ("model", "model_ema1", "model_ema2")
PREFIX = "net."


def load_checkpoint(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Load the three backbone state dicts (prefix stripped) of a published checkpoint, safely.

    Only tensors, containers and the training script's ``argparse.Namespace`` are unpickled
    (``weights_only=True``).

    Raises:
        gen.GenError: the file is missing, is not a torch checkpoint, or lacks the expected keys.
    """
    import torch

    if not path.is_file():
        raise gen.GenError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refused it: never advise loading it unrestricted
        with open(path, "rb") as f:
            if not f.read(4).startswith((b"PK\x03\x04", b"\x80")):  # neither torch's zip nor a pickle
                raise gen.GenError(
                    f"{path} is not a readable torch checkpoint ({type(e).__name__})"
                ) from None
        raise gen.GenError(
            f"{path} is not a plain tensor file (it holds pickled Python objects other than tensors); "
            "it was not loaded"
        ) from None
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise gen.GenError(f"{path} is not a readable torch checkpoint ({first_line})") from None
    if not isinstance(raw, dict):
        raise gen.GenError(
            f"{path}: expected a dict with keys {', '.join(CHECKPOINT_KEYS)}, got {type(raw).__name__}"
        )
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(raw.get(k), dict)]
    if missing:
        found = ", ".join(sorted(map(str, raw))) or "none"
        raise gen.GenError(
            f"{path} is not a published JiT training checkpoint: missing {', '.join(missing)} "
            f"(found keys: {found})"
        )
    out = {}
    for key in CHECKPOINT_KEYS:
        state = {k[len(PREFIX) :]: v for k, v in raw[key].items() if k.startswith(PREFIX)}
        if not state:
            raise gen.GenError(f"{path}: '{key}' has no '{PREFIX}*' parameters; is this a JiT checkpoint?")
        out[key] = state
    return out


def _shape(state: dict[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in state:
        raise gen.GenError(f"checkpoint has no '{PREFIX}{key}'; it does not look like a JiT backbone")
    return tuple(state[key].shape)


def infer_config(
    state: dict[str, torch.Tensor],
    *,
    num_heads: int | None = None,
    in_context_start: int | None = None,
    rope: bool = True,
) -> tuple[JiTConfig, str | None]:
    """Infer the JiT configuration from the shapes of a backbone state dict.

    Shapes fix the patch size, channels, width, depth, bottleneck, in-context length, class count, image
    size, MLP type and ratio, norm type and QK-norm. The number of heads and the in-context start block
    cannot be read from shapes: they come from the arguments, else from the preset with the same sizes.

    Returns:
        (config, matched preset name or None).
    """
    if "x_embedder.proj1.weight" in state:
        bottleneck_dim, in_channels, patch_size, _ = _shape(state, "x_embedder.proj1.weight")
    else:
        _, in_channels, patch_size, _ = _shape(state, "x_embedder.proj.weight")
        bottleneck_dim = 0
    _, num_patches, hidden_size = _shape(state, "pos_embed")
    grid = round(num_patches**0.5)
    if grid * grid != num_patches:
        raise gen.GenError(
            f"pos_embed holds {num_patches} tokens, not a square grid; cannot infer input_size"
        )
    depth = 1 + max((int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))), default=-1)
    if depth == 0:
        raise gen.GenError("checkpoint has no transformer blocks ('net.blocks.N.*')")
    in_context_len = _shape(state, "in_context_posemb")[1] if "in_context_posemb" in state else 0
    num_classes = _shape(state, "y_embedder.embedding_table.weight")[0] - 1
    if "blocks.0.mlp.w12.weight" in state:
        mlp, mlp_hidden = "swiglu", _shape(state, "blocks.0.mlp.w12.weight")[0] // 2
        mlp_ratio = 4.0 if int(hidden_size * 4.0 * 2 / 3) == mlp_hidden else mlp_hidden * 1.5 / hidden_size
    else:
        mlp, mlp_hidden = "gelu", _shape(state, "blocks.0.mlp.fc1.weight")[0]
        mlp_ratio = mlp_hidden / hidden_size
    norm = "layer" if "blocks.0.norm1.bias" in state else "rms"
    qk_norm = "blocks.0.attn.q_norm.weight" in state

    preset = next(
        (
            name
            for name, s in PRESETS.items()
            if (s["hidden_size"], s["depth"], s["bottleneck_dim"], s["patch_size"])
            == (hidden_size, depth, bottleneck_dim, patch_size)
        ),
        None,
    )
    if num_heads is None:
        if preset is None:
            raise gen.GenError(
                f"cannot infer num_heads for width {hidden_size} and depth {depth} (no preset matches); "
                "pass --num-heads"
            )
        num_heads = PRESETS[preset]["num_heads"]
    if in_context_start is None:
        if preset is not None:
            in_context_start = PRESETS[preset]["in_context_start"]
        elif in_context_len == 0:
            in_context_start = 0
        else:
            raise gen.GenError("cannot infer in_context_start (no preset matches); pass --in-context-start")
    try:
        config = JiTConfig(
            preset=preset,
            input_size=grid * patch_size,
            in_channels=in_channels,
            num_classes=num_classes,
            patch_size=patch_size,
            hidden_size=hidden_size,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            bottleneck_dim=bottleneck_dim,
            in_context_len=in_context_len,
            in_context_start=in_context_start,
            mlp=mlp,
            norm=norm,
            rope=rope,
            qk_norm=qk_norm,
        )
    except ValueError as e:
        raise gen.GenError(f"inferred JiT configuration is invalid: {e}") from None
    return config, preset


def check_loads(config: JiTConfig, state: dict[str, torch.Tensor]) -> None:
    """Check that ``state`` loads into the configured backbone (keys and shapes), without allocating it."""
    import torch

    from gen_jit.model import JiT

    with torch.device("meta"):
        net = JiT(config)
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as e:
        raise gen.GenError(
            f"the weights do not fit the inferred configuration: {' '.join(str(e).split())}"
        ) from None


def _save(state: dict[str, torch.Tensor], path: Path, source: str) -> None:
    from safetensors.torch import save_file

    seen: set[int] = set()
    tensors = {}
    for k, v in state.items():
        v = v.detach().contiguous()
        if v.data_ptr() in seen:  # safetensors refuses shared storage
            v = v.clone()
        seen.add(v.data_ptr())
        tensors[k] = v
    # Through a temporary name renamed into place: a kill mid-write never leaves half a weights file.
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={"format": "pt", "source": source})
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def backbone_table(config: JiTConfig) -> dict[str, Any]:
    """The ``[backbone]`` recipe section of a resolved config (``None`` fields omitted: TOML has no null;
    no ``scalar_inputs``: a published JiT has none, and the process sets them)."""
    fields = {k: v for k, v in attrs.asdict(config.resolved()).items() if v is not None and v not in ((), [])}
    return {"name": "jit", **fields}


def convert_checkpoint(
    checkpoint: Path,
    out: Path,
    *,
    ema_decays: tuple[float, float] = (0.9999, 0.9996),
    num_heads: int | None = None,
    in_context_start: int | None = None,
    rope: bool = True,
    force: bool = False,
    recipe: Path | None = None,
) -> list[Path]:
    """Convert a published JiT checkpoint; returns the files written.

    Writes ``model.safetensors``, ``ema_<decay1>.safetensors`` (``model_ema1``),
    ``ema_<decay2>.safetensors`` (``model_ema2``) and ``recipe.toml`` into ``out``. With ``recipe`` (a
    recipe such as ``recipes/jit_b16.toml``: its data, objective and sampling settings, with the
    converted ``[backbone]``), ``out`` becomes a run directory that ``gen sample OUT`` and ``gen eval
    OUT`` read: the weights go into ``out/checkpoints/step_00000000`` through `gen.export_checkpoint`.
    """
    states = load_checkpoint(checkpoint)
    config, _ = infer_config(
        states["model"], num_heads=num_heads, in_context_start=in_context_start, rope=rope
    )
    for state in states.values():
        check_loads(config, state)
    if recipe is not None:
        return [export_run(states, config, out, recipe, ema_decays)]
    names = {  # the checkpoint format's file names: model.safetensors, ema_<decay>.safetensors
        "model": gen.weights_name(None),
        "model_ema1": gen.weights_name(ema_decays[0]),
        "model_ema2": gen.weights_name(ema_decays[1]),
    }
    targets = [out / n for n in names.values()] + [out / "recipe.toml"]
    existing = [p.name for p in targets if p.exists()]
    if existing and not force:
        raise gen.GenError(
            f"{out} already holds {', '.join(existing)}; choose another directory or pass --force"
        )
    out.mkdir(parents=True, exist_ok=True)
    for key, name in names.items():
        _save(states[key], out / name, source=f"{checkpoint.name}:{key}")
    header = f"# Converted from {checkpoint.name} by `gen convert jit`.\n"
    (out / "recipe.toml").write_text(header + tomli_w.dumps({"backbone": backbone_table(config)}))
    return targets


def export_run(
    states: dict[str, dict[str, torch.Tensor]],
    config: JiTConfig,
    out: Path,
    base: Path,
    ema_decays: tuple[float, float],
) -> Path:
    """The converted weights as the first checkpoint of run directory ``out``, with ``base``'s recipe
    around the converted backbone; returns the checkpoint folder."""
    recipe = gen.load_recipe(base)
    table = backbone_table(config)
    resolved = gen.resolve_config("backbone", "jit", **{k: v for k, v in table.items() if k != "name"})
    backbone = gen.ComponentSpec(
        kind="backbone", name="jit", config=resolved, explicit=frozenset(table) - {"name"}
    )
    recipe = attrs.evolve(recipe, backbone=backbone)
    spec = gen.DataSpec(
        shape=(config.in_channels, config.input_size, config.input_size), num_classes=config.num_classes
    )
    weights = {
        None: states["model"],
        ema_decays[0]: states["model_ema1"],
        ema_decays[1]: states["model_ema2"],
    }
    return gen.export_checkpoint(out, recipe, spec=spec, weights=weights)


def convert_jit_command(
    checkpoint: Path = typer.Argument(..., help="Published JiT training checkpoint (checkpoint-*.pth)."),
    out: Path = typer.Argument(..., help="Output directory."),
    ema_decay1: float = typer.Option(
        0.9999, "--ema-decay1", help="EMA decay of model_ema1 (names its file)."
    ),
    ema_decay2: float = typer.Option(
        0.9996, "--ema-decay2", help="EMA decay of model_ema2 (names its file)."
    ),
    num_heads: int | None = typer.Option(
        None, "--num-heads", help="Attention heads (default: from the preset)."
    ),
    in_context_start: int | None = typer.Option(
        None,
        "--in-context-start",
        help="Block that receives the in-context tokens (default: from the preset).",
    ),
    rope: bool = typer.Option(True, "--rope/--no-rope", help="Whether the model was trained with RoPE."),
    force: bool = typer.Option(False, "--force", help="Overwrite files already in OUT."),
    recipe: Path | None = typer.Option(
        None,
        "--recipe",
        help="Make OUT a run directory that gen sample/gen eval read, with this recipe around the weights.",
    ),
) -> None:
    """Convert a published JiT checkpoint into safetensors weights and a recipe."""
    written = convert_checkpoint(
        checkpoint,
        out,
        ema_decays=(ema_decay1, ema_decay2),
        num_heads=num_heads,
        in_context_start=in_context_start,
        rope=rope,
        force=force,
        recipe=recipe,
    )
    for path in written:
        typer.echo(f"wrote {path}")


def add_convert_command(app: typer.Typer) -> None:
    """Add ``convert jit`` to ``app``'s ``convert`` group (shared with other plugins' converters)."""
    help_text = "Convert published checkpoints into gen's format."
    gen.command_group(app, "convert", help_text).command("jit")(convert_jit_command)
