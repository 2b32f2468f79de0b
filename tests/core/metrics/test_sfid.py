"""sFID: the spatial features of the FID Inception (ADM's ``mixed_6/conv``, first 7 channels, 2023 dims in
TensorFlow's order), their statistics in reference files (ours and ADM's layout), and ``gen eval``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gen.commands import app
from gen.metrics import load_reference_stats
from gen.metrics.inception import NUM_SPATIAL, FIDInceptionV3

runner = CliRunner()


def test_spatial_features_are_mixed_6_conv_first_7_channels_in_tensorflow_order():
    net = FIDInceptionV3()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # He-scaled random weights, as in the FID Inception test
        for name, p in net.named_parameters():
            scale = math.sqrt(2 / p[0].numel()) if name.endswith("conv.weight") else 0.1
            p.copy_(torch.randn(p.shape, generator=g) * scale + name.endswith("bn.weight"))
    seen = {}
    # TensorFlow's mixed_6 is torch-fidelity's Mixed_6d; mixed_6/conv its 1 x 1 branch (after the ReLU).
    net.Mixed_6d.branch1x1.register_forward_hook(lambda m, i, o: seen.setdefault("conv", o))
    images = torch.randint(0, 256, (1, 3, 20, 20), dtype=torch.uint8, generator=g)
    pool, logits, spatial = net(images, spatial=True)
    assert spatial.shape == (1, NUM_SPATIAL) == (1, 2023)
    conv = seen["conv"]  # (1, 192, 17, 17)
    assert conv.shape == (1, 192, 17, 17) and (conv >= 0).all()
    nhwc = conv.numpy().transpose(0, 2, 3, 1)[..., :7].reshape(1, -1)  # ADM: spatial[..., :7], flattened
    np.testing.assert_array_equal(spatial.numpy(), nhwc)
    # The same network without the spatial output gives the same pool features and logits.
    pool2, logits2 = net(images)
    assert torch.equal(pool, pool2) and torch.equal(logits, logits2)


def test_sfid_of_a_set_against_itself_is_zero(
    cli, tiny_inception, images_npz, features_of, frechet_numpy, tmp_path
):
    a = images_npz(tmp_path / "a.npz", 40, 0)
    b = images_npz(tmp_path / "b.npz", 30, 1, shift=40)
    cli("eval", "ref-stats", a, tmp_path / "ref.npz")  # the spatial statistics come with every reference
    stats = load_reference_stats(tmp_path / "ref.npz", ("mu_s", "sigma_s"))
    spatial = features_of(tiny_inception, a)[2].numpy()
    np.testing.assert_allclose(stats.mu, spatial.mean(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(stats.sigma, np.cov(spatial, rowvar=False), rtol=1e-5, atol=1e-9)
    cli("eval", a, "--ref", tmp_path / "ref.npz", "--metric", "sfid", "--out", tmp_path / "self.json")
    assert abs(json.loads((tmp_path / "self.json").read_text())["rows"][0]["sfid"]) < 1e-6
    cli("eval", b, "--ref", tmp_path / "ref.npz", "--metric", "sfid,fid", "--out", tmp_path / "b.json")
    table = json.loads((tmp_path / "b.json").read_text())
    row = table["rows"][0]
    expected = frechet_numpy(spatial, features_of(tiny_inception, b)[2].numpy())
    assert row["sfid"] == pytest.approx(expected, rel=1e-6) and row["sfid"] > 0.01
    assert row["fid"] > 0.01 and table["sfid_features"] == "custom:TinySpatialInception:spatial"
    assert row["sfid"] != pytest.approx(row["fid"])


def test_adm_reference_batches_serve_sfid_and_kid(
    cli, tiny_inception, images_npz, features_of, frechet_numpy, tmp_path
):
    """ADM's reference batches hold images (arr_0) and mu, sigma, mu_s, sigma_s: the statistics are read as
    they are, the features of KID and precision/recall come from the images."""
    a = images_npz(tmp_path / "a.npz", 40, 0)
    b = images_npz(tmp_path / "b.npz", 30, 1, shift=40)
    real = features_of(tiny_inception, a)
    rng = np.random.default_rng(3)
    mu_s, sigma_s = rng.normal(size=8), np.cov(rng.normal(size=(50, 8)), rowvar=False)
    with np.load(a) as data:
        np.savez(tmp_path / "adm.npz", arr_0=data["arr_0"], mu=real[0].mean(0).numpy(),
                 sigma=np.cov(real[0].numpy(), rowvar=False), mu_s=mu_s, sigma_s=sigma_s)  # fmt: skip
    out = tmp_path / "adm.json"
    cli(
        "eval",
        b,
        "--ref",
        tmp_path / "adm.npz",
        "--metric",
        "sfid,kid,pr",
        "--kid-subset-size",
        10,
        "--out",
        out,
    )
    row = json.loads(out.read_text())["rows"][0]
    fake = features_of(tiny_inception, b)[2].numpy()
    mean = ((fake.mean(0) - mu_s) ** 2).sum()
    s1 = np.cov(fake, rowvar=False)
    w, v = np.linalg.eigh(sigma_s)
    root = (v * np.sqrt(w)) @ v.T
    expected = (
        mean
        + np.trace(s1)
        + np.trace(sigma_s)
        - 2 * np.sqrt(np.linalg.eigvalsh(root @ s1 @ root).clip(0)).sum()
    )
    assert row["sfid"] == pytest.approx(expected, rel=1e-6)
    cli(
        "eval",
        b,
        "--ref",
        a,
        "--metric",
        "kid,pr",
        "--kid-subset-size",
        10,
        "--out",
        tmp_path / "images.json",
    )
    from_images = json.loads((tmp_path / "images.json").read_text())["rows"][0]
    for key in ("kid_mean", "precision", "recall"):
        assert row[key] == from_images[key]


def test_statistics_without_spatial_ones_say_how_to_write_them(tiny_inception, images_npz, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "jit.npz", mu=rng.normal(size=6), sigma=np.eye(6))  # JiT's fid_stats layout
    b = images_npz(tmp_path / "b.npz", 5, 1)
    result = runner.invoke(app, ["eval", str(b), "--ref", str(tmp_path / "jit.npz"), "--metric", "sfid"])
    assert result.exit_code == 2
    assert (
        "jit.npz has no mu_s, sigma_s, which sFID compares with: write them with `gen eval ref-stats SRC "
        "OUT.npz --metric sfid`" in result.output
    )


def test_sfid_needs_an_extractor_with_spatial_features(cli, images_npz, tmp_path):
    from gen.metrics import use_feature_extractor

    class PoolOnly(torch.nn.Module):
        def forward(self, images):
            x = images.float().mean((2, 3))
            return x, x

    a = images_npz(tmp_path / "a.npz", 5, 0)
    with use_feature_extractor(PoolOnly()):
        cli("eval", "ref-stats", a, tmp_path / "ref.npz")  # without spatial statistics, then
        with np.load(tmp_path / "ref.npz") as data:
            assert "mu_s" not in data.files and "mu" in data.files
        result = runner.invoke(app, ["eval", str(a), "--ref", str(a), "--metric", "sfid"])
    assert result.exit_code == 2
    assert "sFID needs spatial features, and the feature extractor in use gives none" in result.output
