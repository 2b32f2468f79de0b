"""DiT as published, end to end through the CLI on a tiny scale: images -> ``gen data encode`` (a tiny
random diffusers VAE) -> ``gen train`` (DiT, DDPM with learned variance, on the latents) -> ``gen
sample`` and ``gen eval`` (decoded to pixels). And the two ways the pairing of data and autoencoder can
be wrong, refused before the first step."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.metrics.features import use_feature_extractor

REPO = Path(__file__).resolve().parents[3]

pytest.importorskip("diffusers")

RECIPE = """\
[backbone]
name = "dit"
patch_size = 2
hidden_size = 32
depth = 2
num_heads = 2

[autoencoder]
name = "sd_vae"
path = "{vae}"
scale = {scale}

[data]
name = "latents"
root = "{latents}"

[objective]
prediction = "eps"
loss = "eps"
label_drop = 0.1
process = {{ name = "ddpm", learn_sigma = true }}

[sample]
sampler = "ddim"
steps = 4
cfg = 1.5

[train]
steps = {steps}
global_batch = 4
lr = 1e-3
ema_decays = [0.99]
log_every = 5
ckpt_every = 10
grid_samples = 4
eval_samples = 0
"""


class Features(torch.nn.Module):
    """A fixed random feature map for FID (no Inception weights offline): uint8 images -> (B, 4)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))

    def forward(self, images):
        h = torch.tanh(self.conv((images.float() - 128) / 128)).mean((2, 3))  # (B, 4)
        return h, h


def run(*args, code=0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def latents(tmp_path_factory, tiny_vae_dir):
    """16 px images of two classes, encoded to (4, 8, 8) latents with their flips."""
    root = tmp_path_factory.mktemp("latent_run")
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / "images" / label).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                root / "images" / label / f"{i}.png"
            )
    run("data", "encode", root / "images", root / "latents", "--vae", tiny_vae_dir, "--image-size", 16)
    return root


def write_recipe(root, vae, *, steps=20, scale=0.18215):
    path = root / f"dit_latent_{steps}_{scale}.toml"
    text = RECIPE.format(vae=vae, scale=scale, latents=root / "latents", steps=steps)
    path.write_text(textwrap.dedent(text))
    return path


def test_latent_dit_trains_samples_and_scores_in_pixels(latents, tiny_vae_dir, tmp_path):
    recipe = write_recipe(latents, tiny_vae_dir)
    run("recipe", "check", recipe)
    run("train", recipe, "--run-dir", tmp_path / "run")
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [5, 10, 15, 20]
    assert all(np.isfinite(m["loss"]) and {"loss_mse", "loss_vb"} <= m.keys() for m in lines)
    assert lines[-1]["loss"] == pytest.approx(lines[-1]["loss_mse"] + lines[-1]["loss_vb"], rel=1e-6)

    model = gen.load(str(tmp_path / "run"))
    assert model.spec.shape == (4, 8, 8) and model.output_spec.shape == (3, 16, 16)
    assert model.recipe.backbone.config.out_channels == 8  # eps and the learned variance
    # The training grid holds decoded 16 px images: 2 x 2 with 2 px padding.
    assert Image.open(tmp_path / "run" / "samples" / "final.png").size == (38, 38)

    run("sample", tmp_path / "run", "--num", 3, "--out", tmp_path / "s.npz", "--labels", "0,1")
    images = np.load(tmp_path / "s.npz")["arr_0"]
    assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8
    x = model.sample([0, 1, 0], seed=0)
    expected = gen.to_uint8(x)
    np.testing.assert_array_equal(images, expected)  # the CLI's samples are the decoded samples

    with use_feature_extractor(Features()):
        run("eval", "ref-stats", latents / "images", tmp_path / "ref.npz")
        run("eval", tmp_path / "run", "--num", 8, "--ref", tmp_path / "ref.npz", "--out", tmp_path / "e.json")
    row = json.loads((tmp_path / "e.json").read_text())["rows"][0]
    assert np.isfinite(row["fid"]) and row["num_images"] == 8


def test_ddpm_latent_training_resumes_exactly(latents, tiny_vae_dir, tmp_path):
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    gen.train(gen.load_recipe(write_recipe(latents, tiny_vae_dir)), whole)
    gen.train(gen.load_recipe(write_recipe(latents, tiny_vae_dir, steps=10)), halves)
    gen.train(gen.load_recipe(write_recipe(latents, tiny_vae_dir)), halves, resume=True)
    a = gen.load_checkpoint(str(whole)).load_weights(None)
    b = gen.load_checkpoint(str(halves)).load_weights(None)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_latents_of_another_autoencoder_are_refused(latents, tiny_vae_dir, tmp_path):
    other_scale = write_recipe(latents, tiny_vae_dir, scale=0.5)
    result = run("train", other_scale, "--run-dir", tmp_path / "run", code=2)
    line = result.output.strip()
    assert "\n" not in line and "differ in scale" in line and "gen data encode" in line
    assert not (tmp_path / "run" / "checkpoints").exists()

    pixels = latents / "pixels.toml"
    pixels.write_text(
        write_recipe(latents, tiny_vae_dir).read_text().replace('name = "sd_vae"', 'name = "identity"')
    )
    text = pixels.read_text()
    pixels.write_text(
        text[: text.index("path =")] + text[text.index("[data]") :]
    )  # identity takes no options
    result = run("train", pixels, "--run-dir", tmp_path / "run2", code=2)
    assert "trains in pixel space; add an [autoencoder] section with name = 'sd_vae'" in result.output


def test_missing_vae_folder_is_one_line(latents, tmp_path):
    recipe = write_recipe(latents, tmp_path / "no_vae")
    result = run("train", recipe, "--run-dir", tmp_path / "run", code=2)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "no_vae" in lines[0] and "autoencoder.path" in lines[0]


def test_a_published_dit_file_samples_with_the_shipped_recipe(tiny_vae_dir, tmp_path):
    """What the README promises: gen convert dit FILE OUT --recipe recipes/dit_xl2.toml --set
    autoencoder.path=VAE, then gen sample OUT — latents decoded by the VAE, the recipe's DDPM sampler, on
    a machine without the recipe's latent data. (A DiT of no published size stands in for the released
    675M-parameter file, which cannot be downloaded here.)"""
    torch.manual_seed(0)
    net = gen.build(
        "backbone", "dit", input_size=8, in_channels=4, out_channels=8, num_classes=1000,
        patch_size=2, hidden_size=64, depth=2, num_heads=4,
    )  # fmt: skip
    torch.save(net.state_dict(), tmp_path / "DiT-tiny.pt")
    recipe = REPO / "recipes" / "dit_xl2.toml"
    run("convert", "dit", tmp_path / "DiT-tiny.pt", tmp_path / "run", "--recipe", recipe,
        "--num-heads", 4, "--set", f"autoencoder.path='{tiny_vae_dir}'")  # fmt: skip
    run("sample", tmp_path / "run", "--num", 2, "--steps", 4, "--out", tmp_path / "s.npz")
    assert np.load(tmp_path / "s.npz")["arr_0"].shape == (2, 16, 16, 3)
