"""The backbone layers of `gen.layers` against values computed by hand (in float64)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import gen


def test_timestep_embedding_of_zero_is_ones_then_zeros():
    emb = gen.timestep_embedding(torch.zeros(2), 8)  # cos(0) = 1, sin(0) = 0
    assert emb.dtype == torch.float32 and emb.shape == (2, 8)
    assert torch.equal(emb, torch.tensor([[1.0] * 4 + [0.0] * 4] * 2))


@pytest.mark.parametrize("max_period", [10000.0, 100.0])
def test_timestep_embedding_by_hand(max_period):
    freqs = [max_period ** (-k / 3) for k in range(3)]  # h = 3: 1, max_period^(-1/3), max_period^(-2/3)
    expected = [[math.cos(x * f) for f in freqs] + [math.sin(x * f) for f in freqs] for x in (0.5, 3.0)]
    # float32 for float32, bf16 and integer times (as published); float64 times stay float64 (the float64
    # JVP checks of the backbones), with the float32 frequencies
    for dtype, want in [
        (torch.float32, torch.float32),
        (torch.bfloat16, torch.float32),
        (torch.float64, torch.float64),
    ]:
        emb = gen.timestep_embedding(torch.tensor([0.5, 3.0], dtype=dtype), 6, max_period=max_period)
        assert emb.dtype == want
        torch.testing.assert_close(
            emb.double(), torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-6
        )
    assert gen.timestep_embedding(torch.tensor([1, 3]), 6).dtype == torch.float32


def test_timestep_embedding_of_odd_width_ends_with_a_zero_column():
    t = torch.tensor([0.25, 7.0])
    emb = gen.timestep_embedding(t, 5)
    assert emb.shape == (2, 5) and not emb[:, 4].any()
    assert torch.equal(emb[:, :4], gen.timestep_embedding(t, 4))


def test_timestep_embedding_keeps_the_published_frequencies_bit_for_bit():
    """DiT's (and JiT's) ``exp(-log(max_period) * arange(h) / h)`` in float32, for the width they use."""
    t = torch.rand(16, generator=torch.Generator().manual_seed(0))
    half = 128
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None] * freqs[None]
    assert torch.equal(gen.timestep_embedding(t, 256), torch.cat([args.cos(), args.sin()], dim=-1))


def test_timestep_embedder_is_the_features_through_an_mlp():
    torch.manual_seed(0)
    emb = gen.TimestepEmbedder(12, frequency_dim=16, max_period=50.0)
    assert {k: tuple(v.shape) for k, v in emb.state_dict().items()} == {
        "mlp.0.weight": (12, 16),
        "mlp.0.bias": (12,),
        "mlp.2.weight": (12, 12),
        "mlp.2.bias": (12,),
    }
    t = torch.tensor([0.0, 0.3, 1.0])
    out = emb(t)
    assert out.shape == (3, 12)
    features = gen.timestep_embedding(t, 16, max_period=50.0)
    torch.testing.assert_close(
        out, emb.mlp[2](torch.nn.functional.silu(emb.mlp[0](features))), rtol=0, atol=0
    )


def test_embedder_inits_draw_normal_weights_in_order():
    t_emb, y_emb = gen.TimestepEmbedder(8, frequency_dim=4), gen.LabelEmbedder(3, 8)
    biases = [t_emb.mlp[0].bias.clone(), t_emb.mlp[2].bias.clone()]
    torch.manual_seed(5)
    y_emb.init_weights(std=0.02)
    t_emb.init_weights(std=0.02)
    torch.manual_seed(5)  # the same draws by hand: the table, then mlp.0, then mlp.2
    table = torch.empty(4, 8).normal_(std=0.02)
    w0 = torch.empty(8, 4).normal_(std=0.02)
    w2 = torch.empty(8, 8).normal_(std=0.02)
    assert torch.equal(y_emb.embedding_table.weight, table)
    assert torch.equal(t_emb.mlp[0].weight, w0) and torch.equal(t_emb.mlp[2].weight, w2)
    assert torch.equal(t_emb.mlp[0].bias, biases[0]) and torch.equal(t_emb.mlp[2].bias, biases[1])


@pytest.mark.parametrize("num_classes", [0, 1, 10])
def test_label_embedder_has_a_null_row(num_classes):
    emb = gen.LabelEmbedder(num_classes, 6)
    assert emb.null_label == num_classes
    assert emb.embedding_table.weight.shape == (num_classes + 1, 6)
    assert list(emb.state_dict()) == ["embedding_table.weight"]
    y = torch.tensor([emb.null_label, 0])
    assert torch.equal(emb(y), emb.embedding_table.weight[[num_classes, 0]])


def test_modulate_by_hand():
    x = torch.arange(12.0).reshape(1, 3, 4)  # (B, N, D): rows [0..3], [4..7], [8..11]
    shift = torch.tensor([[1.0, 0.0, -1.0, 0.5]])  # (B, D)
    scale = torch.tensor([[0.0, 1.0, -1.0, 0.5]])  # x * (1 + scale): x, 2x, 0, 1.5x
    expected = torch.tensor([[[1.0, 2.0, -1.0, 5.0], [5.0, 10.0, -1.0, 11.0], [9.0, 18.0, -1.0, 17.0]]])
    assert torch.equal(gen.modulate(x, shift, scale), expected)
    assert torch.equal(gen.modulate(x, torch.zeros(1, 4), torch.zeros(1, 4)), x)


class GatedBlock(nn.Module):
    """A minimal adaLN-Zero block: ``x + gate * mlp(modulate(norm(x), shift, scale))``."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = nn.Linear(dim, dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 3 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.adaLN_modulation(c).chunk(3, dim=-1)
        return x + gate.unsqueeze(1) * self.mlp(gen.modulate(self.norm(x), shift, scale))


class Final(nn.Module):
    def __init__(self, dim: int, out: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.linear = nn.Linear(dim, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(gen.modulate(self.norm(x), shift, scale))


def test_adaln_zero_makes_every_block_the_identity_and_the_output_zero():
    torch.manual_seed(0)
    blocks, final = [GatedBlock(8), GatedBlock(8)], Final(8, 5)
    x, c = torch.randn(2, 4, 8), torch.randn(2, 8)
    assert not torch.equal(blocks[0](x, c), x)  # not an identity before
    rng = torch.get_rng_state()
    gen.init_adaln_zero(blocks, final)
    assert torch.equal(torch.get_rng_state(), rng)  # no random draws: the init order of a model is kept
    for block in blocks:
        assert torch.equal(block(x, c), x)
        assert block.mlp.weight.any()  # the branches themselves keep their weights
    assert torch.equal(final(x, c), torch.zeros(2, 4, 5))
