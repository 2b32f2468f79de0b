"""``gen convert dit``: turn a published DiT checkpoint into a gen run that samples as published.

The released files (``DiT-XL-2-256x256.pt``, ``DiT-XL-2-512x512.pt``) are plain state dicts of the EMA
weights, with DiT's own parameter names, which `gen_dit.model.DiT` shares; a checkpoint of DiT's
``train.py`` holds ``model`` and ``ema`` (and ``opt``, ``args``). Both are read with
``torch.load(weights_only=True)``: tensors only, nothing executed. The configuration is inferred from
the shapes, and the weights go into a run directory with a recipe (``recipes/dit_xl2.toml``: latent
space through the SD VAE, the DDPM process, 250 ancestral steps) that ``gen sample`` and ``gen eval``
read as they are.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import typer

import gen
from gen_dit.config import SIZES, DiTConfig

if TYPE_CHECKING:
    import torch


def read_state_dicts(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The backbone state dicts of a published DiT file: ``{"ema": ...}`` for a released file, ``{"ema":
    ..., "model": ...}`` for a ``train.py`` checkpoint.

    Raises:
        gen.GenError: a missing or unreadable file, pickled objects other than tensors, or no DiT weights.
    """
    raw = gen.read_torch(path, allow=(argparse.Namespace,))  # one line for a missing or unsafe file
    if not isinstance(raw, dict):
        raise gen.GenError(f"{path}: expected a state dict, got {type(raw).__name__}")
    if isinstance(raw.get("ema"), dict):  # train.py's checkpoint
        states = {"ema": raw["ema"]}
        if isinstance(raw.get("model"), dict):
            states["model"] = raw["model"]
    else:
        states = {"ema": raw}
    for name, state in states.items():
        if "x_embedder.proj.weight" not in state:
            raise gen.GenError(f"{path}: {name!r} has no x_embedder.proj.weight; it is not a DiT checkpoint")
    return states


def infer_config(state: dict[str, torch.Tensor], *, num_heads: int | None = None) -> DiTConfig:
    """The `DiTConfig` of a DiT state dict, from its shapes; the heads (which shapes do not tell)
    from ``num_heads``, else from the size preset of the same width and depth."""
    hidden, in_channels, patch, _ = state["x_embedder.proj.weight"].shape
    tokens = state["pos_embed"].shape[1] if "pos_embed" in state else None
    if tokens is None or round(tokens**0.5) ** 2 != tokens:
        raise gen.GenError("pos_embed is missing or not a square grid; cannot infer the input size")
    depth = 1 + max((int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))), default=-1)
    size = next((s for s, d in SIZES.items() if (d["hidden_size"], d["depth"]) == (hidden, depth)), None)
    if size is None and num_heads is None:
        raise gen.GenError(
            f"width {hidden} and depth {depth} match no DiT size ({', '.join(SIZES)}); pass --num-heads"
        )
    out_channels = state["final_layer.linear.weight"].shape[0] // (patch * patch)
    try:
        return DiTConfig(
            preset=f"{size}/{patch}" if size is not None else None,
            patch_size=patch,
            hidden_size=hidden,
            depth=depth,
            num_heads=num_heads if num_heads is not None else SIZES[size]["num_heads"],
            input_size=round(tokens**0.5) * patch,
            in_channels=in_channels,
            out_channels=out_channels,
            num_classes=state["y_embedder.embedding_table.weight"].shape[0] - 1,  # + the null label
            mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / hidden,
        ).resolved()
    except ValueError as e:
        raise gen.GenError(f"the inferred DiT configuration is invalid: {e}") from None


def convert_checkpoint(
    checkpoint: Path,
    out: Path,
    *,
    recipe: Path,
    overrides: tuple[str, ...] = (),
    num_heads: int | None = None,
) -> Path:
    """Write the weights of ``checkpoint`` as the first checkpoint of run directory ``out``, with
    ``recipe`` (and ``overrides``) around the inferred backbone; returns the checkpoint folder.

    The EMA weights are the raw weights of the run too (a released file holds nothing else), and are
    stored under EMA 0.9999 (DiT's decay) so that ``--ema 0.9999`` names them as the paper does.
    """
    states = read_state_dicts(checkpoint)
    config = infer_config(states["ema"], num_heads=num_heads)
    base = gen.load_recipe(recipe, overrides)
    explicit = frozenset(f.name for f in attrs.fields(DiTConfig) if getattr(config, f.name) is not None)
    backbone = gen.ComponentSpec(kind="backbone", name="dit", config=config, explicit=explicit)
    run_recipe = attrs.evolve(base, backbone=backbone)
    spec = gen.DataSpec(
        shape=(config.in_channels, config.input_size, config.input_size), num_classes=config.num_classes
    )
    weights = {None: states.get("model", states["ema"]), 0.9999: states["ema"]}
    return gen.export_checkpoint(out, run_recipe, spec=spec, weights=weights)


def convert_dit_command(
    checkpoint: Path = typer.Argument(
        ..., help="Published DiT checkpoint (DiT-XL-2-256x256.pt) or train.py's."
    ),
    out: Path = typer.Argument(..., help="Run directory to create."),
    recipe: Path = typer.Option(
        ...,
        "--recipe",
        help="The recipe around the weights (process, autoencoder, sampling): recipes/dit_xl2.toml.",
    ),
    num_heads: int | None = typer.Option(
        None, "--num-heads", help="Attention heads, for a model of no DiT size (default: the size's)."
    ),
    override: list[str] = typer.Option(
        [],
        "--set",
        "-o",
        help="Recipe override SECTION.KEY=VALUE, e.g. autoencoder.path=/models/sd-vae-ft-ema.",
    ),
) -> None:
    """Convert a published DiT checkpoint into a run directory that gen sample and gen eval read."""
    path = convert_checkpoint(checkpoint, out, recipe=recipe, overrides=tuple(override), num_heads=num_heads)
    typer.echo(f"wrote {path}")


def add_convert_command(app: typer.Typer) -> None:
    """Add ``convert dit`` to ``app``'s ``convert`` group (shared with other plugins' converters)."""
    help_text = "Convert published checkpoints into gen's format."
    gen.command_group(app, "convert", help_text).command("dit")(convert_dit_command)
