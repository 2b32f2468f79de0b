"""JiT against the published implementation: reference vectors, parameter names and parameter counts."""

from __future__ import annotations

import pytest
import torch

import gen
from gen_jit.config import PRESETS, JiTConfig
from gen_jit.model import JiT


def reference_net(reference) -> tuple[JiT, dict[str, torch.Tensor]]:
    tensors, cfg = reference("jit_tiny")
    config = JiTConfig(
        input_size=cfg["img_size"], num_classes=cfg["num_classes"], in_channels=3, **cfg["backbone"]
    )
    return JiT(config), tensors


def test_reference_forward_matches(reference):
    net, tensors = reference_net(reference)
    state = {k.removeprefix("net."): v for k, v in tensors.items() if k.startswith("net.")}
    net.load_state_dict(state, strict=True)
    net.eval()
    with torch.no_grad():
        out = net(tensors["forward.z"], tensors["forward.t"], tensors["forward.y"])
    assert out.shape == tensors["forward.out"].shape
    assert (out - tensors["forward.out"]).abs().max().item() < 1e-4


def test_state_dict_names_are_the_published_ones(reference):
    net, tensors = reference_net(reference)
    published = {k.removeprefix("net."): tuple(v.shape) for k, v in tensors.items() if k.startswith("net.")}
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert ours == published  # RoPE tables are non-persistent buffers, as in the reference


def test_fixed_position_embedding_is_the_published_table(reference):
    net, tensors = reference_net(reference)
    assert "pos_embed" not in dict(net.named_parameters())  # a buffer: frozen, never optimised
    torch.testing.assert_close(net.pos_embed, tensors["net.pos_embed"], rtol=0, atol=1e-6)


# Trainable parameters of the published models (pos_embed excluded), from the reference README.
PUBLISHED_COUNTS = {
    ("B/16", 256): 131_123_712,
    ("L/16", 256): 458_877_664,
    ("H/16", 256): 952_514_368,
    ("B/32", 512): 133_190_400,
    ("L/32", 512): 461_534_176,
    ("H/32", 512): 956_055_616,
}


@pytest.mark.parametrize(("preset", "size"), list(PUBLISHED_COUNTS))
def test_preset_parameter_counts(preset, size):
    with torch.device("meta"):
        net = gen.build("backbone", "jit", preset=preset, input_size=size, num_classes=1000)
    count = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert count == PUBLISHED_COUNTS[(preset, size)]


@pytest.mark.parametrize("preset", ["G/16", "G/32"])
def test_g_presets_are_two_billion_parameters(preset):
    size = 256 if preset.endswith("16") else 512
    with torch.device("meta"):
        net = JiT(JiTConfig(preset=preset, input_size=size))
    assert len(net.blocks) == 40 and net.blocks[0].attn.num_heads == 16
    assert net.x_embedder.proj1.weight.shape == (256, 3, int(preset[2:]), int(preset[2:]))
    # Width 1664 = 16 heads x 104 channels; about 2.0B parameters, as reported in the paper.
    count = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert 2.0e9 < count < 2.02e9


def test_presets_are_the_published_sizes():
    assert PRESETS["B/16"] == dict(
        depth=12,
        hidden_size=768,
        num_heads=12,
        bottleneck_dim=128,
        in_context_len=32,
        in_context_start=4,
        patch_size=16,
    )
    assert PRESETS["L/32"]["in_context_start"] == 8 and PRESETS["L/32"]["patch_size"] == 32
    assert PRESETS["H/16"]["bottleneck_dim"] == 256 and PRESETS["H/16"]["in_context_start"] == 10
    assert PRESETS["G/32"] == dict(
        depth=40,
        hidden_size=1664,
        num_heads=16,
        bottleneck_dim=256,
        in_context_len=32,
        in_context_start=10,
        patch_size=32,
    )
