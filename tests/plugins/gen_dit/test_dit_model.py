"""Building blocks checked by hand (attention, unpatchify), mixed precision, compile, registration."""

from __future__ import annotations

import math

import pytest
import torch

import gen
from gen_dit import DiT, DiTConfig
from gen_dit.attention import Attention, CrossAttention

TINY = dict(input_size=8, patch_size=2, in_channels=3, hidden_size=32, depth=2, num_heads=4, num_classes=5)


def naive_attention(q, k, v):
    """softmax(q k^T / sqrt(d)) v, in float64. q (B, H, N, d), k and v (B, H, M, d)."""
    w = (q.double() @ k.double().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return (w.softmax(-1) @ v.double()).float()


def split_heads(x, heads):
    B, N, D = x.shape
    return x.reshape(B, N, heads, D // heads).transpose(1, 2)  # (B, H, N, d)


def test_self_attention_by_hand():
    torch.manual_seed(0)
    attn = Attention(16, 4)
    x = torch.randn(2, 5, 16)
    q, k, v = attn.qkv(x).split(16, dim=-1)  # timm's qkv layout: [q | k | v], heads contiguous
    heads = naive_attention(split_heads(q, 4), split_heads(k, 4), split_heads(v, 4))  # (B, H, N, d)
    expected = attn.proj(heads.transpose(1, 2).reshape(2, 5, 16))
    torch.testing.assert_close(attn(x), expected, atol=1e-5, rtol=1e-5)


def test_cross_attention_by_hand():
    torch.manual_seed(0)
    attn = CrossAttention(16, 2)
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 3, 16)
    k, v = attn.kv(ctx).split(16, dim=-1)
    heads = naive_attention(split_heads(attn.q(x), 2), split_heads(k, 2), split_heads(v, 2))
    expected = attn.proj(heads.transpose(1, 2).reshape(2, 5, 16))
    torch.testing.assert_close(attn(x, ctx), expected, atol=1e-5, rtol=1e-5)


def test_unpatchify_is_dit_layout():
    net = DiT(DiTConfig(**TINY, out_channels=2))
    tokens = torch.randn(3, 16, 2 * 2 * 2)  # (B, N, p*p*C)
    ref = torch.einsum("nhwpqc->nchpwq", tokens.reshape(3, 4, 4, 2, 2, 2)).reshape(3, 2, 8, 8)
    assert torch.equal(net.unpatchify(tokens), ref)
    # And it inverts the patch order of the embedding: pixel (r, c) of patch (i, j) is image (2i+r, 2j+c).
    assert net.unpatchify(tokens)[1, 0, 5, 2].item() == tokens[1, 2 * 4 + 1, (1 * 2 + 0) * 2 + 0].item()


@pytest.mark.parametrize("conditioning", ["adaln_zero", "cross_attention", "in_context"])
def test_bf16_autocast(conditioning):
    torch.manual_seed(0)
    net = DiT(DiTConfig(**TINY, conditioning=conditioning))
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    z, t, y = torch.randn(2, 3, 8, 8), torch.rand(2), torch.tensor([1, 5])
    full = net(z, t, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = net(z, t, y)
    half.float().square().mean().backward()
    assert torch.isfinite(half.float()).all()
    assert (half.float() - full).abs().max() < 0.05 * full.abs().max()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_compile_traces_blocks_without_graph_breaks(monkeypatch):
    # Inductor takes ~30 s to compile on a CPU; the aot_eager backend exercises the same Dynamo tracing
    # (fullgraph: a graph break fails the test) and AOT autograd, in a second.
    original = torch.nn.Module.compile
    calls = []

    def compile_fast(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return original(self, *args, backend="aot_eager", fullgraph=True, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "compile", compile_fast)
    torch._dynamo.reset()
    torch.manual_seed(0)
    eager = DiT(DiTConfig(**TINY))
    with torch.no_grad():
        for p in eager.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    compiled = DiT(DiTConfig(**TINY, compile=True))
    assert calls == ["AdaLNBlock", "AdaLNBlock", "FinalLayer"]
    compiled.load_state_dict(eager.state_dict())  # same names: no "_orig_mod." prefix
    z, t, y = torch.randn(2, 3, 8, 8), torch.rand(2), torch.tensor([1, 5])
    out = compiled(z, t, y)
    out.sum().backward()
    torch.testing.assert_close(out, eager(z, t, y), atol=1e-5, rtol=1e-5)
    assert compiled.blocks[0].attn.qkv.weight.grad is not None
    torch._dynamo.reset()


def test_wrong_input_shape_is_a_clear_error():
    net = DiT(DiTConfig(**TINY))
    with pytest.raises(gen.GenError, match=r"\(B, 3, 8, 8\).*got \(2, 3, 16, 16\)"):
        net(torch.randn(2, 3, 16, 16), torch.rand(2), torch.tensor([0, 1]))


def test_registered_as_dit_backbone():
    component = gen.get_registry("backbone").get("dit")
    assert component.config is DiTConfig
    assert component.plugin == "gen_dit"
    net = component.factory(DiTConfig(**TINY, conditioning="adaln"))
    assert isinstance(net, DiT) and net.conditioning == "adaln"


def test_gen_build_validates_like_a_recipe():
    net = gen.build("backbone", "dit", preset="S/2", input_size=8, in_channels=3, num_classes=5, depth=1)
    assert isinstance(net, DiT)
    assert (net.config.hidden_size, net.config.depth, net.config.patch_size) == (384, 1, 2)
    with pytest.raises(gen.RecipeError, match="patch_size"):
        gen.build("backbone", "dit", preset="S/3", input_size=8)
    with pytest.raises(gen.RecipeError, match="conditioning"):
        gen.build("backbone", "dit", preset="S/2", input_size=8, conditioning="film")


@pytest.mark.parametrize("conditioning", ["adaln_zero", "adaln"])
def test_conditioning_layers_are_the_shared_ones(conditioning):
    """t and y embedders are gen's, under the published names; only adaLN-Zero zeroes the modulation."""
    torch.manual_seed(0)
    net = DiT(DiTConfig(**TINY, conditioning=conditioning))
    assert isinstance(net.t_embedder, gen.TimestepEmbedder) and isinstance(net.y_embedder, gen.LabelEmbedder)
    assert net.y_embedder.null_label == 5 and net.y_embedder.embedding_table.weight.shape == (6, 32)
    assert net.state_dict()["t_embedder.mlp.0.weight"].shape == (32, 256)
    zeroed = [not m.adaLN_modulation[-1].weight.any() for m in [*net.blocks, net.final_layer]]
    assert all(zeroed) if conditioning == "adaln_zero" else not any(zeroed)
