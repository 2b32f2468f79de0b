"""Every shipped recipe validates; the paper's models have the published sizes; the demo trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gen.commands import app
from gen.protocols import DataSpec
from gen.recipe import build_backbone, load_recipe

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").rglob("*.toml"))

# Trainable parameters from the published implementations (shared/fixtures/reference/README.md),
# and for the DiT-B/16 pixel baseline DiT-B/2's count with its patch embedding, head and position
# table recomputed for 16x16 pixel patches of 3 channels (pos_embed included, as DiT counts it).
PAPER_SIZES = {
    "jit_b16.toml": 131_123_712,
    "jit_l16.toml": 458_877_664,
    "jit_h16.toml": 952_514_368,
    "jit_b32.toml": 133_190_400,
    "jit_l32.toml": 461_534_176,
    "jit_h32.toml": 956_055_616,
    "dit_b16.toml": 130_512_416
    - (16 * 768 + 768)
    - (768 * 32 + 32)
    - 256 * 768
    + (768 * 768 + 768) * 2
    + 256 * 768,
}


def test_there_are_recipes():
    names = {p.name for p in RECIPES}
    assert {"demo.toml", "jit_b16.toml", "jit_g32.toml", "jit_b4_64.toml", "dit_b16.toml"} <= names
    assert len([p for p in RECIPES if "ablations" in p.parts]) == 9 + 7 + 4 + 4


@pytest.mark.parametrize("path", RECIPES, ids=[str(p.relative_to(REPO / "recipes")) for p in RECIPES])
def test_recipe_validates(path):
    recipe = load_recipe(path)
    assert recipe.train.steps or recipe.train.epochs


def count(recipe) -> int:
    spec = DataSpec(shape=(3, recipe.data.config.image_size, recipe.data.config.image_size), num_classes=1000)
    with torch.device("meta"):
        net = build_backbone(recipe, spec)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    if recipe.backbone.name == "dit":  # DiT's published count includes its frozen pos_embed
        trainable += net.pos_embed.numel()
    return trainable


@pytest.mark.parametrize("name", sorted(PAPER_SIZES))
def test_paper_model_sizes(name):
    assert count(load_recipe(REPO / "recipes" / name)) == PAPER_SIZES[name]


@pytest.mark.parametrize("name", ["jit_g16.toml", "jit_g32.toml", "jit_b4_64.toml"])
def test_other_paper_models_build(name):
    recipe = load_recipe(REPO / "recipes" / name)
    assert count(recipe) > 100_000_000


def test_ablation_changes_only_what_it_says():
    base = load_recipe(REPO / "recipes" / "jit_b16.toml")
    eps_x = load_recipe(REPO / "recipes" / "ablations" / "pred_loss" / "eps_pred_x_loss.toml")
    assert (eps_x.objective.prediction, eps_x.objective.loss) == ("eps", "x")
    assert eps_x.backbone == base.backbone and eps_x.sample == base.sample
    assert eps_x.train.epochs == 200 and eps_x.train.global_batch == base.train.global_batch


def test_demo_trains_through_the_cli(tmp_path):
    run = tmp_path / "demo"
    overrides = ["train.steps=2", "train.grid_samples=4", "train.eval_samples=4", "sample.steps=2"]
    result = CliRunner().invoke(
        app, ["train", str(REPO / "recipes" / "demo.toml"), *overrides, "--run-dir", str(run)]
    )
    assert result.exit_code == 0, result.output
    assert (run / "samples" / "final.png").is_file()
    scores = json.loads((run / "eval.json").read_text())
    assert scores["num_samples"] == 4 and 0.0 <= scores["oracle_accuracy"] <= 1.0
    assert f"samples: {run / 'samples' / 'final.png'}" in " ".join(result.stderr.split())


def test_the_resolution_ladder_keeps_tokens_and_the_transformer():
    recipes = {
        name: load_recipe(REPO / "recipes" / name)
        for name in ("jit_b16.toml", "jit_b32.toml", "jit_b64_1024.toml")
    }
    sides, noise = [], []
    blocks = set()
    for recipe in recipes.values():
        cfg = recipe.backbone.config
        size, patch = recipe.data.config.image_size, cfg.sizes()["patch_size"]
        sides.append(size)
        assert (size // patch) ** 2 == 256  # the same token count at every rung
        with torch.device("meta"):
            net = build_backbone(recipe, DataSpec(shape=(3, size, size), num_classes=1000))
        blocks.add(sum(p.numel() for p in net.blocks.parameters()))
        noise.append(recipe.objective.noise_scale)
    assert sides == [256, 512, 1024]
    assert len(blocks) == 1  # the same transformer, so the same cost per token
    assert noise == [s / 256 for s in sides]  # noise_scale = d / 256: the SNR argument of the recipes
