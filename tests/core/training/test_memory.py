"""Activation checkpointing recomputes, it does not approximate: gradients are bit-identical."""

from __future__ import annotations

import pytest
import torch

import gen
from gen.training.memory import checkpoint_activations

BACKBONES = {
    "jit": dict(input_size=16, patch_size=4, hidden_size=32, depth=3, num_heads=2, num_classes=5,
                bottleneck_dim=16, in_context_len=2, in_context_start=1, attn_drop=0.1, proj_drop=0.1),
    "dit": dict(input_size=16, in_channels=3, patch_size=4, hidden_size=32, depth=3, num_heads=2, num_classes=5),
}  # fmt: skip


def gradients(name: str, mode: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = gen.build("backbone", name, **BACKBONES[name]).train()
    with torch.no_grad():  # away from the zero init: every weight matters
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert checkpoint_activations(net, mode) == (0 if mode == "none" else 3)
    g = torch.Generator().manual_seed(1)
    z, t, y = torch.randn(4, 3, 16, 16, generator=g), torch.rand(4, generator=g), torch.tensor([0, 1, 2, 5])
    torch.manual_seed(2)  # dropout draws: replayed by the recomputation
    net(z, t, y).square().mean().backward()
    return {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", ["jit", "dit"])
@pytest.mark.parametrize("mode", ["blocks", "attention"])
def test_checkpointed_gradients_are_bit_identical(name, mode):
    reference, checkpointed = gradients(name, "none"), gradients(name, mode)
    assert reference.keys() == checkpointed.keys()
    for k in reference:
        assert torch.equal(reference[k], checkpointed[k]), k


def test_a_backbone_without_blocks_is_one_line():
    net = torch.nn.Linear(2, 2)
    with pytest.raises(gen.GenError, match="backbone mlp has no `blocks`.*set it to 'none'"):
        checkpoint_activations(net, "blocks", backbone="mlp")


def test_the_recipe_key_reaches_the_engine(tmp_path):
    recipe = gen.load_recipe(
        "recipes/demo.toml",
        ["train.activation_checkpointing='blocks'", "train.steps=2", "train.global_batch=4", "data.image_size=16",
         "backbone.patch_size=4", "backbone.bottleneck_dim=32", "train.eval_samples=0", "train.grid_samples=0"],
    )  # fmt: skip
    summary = gen.train(recipe, tmp_path / "run")
    assert summary["step"] == 2
    with pytest.raises(gen.RecipeError, match="activation_checkpointing"):
        gen.load_recipe("recipes/demo.toml", ["train.activation_checkpointing='everything'"])
