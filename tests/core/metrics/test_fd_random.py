"""``--metric fd_random``: a Fréchet distance that needs no download (a fixed random network), for an image
folder offline; checked against the distance computed by hand, and through ``gen eval``. Every test here
runs with no weights on the machine (the conftest's empty caches)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gen.commands import app
from gen.metrics.random_features import RANDOM_FEATURES_ID, RandomConvFeatures

runner = CliRunner()


def images(n, seed, shift=0, size=16):
    """(n, size, size, 3) uint8: noise in [0, 200), plus ``shift`` (brighter)."""
    x = np.random.default_rng(seed).integers(0, 200, size=(n, size, size, 3)) + shift
    return x.clip(0, 255).astype(np.uint8)


def folder(path, x):
    path.mkdir(parents=True)
    for i, image in enumerate(x):
        Image.fromarray(image).save(path / f"{i:03d}.png")
    return path


def features(x):
    return RandomConvFeatures()(torch.from_numpy(x).permute(0, 3, 1, 2)).double().numpy()


def frechet_by_hand(a, b):
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the trace of the root from eigenvalues."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = np.sqrt(np.clip(np.linalg.eigvals(s_a @ s_b).real, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * root)


def score(*args):
    result = runner.invoke(app, ["eval", *map(str, args)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_the_network_is_the_same_everywhere_whatever_the_global_seed():
    torch.manual_seed(1)
    a = RandomConvFeatures()
    torch.manual_seed(2)
    b = RandomConvFeatures()
    x = torch.from_numpy(images(3, 0)).permute(0, 3, 1, 2)
    assert torch.equal(a(x), b(x)) and a(x).shape == (3, 480)
    # Its weights come from numpy's PCG64 at a constant seed: these numbers on every machine.
    assert a.convs[0].weight.flatten()[:3].tolist() == pytest.approx([0.35917, -0.67724, -0.00118], abs=1e-5)
    assert not torch.equal(RandomConvFeatures(seed=1)(x), a(x))


def test_fd_random_is_the_hand_computed_distance_and_grows_with_a_shift(tmp_path):
    real, same, shifted = images(40, 0), images(40, 1), images(40, 1, shift=50)
    ref = folder(tmp_path / "real", real)
    rows = {}
    for name, x in (("real", real), ("same", same), ("shifted", shifted)):
        np.savez(tmp_path / f"{name}.npz", arr_0=x)
        score(tmp_path / f"{name}.npz", "--metric", "fd_random", "--ref", ref)
        rows[name] = json.loads((tmp_path / f"{name}.eval.json").read_text())["rows"][0]["fd_random"]
    f_real = features(real)
    assert rows["real"] == pytest.approx(0.0, abs=1e-4)  # a set against itself (rounding: distances are ~40)
    for name, x in (("same", same), ("shifted", shifted)):
        assert rows[name] == pytest.approx(frechet_by_hand(features(x), f_real), rel=1e-5, abs=1e-8)
    assert rows["shifted"] > 10 * rows["same"] > 0  # brighter images are much further than new noise


def test_gen_eval_scores_a_folder_and_a_checkpoint_offline_and_says_what_the_number_is(run, tmp_path):
    real = folder(tmp_path / "real", images(12, 0, size=4))
    samples = folder(tmp_path / "samples", images(12, 1, size=4))
    # Statistics need no download either: with fd_random alone, only its own are written.
    out = score("ref-stats", real, tmp_path / "ref.npz", "--metric", "fd_random")
    with np.load(tmp_path / "ref.npz") as data:
        assert {"mu_random", "sigma_random"} <= set(data.files) and "mu" not in data.files
    for ref in (real, tmp_path / "ref.npz"):  # real images or their statistics: the same number
        out = score(samples, "--metric", "fd_random", "--ref", ref, "--out", tmp_path / f"{ref.stem}.json")
        assert "FD-random (not FID)" in out and "not comparable with published FID" in " ".join(out.split())
    table = [json.loads((tmp_path / f"{n}.json").read_text()) for n in ("real", "ref")]
    assert table[0]["rows"][0]["fd_random"] == pytest.approx(table[1]["rows"][0]["fd_random"], rel=1e-6)
    assert table[0]["fd_random_features"].startswith(RANDOM_FEATURES_ID)
    assert "not comparable" in table[0]["fd_random_features"]
    # A checkpoint (the tiny run draws 4 x 4 images), its samples scored as gen sample saves them.
    out = score(run, "--metric", "fd_random", "--ref", real, "--num", 8, "--out", tmp_path / "ckpt.json")
    row = json.loads((tmp_path / "ckpt.json").read_text())["rows"][0]
    assert row["fd_random"] > 0 and row["num_images"] == 8
    # Without --ref there is nothing to compare with: one line, before any work.
    result = runner.invoke(app, ["eval", str(samples), "--metric", "fd_random"])
    assert result.exit_code == 2 and "fd_random compares with a reference; give --ref" in result.output
