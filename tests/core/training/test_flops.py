"""MFU arithmetic, checked by hand: the FLOPs of a two-layer MLP, and MFU from images/s and a peak."""

from __future__ import annotations

import pytest
import torch

import gen
from gen.training.flops import PEAK_ENV, count_flops, flops_per_sample, mfu, peak_flops


class TwoLayers(torch.nn.Module):
    def __init__(self, d: int, h: int):
        super().__init__()
        self.a, self.b = torch.nn.Linear(d, h), torch.nn.Linear(h, d)

    def forward(self, z, t, y):
        return self.b(torch.relu(self.a(z)))


def test_two_layer_mlp_by_hand():
    d, h = 6, 10
    # forward: 2dh + 2hd. backward: layer b needs its input's gradient (2hd) and its weight's (2hd);
    # layer a only its weight's (2dh): z needs no gradient. Biases and ReLU are not matrix products.
    assert count_flops(TwoLayers(d, h), (d,)) == 2 * d * h * 5
    with torch.device("meta"):  # counted without computing, the same number
        assert count_flops(TwoLayers(d, h), (d,)) == 2 * d * h * 5


def test_jit_b16_at_256_costs_151_gflop_per_training_image():
    recipe = gen.load_recipe(
        "recipes/jit_b16.toml",
        ["data={name='synthetic', shape=[3, 256, 256], num_classes=1000, num_samples=10}"],
    )
    flops = flops_per_sample(recipe, gen.DataSpec(shape=(3, 256, 256), num_classes=1000))
    assert flops == pytest.approx(151.29e9, rel=1e-3)


def test_mfu_and_the_peak(monkeypatch):
    assert mfu(1000.0, 150e9, 300e12) == pytest.approx(0.5)
    assert mfu(1000.0, 150e9, None) is None
    monkeypatch.delenv(PEAK_ENV, raising=False)
    assert peak_flops(torch.device("cpu"), "bf16") is None  # a CPU's peak is not in the table
    monkeypatch.setenv(PEAK_ENV, "0.4")
    assert peak_flops(torch.device("cpu"), "bf16") == pytest.approx(0.4e12)
