"""FD-DINOv2: DINOv2 ViT-L/14 in plain torch (DINOv2's parameter names and shapes, a forward checked
against numpy), EDM2's preprocessing, weights from a local file or a clear error, and ``gen eval``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from gen.commands import app
from gen.metrics import DINOV2_ENV, DINOV2_NAME, DINOV2_URL, DINOv2ViT, load_dinov2, load_reference_stats
from gen.metrics.dinov2 import dinov2_weights_path

runner = CliRunner()


def test_vit_l14_has_dinov2s_parameters():
    with torch.device("meta"):
        net = DINOv2ViT()
    state = net.state_dict()
    assert sum(p.numel() for p in state.values()) == 304_368_640  # DINOv2 ViT-L/14
    assert len(state) == 5 + 24 * 14 + 2  # tokens, patch embedding; 14 per block; the last norm
    for key, shape in {
        "cls_token": (1, 1, 1024),
        "pos_embed": (1, 37 * 37 + 1, 1024),  # trained at 518 px
        "mask_token": (1, 1024),
        "patch_embed.proj.weight": (1024, 3, 14, 14),
        "blocks.0.norm1.weight": (1024,),
        "blocks.0.attn.qkv.weight": (3072, 1024),
        "blocks.0.attn.proj.bias": (1024,),
        "blocks.0.ls1.gamma": (1024,),
        "blocks.23.mlp.fc1.weight": (4096, 1024),
        "blocks.23.mlp.fc2.weight": (1024, 4096),
        "blocks.23.ls2.gamma": (1024,),
        "norm.bias": (1024,),
    }.items():
        assert tuple(state[key].shape) == shape, key


def layer_norm(x, w, b):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-6) * w + b


def vit_numpy(s, x, heads, patch):
    """DINOv2's forward written out in float64 (no interpolation: the grid matches the input)."""
    s = {k: v.double().numpy() for k, v in s.items()}
    b, _, h, w = x.shape
    rows, cols = h // patch, w // patch
    patches = (
        x.reshape(b, 3, rows, patch, cols, patch).transpose(0, 2, 4, 1, 3, 5).reshape(b, rows * cols, -1)
    )
    t = (
        patches @ s["patch_embed.proj.weight"].reshape(len(s["patch_embed.proj.bias"]), -1).T
        + s["patch_embed.proj.bias"]
    )
    t = np.concatenate([np.repeat(s["cls_token"], b, 0), t], 1) + s["pos_embed"]
    d = t.shape[-1]
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))))
    i = 0
    while f"blocks.{i}.norm1.weight" in s:
        p = f"blocks.{i}."
        qkv = (
            layer_norm(t, s[p + "norm1.weight"], s[p + "norm1.bias"]) @ s[p + "attn.qkv.weight"].T
            + s[p + "attn.qkv.bias"]
        )
        q, k, v = (
            qkv[..., j * d : (j + 1) * d].reshape(b, -1, heads, d // heads).transpose(0, 2, 1, 3)
            for j in range(3)
        )
        logits = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d // heads)
        att = np.exp(logits - logits.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = (att @ v).transpose(0, 2, 1, 3).reshape(b, -1, d)
        t = t + s[p + "ls1.gamma"] * (o @ s[p + "attn.proj.weight"].T + s[p + "attn.proj.bias"])
        m = gelu(
            layer_norm(t, s[p + "norm2.weight"], s[p + "norm2.bias"]) @ s[p + "mlp.fc1.weight"].T
            + s[p + "mlp.fc1.bias"]
        )
        t = t + s[p + "ls2.gamma"] * (m @ s[p + "mlp.fc2.weight"].T + s[p + "mlp.fc2.bias"])
        i += 1
    return layer_norm(t, s["norm.weight"], s["norm.bias"])[:, 0]


def test_forward_equals_the_definition_in_numpy(make_vit):
    net = make_vit(img_size=224)  # a 16 x 16 grid: the input's, no interpolation
    images = torch.randint(
        0, 256, (2, 3, 30, 20), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    x = net.preprocess(images)
    assert x.shape == (2, 3, 224, 224)
    expected = vit_numpy(net.state_dict(), x.double().numpy(), heads=2, patch=14)
    np.testing.assert_allclose(net(images).double().numpy(), expected, rtol=1e-4, atol=1e-4)


def test_preprocessing_and_position_embeddings(make_vit):
    net = make_vit()  # trained "at 56 px": a 4 x 4 grid, interpolated to 16 x 16 for 224 px inputs
    grey = torch.full((1, 3, 9, 13), 200, dtype=torch.uint8)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(net.preprocess(grey)[0, :, 100, 7], (200 / 255 - mean) / std)
    pos = net.position_embeddings(16, 16)
    assert pos.shape == (1, 257, 16) and torch.equal(pos[:, 0], net.pos_embed[:, 0])
    with torch.no_grad():
        net.pos_embed[:, 1:] = 0.25  # bicubic interpolation keeps a constant grid constant
    torch.testing.assert_close(net.position_embeddings(16, 16)[:, 1:], torch.full((1, 256, 16), 0.25))
    assert net.position_embeddings(4, 4) is net.pos_embed


def test_weights_load_from_pth_and_safetensors(make_vit, tmp_path):
    net = make_vit()
    state = net.state_dict()
    torch.save(state, tmp_path / DINOV2_NAME)
    save_file(state, str(tmp_path / "w.safetensors"))
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    arch = {"embed_dim": 16, "depth": 2, "num_heads": 2, "img_size": 56}
    for file in (tmp_path / DINOV2_NAME, tmp_path / "w.safetensors"):
        loaded = load_dinov2(file, **arch)
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
        assert torch.equal(loaded(images), net(images))
    with pytest.raises(Exception, match="is not DINOv2 ViT-L/14"):
        load_dinov2(tmp_path / DINOV2_NAME)  # tiny weights for the real architecture


def test_weights_are_found_where_torch_hub_and_edm2_keep_them(tmp_path, monkeypatch):
    for folder in (tmp_path / "env_torch_home" / "hub" / "checkpoints",
                   tmp_path / "env_dnnlib_cache_dir" / "torch_hub" / "checkpoints"):  # fmt: skip
        folder.mkdir(parents=True)
        (folder / DINOV2_NAME).write_bytes(b"")
        assert dinov2_weights_path() == folder / DINOV2_NAME
        (folder / DINOV2_NAME).unlink()
    monkeypatch.setenv(DINOV2_ENV, str(tmp_path / "nope.pth"))
    with pytest.raises(Exception, match=r"\$GEN_DINOV2_WEIGHTS=.*nope.pth does not exist"):
        dinov2_weights_path()


def test_missing_weights_are_one_line_naming_where_it_looked(tiny_inception, images_npz, tmp_path):
    a = images_npz(tmp_path / "a.npz", 4, 0)
    result = runner.invoke(app, ["eval", str(a), "--ref", str(a), "--metric", "fd_dinov2"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    line = errors[0]
    for part in (DINOV2_NAME, DINOV2_URL, DINOV2_ENV, "--dinov2-weights PATH",
                 str(tmp_path / "env_torch_home" / "hub" / "checkpoints"),
                 str(tmp_path / "env_dnnlib_cache_dir" / "torch_hub" / "checkpoints")):  # fmt: skip
        assert part in line, part
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    result = runner.invoke(app, ["eval", "ref-stats", str(a), str(tmp_path / "r.npz"), "--metric", "fd_dinov2",
                                 "--dinov2-weights", str(tmp_path / "other.pth")])  # fmt: skip
    assert (
        result.exit_code == 2
        and "other.pth is not DINOv2 ViT-L/14 (dinov2_vitl14_pretrain.pth): it lacks" in result.output
    )


def test_fd_dinov2_through_gen_eval(
    cli, tiny_inception, tiny_dinov2, images_npz, features_of, frechet_numpy, tmp_path
):
    a = images_npz(tmp_path / "a.npz", 40, 0)
    b = images_npz(tmp_path / "b.npz", 30, 1, shift=40)
    cli("eval", "ref-stats", a, tmp_path / "ref.npz", "--metric", "fd_dinov2")
    stats = load_reference_stats(tmp_path / "ref.npz", ("mu_dinov2", "sigma_dinov2"))
    real, fake = features_of(tiny_dinov2, a).numpy(), features_of(tiny_dinov2, b).numpy()
    np.testing.assert_allclose(stats.mu, real.mean(0), rtol=1e-6, atol=1e-9)
    cli("eval", b, "--ref", tmp_path / "ref.npz", "--metric", "fd_dinov2", "--out", tmp_path / "b.json")
    table = json.loads((tmp_path / "b.json").read_text())
    assert table["rows"][0]["fd_dinov2"] == pytest.approx(frechet_numpy(real, fake), rel=1e-6)
    assert table["fd_dinov2_features"] == "custom:DINOv2ViT" and table["metric"] == "fd_dinov2"
    cli("eval", a, "--ref", a, "--metric", "fd_dinov2", "--out", tmp_path / "self.json")
    assert abs(json.loads((tmp_path / "self.json").read_text())["rows"][0]["fd_dinov2"]) < 1e-6
