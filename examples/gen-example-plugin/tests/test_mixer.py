"""The patch_mixer backbone: shapes, conditioning, adaLN-Zero start, validation through gen.build."""

from __future__ import annotations

import gen
import pytest
import torch

from gen_example.mixer import PatchMixer, PatchMixerConfig, timestep_embedding


def tiny(**fields) -> PatchMixer:
    fields = {
        "input_size": 8,
        "num_classes": 3,
        "patch_size": 4,
        "width": 16,
        "depth": 2,
        **fields,
    }
    return gen.build("backbone", "patch_mixer", **fields)


def test_output_is_shaped_like_the_input():
    torch.manual_seed(0)
    net = tiny(in_channels=2)
    z = torch.randn(5, 2, 8, 8)
    out = net(z, torch.rand(5), torch.tensor([0, 1, 2, 3, 0]))  # 3 is the null label
    assert out.shape == z.shape


def test_starts_at_zero_like_adaln_zero():
    torch.manual_seed(0)
    net = tiny()
    out = net(torch.randn(4, 3, 8, 8), torch.rand(4), torch.zeros(4, dtype=torch.long))
    assert torch.equal(out, torch.zeros_like(out))


def test_time_and_class_change_the_output_once_trained_a_little():
    torch.manual_seed(0)
    net = tiny()
    for p in net.parameters():  # leave the zero initialisation
        torch.nn.init.normal_(p, std=0.2)
    z = torch.randn(2, 3, 8, 8)
    base = net(z, torch.tensor([0.3, 0.3]), torch.tensor([0, 0]))
    other_t = net(z, torch.tensor([0.7, 0.7]), torch.tensor([0, 0]))
    other_y = net(z, torch.tensor([0.3, 0.3]), torch.tensor([1, 1]))
    assert not torch.allclose(base, other_t)
    assert not torch.allclose(base, other_y)


def test_patches_round_trip_through_the_token_layout():
    # With the blocks removed and the output layer set to the inverse of the patch embedding, the net is
    # the identity: so patchify and unpatchify use the same pixel order.
    torch.manual_seed(0)
    net = tiny(depth=1, patch_size=2, width=12)
    net.blocks = torch.nn.ModuleList()
    with torch.no_grad():
        net.patch_embed.weight.copy_(torch.eye(12))
        net.patch_embed.bias.zero_()
        net.pos_embed.zero_()
        net.final_ada[1].weight.zero_()
        net.final_ada[1].bias.zero_()
        net.out.weight.copy_(torch.eye(12))
        net.out.bias.zero_()
    net.final_norm = torch.nn.Identity()
    z = torch.randn(3, 3, 8, 8)
    torch.testing.assert_close(
        net(z, torch.rand(3), torch.zeros(3, dtype=torch.long)), z
    )


def test_timestep_embedding_matches_hand_computed_values():
    # freqs 1 and 1e-2 (half = 2)
    emb = timestep_embedding(torch.tensor([0.0, 0.001]), 4)
    expected = torch.tensor(
        [
            [1.0, 1.0, 0.0, 0.0],
            [
                torch.cos(torch.tensor(1.0)),
                torch.cos(torch.tensor(0.01)),
                torch.sin(torch.tensor(1.0)),
                torch.sin(torch.tensor(0.01)),
            ],
        ]
    )
    torch.testing.assert_close(emb, expected)


def test_patch_size_must_divide_the_image():
    with pytest.raises(
        gen.RecipeError, match="patch_size \\(3\\) must divide input_size \\(8\\)"
    ):
        tiny(patch_size=3)


def test_width_is_validated():
    with pytest.raises(gen.RecipeError, match="width"):
        tiny(width=0)


def test_config_counts_tokens():
    assert PatchMixerConfig(input_size=32, patch_size=4).num_tokens == 64
