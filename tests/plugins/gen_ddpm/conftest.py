"""Shared helpers for the ddpm tests: a tiny learned-variance DiT and the reference backbone."""

from __future__ import annotations

import pytest
import torch

import gen

#: A tiny DiT on 4-channel 8x8 latents with 3 classes (ε and the variance: 8 output channels).
TINY = dict(
    input_size=8,
    patch_size=4,
    in_channels=4,
    out_channels=8,
    hidden_size=32,
    depth=1,
    num_heads=2,
    num_classes=3,
)


def tiny_dit(**overrides) -> torch.nn.Module:
    """The tiny DiT with seeded weights, every parameter perturbed off its (partly zero) initial value."""
    torch.manual_seed(0)
    net = gen.build("backbone", "dit", **{**TINY, **overrides})
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def reference_dit(tensors: dict, config: dict) -> torch.nn.Module:
    """The DiT of a reference file (``net.*`` weights), in eval mode."""
    b = config["backbone"]
    net = gen.build(
        "backbone",
        "dit",
        input_size=b["input_size"],
        patch_size=b["patch_size"],
        in_channels=b["in_channels"],
        out_channels=2 * b["in_channels"] if b["learn_sigma"] else b["in_channels"],
        hidden_size=b["hidden_size"],
        depth=b["depth"],
        num_heads=b["num_heads"],
        mlp_ratio=b["mlp_ratio"],
        num_classes=b["num_classes"],
    )
    net.load_state_dict(
        {k.removeprefix("net."): v for k, v in tensors.items() if k.startswith("net.")}, strict=True
    )
    return net.eval()


@pytest.fixture
def tiny() -> torch.nn.Module:
    """A fresh tiny DiT (learned variance)."""
    return tiny_dit()


@pytest.fixture
def make_tiny():
    """``make_tiny(**overrides)``: a tiny DiT with other fields (``out_channels=4`` for a fixed variance)."""
    return tiny_dit


@pytest.fixture(scope="session")
def dit_from_reference():
    """``dit_from_reference(tensors, config)``: the reference file's DiT with its weights."""
    return reference_dit
