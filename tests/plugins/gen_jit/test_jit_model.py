"""JiT model: initialisation, position tables, in-context tokens, every ablation switch, dtypes, compile."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import gen
from gen_jit.layers import GeluMLP, RMSNorm, SwiGLU
from gen_jit.positions import apply_rope, rope_tables_2d, sincos_pos_embed_2d


def batch(net, n: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    C, S = net.in_channels, net.input_size
    z = torch.randn(n, C, S, S, generator=g)
    t = torch.rand(n, generator=g)
    y = torch.randint(0, net.config.num_classes + 1, (n,), generator=g)
    return z, t, y


def nonzero_grads(net) -> dict[str, bool]:
    return {n: p.grad is not None and p.grad.abs().sum().item() > 0 for n, p in net.named_parameters()}


# -- initialisation ---------------------------------------------------------------------------------


def test_published_initialisation(tiny):
    net = tiny()
    z, t, y = batch(net)
    assert torch.equal(net(z, t, y), torch.zeros_like(z))  # zeroed output layer
    for block in net.blocks:
        assert not block.adaLN_modulation[-1].weight.any() and not block.adaLN_modulation[-1].bias.any()
    assert not net.final_layer.adaLN_modulation[-1].weight.any()
    # xavier-uniform linears with zero bias; the patch convolutions are initialised as linears.
    qkv = net.blocks[0].attn.qkv
    assert qkv.weight.abs().max() <= math.sqrt(6 / (32 + 96)) and not qkv.bias.any()
    assert qkv.weight.abs().max() > 0.8 * math.sqrt(6 / (32 + 96))
    proj1 = net.x_embedder.proj1.weight  # (8, 3, 4, 4): fan_in 48, fan_out 8
    assert proj1.abs().max() <= math.sqrt(6 / (48 + 8)) and proj1.abs().max() > 0.8 * math.sqrt(6 / 56)
    for table in (net.y_embedder.embedding_table.weight, net.t_embedder.mlp[0].weight, net.in_context_posemb):
        assert 0.01 < table.std().item() < 0.03


def test_training_from_init_reaches_every_parameter(tiny):
    """Zero-initialised layers open up after a few steps; then every parameter receives a gradient."""
    net = tiny()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    z, t, y = batch(net, n=4)
    target = torch.randn_like(z)
    for _ in range(3):
        opt.zero_grad()
        (net(z, t, y) - target).pow(2).mean().backward()
        opt.step()
    opt.zero_grad()
    (net(z, t, y) - target).pow(2).mean().backward()
    assert all(nonzero_grads(net).values()), [n for n, ok in nonzero_grads(net).items() if not ok]


# -- position tables ----------------------------------------------------------------------------------


def test_sincos_table_by_hand():
    table = sincos_pos_embed_2d(4, 2)  # 4 channels: [sin x, cos x, sin y, cos y] with omega = 1
    for r in range(2):
        for c in range(2):
            expected = torch.tensor([math.sin(c), math.cos(c), math.sin(r), math.cos(r)])
            torch.testing.assert_close(table[r * 2 + c], expected)


def test_rope_rotates_rows_then_columns_and_leaves_prefix_tokens_alone():
    cos, sin = rope_tables_2d(4, 3, num_prefix=2)  # head_dim 4: pair (0,1) ~ row, pair (2,3) ~ column
    x = torch.tensor([1.0, 0.0, 1.0, 0.0]).expand(1, 1, 11, 4)
    rotated = apply_rope(x, cos, sin)[0, 0]
    torch.testing.assert_close(rotated[:2], x[0, 0, :2])  # in-context tokens are not rotated
    for r in range(3):
        for c in range(3):
            expected = torch.tensor([math.cos(r), math.sin(r), math.cos(c), math.sin(c)])
            torch.testing.assert_close(rotated[2 + r * 3 + c], expected)


def test_rope_scores_depend_on_relative_position_only():
    cos, sin = rope_tables_2d(16, 4)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(16, generator=g), torch.randn(16, generator=g)
    qr = apply_rope(q.expand(1, 1, 16, 16), cos, sin)[0, 0]  # (16 tokens, 16)
    kr = apply_rope(k.expand(1, 1, 16, 16), cos, sin)[0, 0]

    def score(a, b):
        return (qr[a[0] * 4 + a[1]] * kr[b[0] * 4 + b[1]]).sum()

    torch.testing.assert_close(score((0, 0), (1, 2)), score((2, 1), (3, 3)))
    assert not torch.allclose(score((0, 0), (1, 2)), score((0, 0), (2, 1)))


def test_position_buffers(tiny):
    net = tiny()
    persistent = set(net.state_dict())
    assert "pos_embed" in persistent and "rope_cos" not in persistent and "rope_sin" not in persistent
    assert not any(name == "pos_embed" for name, _ in net.named_parameters())
    assert net.rope_cos.shape == (2 + 16, 16)


# -- architecture ---------------------------------------------------------------------------------------


def test_in_context_tokens_enter_at_the_start_block(tiny):
    net = tiny(depth=4, in_context_start=2, in_context_len=3)
    lengths = []
    for block in net.blocks:
        block.register_forward_pre_hook(lambda m, args: lengths.append(args[0].shape[1]))
    z, t, y = batch(net)
    assert net(z, t, y).shape == z.shape
    assert lengths == [16, 16, 19, 19]


def test_unpatchify_inverts_patchify(tiny):
    net = tiny()
    images = torch.randn(2, 3, 16, 16)
    tokens = torch.einsum("nchpwq->nhwpqc", images.reshape(2, 3, 4, 4, 4, 4)).reshape(2, 16, 48)
    torch.testing.assert_close(net.unpatchify(tokens), images)


def test_dropout_only_in_the_middle_half(tiny):
    net = tiny(depth=8, attn_drop=0.1, proj_drop=0.2)
    expected = [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert [b.attn.attn_drop * 10 for b in net.blocks] == pytest.approx(expected)
    assert [b.attn.proj_drop.p * 5 for b in net.blocks] == pytest.approx(expected)
    assert [b.mlp.ffn_dropout.p * 5 for b in net.blocks] == pytest.approx(expected)


def test_dropout_is_active_in_training_only(tiny, perturb):
    net = perturb(tiny(depth=4, attn_drop=0.3, proj_drop=0.3))
    z, t, y = batch(net)
    net.train()
    assert not torch.allclose(net(z, t, y), net(z, t, y))
    net.eval()
    torch.testing.assert_close(net(z, t, y), net(z, t, y))


def test_wrong_input_shape_is_a_clear_error(tiny):
    net = tiny()
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\).*input_size"):
        net(torch.zeros(1, 3, 32, 32), torch.zeros(1), torch.zeros(1, dtype=torch.long))


# -- ablation switches: every one builds, keeps the published names where they exist, and trains ----------

SWITCHES = {
    "published": ({}, {"blocks.0.mlp.w12.weight": (2 * 85, 32), "x_embedder.proj1.weight": (8, 3, 4, 4)}),
    "gelu": ({"mlp": "gelu"}, {"blocks.0.mlp.fc1.weight": (128, 32), "blocks.0.mlp.fc2.weight": (32, 128)}),
    "layernorm": ({"norm": "layer"}, {"blocks.0.norm1.bias": (32,), "blocks.0.attn.q_norm.bias": (16,)}),
    "no_rope": ({"rope": False}, {}),
    "no_qk_norm": ({"qk_norm": False}, {}),
    "no_in_context": ({"in_context_len": 0}, {}),
    "no_bottleneck": (
        {"bottleneck_dim": 0},
        {"x_embedder.proj.weight": (32, 3, 4, 4), "x_embedder.proj.bias": (32,)},
    ),
    "patch_3_of_24": ({"input_size": 24, "patch_size": 3}, {"pos_embed": (1, 64, 32)}),
    "single_patch": ({"input_size": 12, "patch_size": 12}, {"final_layer.linear.weight": (432, 32)}),
    "grey_unconditional": (
        {"in_channels": 1, "num_classes": 0},
        {"y_embedder.embedding_table.weight": (1, 32)},
    ),
    "everything_off": (
        {
            "mlp": "gelu",
            "norm": "layer",
            "rope": False,
            "qk_norm": False,
            "in_context_len": 0,
            "bottleneck_dim": 0,
        },
        {"blocks.3.mlp.fc1.weight": (128, 32)},
    ),
}
ABSENT = {
    "gelu": ["blocks.0.mlp.w12.weight"],
    "layernorm": [],
    "no_qk_norm": ["blocks.0.attn.q_norm.weight", "blocks.0.attn.k_norm.weight"],
    "no_in_context": ["in_context_posemb"],
    "no_bottleneck": ["x_embedder.proj1.weight", "x_embedder.proj2.weight"],
    "grey_unconditional": [],
}


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_switch_builds_and_every_parameter_learns(switch, tiny, perturb):
    overrides, shapes = SWITCHES[switch]
    net = perturb(tiny(**overrides))
    state = net.state_dict()
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    for key in ABSENT.get(switch, []):
        assert key not in state
    z, t, y = batch(net)
    out = net(z, t, y)
    assert out.shape == z.shape and torch.isfinite(out).all()
    (out - torch.randn_like(out)).pow(2).mean().backward()
    grads = nonzero_grads(net)
    assert all(grads.values()), [n for n, ok in grads.items() if not ok]


def test_switches_select_the_modules(tiny):
    assert isinstance(tiny(mlp="gelu").blocks[0].mlp, GeluMLP)
    assert isinstance(tiny().blocks[0].mlp, SwiGLU)
    assert isinstance(tiny(norm="layer").blocks[0].norm1, nn.LayerNorm)
    assert isinstance(tiny().blocks[0].attn.q_norm, RMSNorm)
    assert isinstance(tiny(qk_norm=False).blocks[0].attn.q_norm, nn.Identity)
    assert not hasattr(tiny(rope=False), "rope_cos")


def test_rope_switch_changes_the_function(tiny, perturb):
    with_rope = perturb(tiny())
    without = tiny(rope=False)
    without.load_state_dict(with_rope.state_dict())  # same weights: only the rotation differs
    z, t, y = batch(with_rope)
    assert not torch.allclose(with_rope(z, t, y), without(z, t, y), atol=1e-4)


# -- dtypes and compile -----------------------------------------------------------------------------


def test_bf16_autocast_forward_and_backward(tiny, perturb):
    net = perturb(tiny())
    z, t, y = batch(net)
    reference = net(z, t, y).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(z, t, y)
    assert out.dtype == torch.bfloat16
    assert ((out.float() - reference).norm() / reference.norm()).item() < 0.05
    out.float().pow(2).mean().backward()
    assert all(p.grad.dtype == torch.float32 for p in net.parameters())


# torch.compile imports torch.utils.mkldnn, which warns about torch.jit internally.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compile_wraps_each_block_and_keeps_the_names(tiny):
    eager, compiled = tiny(), tiny(compile=True)
    assert list(compiled.state_dict()) == list(eager.state_dict())
    assert all(block._compiled_call_impl is not None for block in compiled.blocks)
    assert compiled.final_layer._compiled_call_impl is not None
    assert all(block._compiled_call_impl is None for block in eager.blocks)


def test_meta_build_then_materialise(tiny, tiny_fields, perturb):
    from gen_jit.config import JiTConfig
    from gen_jit.model import JiT

    eager = perturb(tiny())
    with torch.device("meta"):
        lazy = JiT(JiTConfig(**tiny_fields))
    lazy.to_empty(device="cpu")
    lazy.load_state_dict(eager.state_dict())
    lazy.init_position_tables()  # the RoPE tables are derived, not loaded
    z, t, y = batch(eager)
    torch.testing.assert_close(lazy(z, t, y), eager(z, t, y), rtol=0, atol=0)


def test_conditioning_layers_are_the_shared_ones(tiny):
    """t and y embedders are `gen.TimestepEmbedder` and `gen.LabelEmbedder`, under the published names."""
    net = tiny()
    assert isinstance(net.t_embedder, gen.TimestepEmbedder) and isinstance(net.y_embedder, gen.LabelEmbedder)
    assert net.y_embedder.null_label == net.config.num_classes == 5
    keys = net.state_dict()
    assert keys["t_embedder.mlp.0.weight"].shape == (32, 256)  # 256 sinusoidal features -> width 32
    assert keys["t_embedder.mlp.2.weight"].shape == (32, 32)
    assert keys["y_embedder.embedding_table.weight"].shape == (6, 32)  # 5 classes + the null label
    t = torch.tensor([0.0, 0.25, 1.0])
    torch.testing.assert_close(
        net.t_embedder(t), net.t_embedder.mlp(gen.timestep_embedding(t, 256)), rtol=0, atol=0
    )
