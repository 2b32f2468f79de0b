"""Shared helpers for the JiT tests: a tiny configuration and a perturbed model."""

from __future__ import annotations

import pytest
import torch

from gen_jit.config import JiTConfig
from gen_jit.model import JiT

#: A tiny JiT: 16x16 images, 4x4 patches (16 tokens), width 32, 4 blocks, 2 in-context tokens from block 1.
TINY = dict(
    input_size=16,
    patch_size=4,
    hidden_size=32,
    depth=4,
    num_heads=2,
    bottleneck_dim=8,
    in_context_len=2,
    in_context_start=1,
    num_classes=5,
)


def make_tiny(**overrides) -> JiT:
    """A tiny JiT with the published initialisation (seeded)."""
    torch.manual_seed(0)
    return JiT(JiTConfig(**{**TINY, **overrides}))


def perturb(net: torch.nn.Module, std: float = 0.05, seed: int = 1) -> torch.nn.Module:
    """Add noise to every parameter so that zero-initialised layers cannot hide a mistake."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)
    return net


@pytest.fixture
def tiny():
    """``tiny(**overrides) -> JiT``: the tiny model with fields of :data:`TINY` replaced."""
    return make_tiny


@pytest.fixture
def tiny_fields() -> dict:
    """The tiny configuration's fields."""
    return dict(TINY)


@pytest.fixture(name="perturb")
def perturb_fixture():
    """``perturb(net, std=0.05, seed=1) -> net`` with noise added to every parameter."""
    return perturb
