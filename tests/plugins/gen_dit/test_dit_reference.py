"""The dit backbone computes the published DiT's function: reference vectors, the sin-cos table, sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gen
from gen_dit import DiT, DiTConfig
from gen_dit.embeddings import sincos_pos_embed_2d


def config_from_reference(cfg: dict) -> DiTConfig:
    b = cfg["backbone"]
    in_ch = b["in_channels"]
    return DiTConfig(
        input_size=b["input_size"],
        patch_size=b["patch_size"],
        in_channels=in_ch,
        out_channels=2 * in_ch if b["learn_sigma"] else in_ch,
        hidden_size=b["hidden_size"],
        depth=b["depth"],
        num_heads=b["num_heads"],
        mlp_ratio=b["mlp_ratio"],
        num_classes=b["num_classes"],
    )


def test_reference_forward_matches(reference):
    tensors, cfg = reference("dit_tiny")
    net = DiT(config_from_reference(cfg))
    state = {k.removeprefix("net."): v for k, v in tensors.items() if k.startswith("net.")}
    net.load_state_dict(state, strict=True)  # every name is DiT's own, nothing missing or extra
    net.eval()
    with torch.no_grad():
        out = net(tensors["forward.z"], tensors["forward.t"], tensors["forward.y"])
    assert out.shape == tensors["forward.out"].shape
    assert (out - tensors["forward.out"]).abs().max().item() < 1e-4
    # The vectors include the null label; the comparison is not trivially satisfied by a zero output.
    assert int(tensors["forward.y"].max()) == cfg["backbone"]["num_classes"]
    assert tensors["forward.out"].abs().max().item() > 0.1


def _reference_2d_sincos(embed_dim: int, grid_size: int) -> np.ndarray:
    """DiT's ``get_2d_sincos_pos_embed`` (numpy), transcribed from models.py."""

    def one_d(dim, pos):
        omega = np.arange(dim // 2, dtype=np.float64)
        omega /= dim / 2.0
        omega = 1.0 / 10000**omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(grid_w, grid_h), axis=0).reshape([2, 1, grid_size, grid_size])
    return np.concatenate([one_d(embed_dim // 2, grid[0]), one_d(embed_dim // 2, grid[1])], axis=1)


@pytest.mark.parametrize(("dim", "grid"), [(64, 4), (1152, 16), (384, 7)])
def test_sincos_table_matches_dit(dim, grid):
    ours = sincos_pos_embed_2d(dim, grid)
    ref = torch.from_numpy(_reference_2d_sincos(dim, grid)).float()
    assert ours.shape == (grid * grid, dim)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_reference_pos_embed_is_the_sincos_table(reference):
    tensors, cfg = reference("dit_tiny")
    b = cfg["backbone"]
    table = sincos_pos_embed_2d(b["hidden_size"], b["input_size"] // b["patch_size"])
    torch.testing.assert_close(tensors["net.pos_embed"][0], table, rtol=0, atol=1e-7)
    net = DiT(config_from_reference(cfg))
    assert not net.pos_embed.requires_grad
    torch.testing.assert_close(net.pos_embed[0], table, rtol=0, atol=0)


def test_timestep_embedding_by_hand():
    t = torch.tensor([0.0, 0.5, 3.0])
    emb = gen.timestep_embedding(t, 8)
    freqs = [10000 ** (-k / 4) for k in range(4)]
    expected = [[np.cos(ti * f) for f in freqs] + [np.sin(ti * f) for f in freqs] for ti in t.tolist()]
    torch.testing.assert_close(emb, torch.tensor(expected, dtype=torch.float32))
    assert gen.timestep_embedding(t, 9).shape == (3, 9)


@pytest.mark.parametrize(
    ("preset", "expected"),
    [("XL/2", 675_129_632), ("L/2", 458_102_816), ("B/2", 130_512_416), ("S/2", 32_963_360)],
)
def test_parameter_counts_match_published(preset, expected):
    # DiT on 32x32x4 latents, learn_sigma (8 output channels), 1000 classes; pos_embed included.
    with torch.device("meta"):
        net = DiT(DiTConfig(preset=preset, input_size=32, in_channels=4, out_channels=8, num_classes=1000))
    assert sum(p.numel() for p in net.parameters()) == expected
    frozen = sum(p.numel() for p in net.parameters() if not p.requires_grad)
    assert frozen == net.pos_embed.numel() == 256 * net.config.hidden_size
