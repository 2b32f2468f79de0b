"""The four conditioning designs of the DiT paper: structure, parameter counts, gradients, identity init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gen_dit import DiT, DiTConfig
from gen_dit.blocks import AdaLNBlock, CrossAttentionBlock, ViTBlock

DESIGNS = ("adaln_zero", "adaln", "cross_attention", "in_context")
TINY = dict(input_size=8, patch_size=2, in_channels=3, hidden_size=32, depth=2, num_heads=4, num_classes=5)


def tiny(conditioning: str, **overrides) -> DiT:
    torch.manual_seed(0)
    return DiT(DiTConfig(**{**TINY, **overrides}, conditioning=conditioning))


def perturb(net: nn.Module, scale: float = 0.1) -> None:
    """Move every trainable parameter off its initial value (zero-init layers would hide gradients)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn(p.shape, generator=gen))


def inputs(batch: int = 3, channels: int = 3, size: int = 8):
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(batch, channels, size, size, generator=gen)
    t = torch.rand(batch, generator=gen)
    y = torch.tensor([0, 4, 5][:batch])  # 5 = num_classes: the null label
    return z, t, y


def expected_parameters(conditioning: str, D=32, L=2, C=3, Co=3, p=2, K=5, N=16, M=128) -> int:
    """Parameter count of a DiT by hand, from the layer shapes each design has."""
    embed = (D * C * p * p + D) + (256 * D + D + D * D + D) + (K + 1) * D + N * D
    attn = 4 * D * D + 4 * D  # qkv + proj
    mlp = D * M + M + M * D + D
    linear_out = D * p * p * Co + p * p * Co
    if conditioning == "adaln_zero":
        block, final = attn + mlp + 6 * D * D + 6 * D, linear_out + 2 * D * D + 2 * D
    elif conditioning == "adaln":
        block, final = attn + mlp + 4 * D * D + 4 * D, linear_out + 2 * D * D + 2 * D
    elif conditioning == "cross_attention":
        block, final = attn + mlp + (4 * D * D + 4 * D) + 3 * 2 * D, linear_out + 2 * D
    else:
        block, final = attn + mlp + 2 * 2 * D, linear_out + 2 * D
    return embed + L * block + final


@pytest.mark.parametrize("conditioning", DESIGNS)
def test_shapes_and_parameter_count(conditioning):
    net = tiny(conditioning)
    z, t, y = inputs()
    assert net(z, t, y).shape == z.shape
    assert sum(p.numel() for p in net.parameters()) == expected_parameters(conditioning)
    wide = tiny(conditioning, out_channels=6)
    assert wide(z, t, y).shape == (3, 6, 8, 8)
    assert sum(p.numel() for p in wide.parameters()) == expected_parameters(conditioning, Co=6)


@pytest.mark.parametrize(
    ("conditioning", "block_type", "adaptive_norms"),
    [
        ("adaln_zero", AdaLNBlock, True),
        ("adaln", AdaLNBlock, True),
        ("cross_attention", CrossAttentionBlock, False),
        ("in_context", ViTBlock, False),
    ],
)
def test_block_structure(conditioning, block_type, adaptive_norms):
    net = tiny(conditioning)
    assert all(type(b) is block_type for b in net.blocks)
    norms = [m for m in net.modules() if isinstance(m, nn.LayerNorm)]
    # adaLN designs regress the norms' shift and scale; the others are standard (affine) LayerNorms.
    assert all(n.elementwise_affine is not adaptive_norms for n in norms)
    assert all(n.eps == 1e-6 for n in norms)
    assert hasattr(net.final_layer, "adaLN_modulation") is adaptive_norms


@pytest.mark.parametrize("conditioning", DESIGNS)
def test_gradients_reach_every_parameter(conditioning):
    net = tiny(conditioning)
    perturb(net)
    z, t, y = inputs()
    weights = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    (net(z, t, y) * weights).sum().backward()
    for name, p in net.named_parameters():
        if name == "pos_embed":
            assert not p.requires_grad and p.grad is None
            continue
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("conditioning", DESIGNS)
def test_output_depends_on_time_and_label(conditioning):
    net = tiny(conditioning)
    perturb(net)
    z, t, y = inputs()
    with torch.no_grad():
        out = net(z, t, y)
        other_t = net(z, 1.0 - t, y)
        other_y = net(z, t, torch.tensor([1, 2, 3]))
    assert (out - other_t).abs().amax(dim=(1, 2, 3)).min() > 1e-4
    assert (out - other_y).abs().amax(dim=(1, 2, 3)).min() > 1e-4


def test_adaln_zero_block_starts_as_identity():
    net = tiny("adaln_zero")
    x = torch.randn(3, 16, 32)
    c = torch.randn(3, 32)
    for block in net.blocks:
        assert torch.equal(block(x, c), x)  # exactly: the gates are zero
        assert torch.count_nonzero(block.adaLN_modulation[-1].weight) == 0
    # The final linear is zeroed as well: the whole network starts by predicting zeros.
    z, t, y = inputs()
    assert torch.count_nonzero(net(z, t, y)) == 0


def test_adaln_without_zero_is_not_identity():
    net = tiny("adaln")
    x = torch.randn(3, 16, 32)
    c = torch.randn(3, 32)
    block = net.blocks[0]
    assert block.adaLN_modulation[-1].weight.shape == (4 * 32, 32)  # shift and scale, no gates
    assert torch.count_nonzero(block.adaLN_modulation[-1].weight) == block.adaLN_modulation[-1].weight.numel()
    assert (block(x, c) - x).abs().max() > 1e-3
    z, t, y = inputs()
    assert net(z, t, y).abs().max() > 1e-3


def test_in_context_tokens_are_attended_and_removed():
    net = tiny("in_context")
    perturb(net)
    seen = []
    net.blocks[0].register_forward_hook(lambda m, args, out: seen.append(out.shape))
    net.final_layer.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    z, t, y = inputs()
    net(z, t, y)
    assert seen == [torch.Size([3, 16 + 2, 32]), torch.Size([3, 16, 32])]


def test_cross_attention_context_is_time_and_label_tokens():
    net = tiny("cross_attention")
    perturb(net)
    seen = []
    net.blocks[1].cross_attn.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    z, t, y = inputs()
    net(z, t, y)
    expected = torch.stack([net.t_embedder(t), net.y_embedder(y)], dim=1)  # (B, 2, D)
    torch.testing.assert_close(seen[0], expected)


def test_unconditional_model_has_only_the_null_row():
    net = tiny("adaln_zero", num_classes=0)
    assert net.y_embedder.embedding_table.weight.shape == (1, 32)
    z, t, _ = inputs()
    assert net(z, t, torch.zeros(3, dtype=torch.long)).shape == z.shape
