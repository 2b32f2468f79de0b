"""The model's space: pixels, pixels encoded online by an [autoencoder], or latent data checked against it.

A lossless space-to-depth autoencoder registered by the test stands in for a VAE: what the core does
with any autoencoder (shapes through recipe load and training, encoding keyed for resume, decoding
before images are written) does not depend on diffusers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gen
from gen.latent_space import OnlineEncoded, check_encoded_by, model_spec, training_data
from gen.plugins import PluginHost, get_host, reset_host


class SpaceToDepth:
    """2x2 pixels -> 4x the channels; ``scale`` multiplies the latents (as a VAE's scale factor)."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale
        self.encoded_with: list[torch.Generator | None] = []

    def latent_shape(self, image_shape):
        c, h, w = image_shape
        if h % 2 or w % 2:
            raise ValueError(f"space_to_depth needs an even image size, got {h}x{w}")
        return (4 * c, h // 2, w // 2)

    def image_shape(self, latent_shape):
        c, h, w = latent_shape
        return (c // 4, 2 * h, 2 * w)

    def encode(self, x, generator=None):
        self.encoded_with.append(generator)
        return F.pixel_unshuffle(x, 2) * self.scale

    def decode(self, z):
        return F.pixel_shuffle(z / self.scale, 2)

    def identity(self):
        return {"name": "s2d", "latent_channels": 12, "scale": self.scale, "factor": 2}


class S2DPlugin:
    @gen.hookimpl
    def register_autoencoders(self, register):
        register("s2d", lambda config: SpaceToDepth(), description="Space to depth (test).")


@pytest.fixture
def s2d_host():
    old = get_host()
    host = reset_host(PluginHost())
    assert host.register(S2DPlugin(), name="s2d_test")
    yield host
    reset_host(old)


class LatentSet:
    """A stand-in for a ``gen data encode`` dataset: EncodedData with a given identity."""

    def __init__(self, encoded_by):
        self.encoded_by = encoded_by
        self.spec = gen.DataSpec(shape=(12, 4, 4), num_classes=3)


def test_model_spec_maps_images_to_latents():
    ae = SpaceToDepth()
    spec = gen.DataSpec(shape=(3, 8, 6), num_classes=5)
    assert model_spec(ae, spec) == gen.DataSpec(shape=(12, 4, 3), num_classes=5)
    assert model_spec(ae, spec, encoded=True) is spec  # latents already
    with pytest.raises(gen.GenError, match="even image size, got 7x7"):
        model_spec(ae, gen.DataSpec(shape=(3, 7, 7)))
    with pytest.raises(gen.GenError, match="encodes images, but the data are vectors"):
        model_spec(ae, gen.DataSpec(shape=(16,)))


def test_latent_data_must_come_from_the_recipes_autoencoder():
    ae = SpaceToDepth()
    check_encoded_by(ae, LatentSet(ae.identity()), data_name="latents")  # the same: fine
    with pytest.raises(gen.GenError) as info:
        check_encoded_by(ae, LatentSet({**ae.identity(), "scale": 0.18215}), data_name="latents")
    assert "\n" not in str(info.value)
    assert "differ in scale" in str(info.value) and "gen data encode" in str(info.value)

    class Pixels:
        def identity(self):
            return {}

    with pytest.raises(gen.GenError, match=r"trains in pixel space; add an \[autoencoder\] section"):
        check_encoded_by(Pixels(), LatentSet(ae.identity()), data_name="latents")
    assert training_data(LatentSet(ae.identity()), ae, data_name="latents", device="cpu").spec.shape == (
        12,
        4,
        4,
    )


def test_online_encoding_is_keyed_by_batch_index_for_exact_resume():
    class Pixels:
        spec = gen.DataSpec(shape=(3, 4, 4), num_classes=0)

        def train_batches(self, batch_size, *, seed, rank=0, world_size=1, start_batch=0):
            k = start_batch
            while True:
                g = torch.Generator().manual_seed(seed * 1000 + k)
                yield torch.rand(batch_size, 3, 4, 4, generator=g), torch.zeros(batch_size, dtype=torch.long)
                k += 1

    class Noisy(SpaceToDepth):  # a posterior sample: the encoding draws from the generator
        def encode(self, x, generator=None):
            return super().encode(x) + torch.randn(x.shape[0], 12, 2, 2, generator=generator)

    data = OnlineEncoded(Pixels(), Noisy(), "cpu")
    assert data.spec.shape == (12, 2, 2)
    whole = data.train_batches(2, seed=3)
    batches = [next(whole)[0] for _ in range(3)]
    resumed = next(data.train_batches(2, seed=3, start_batch=2))[0]
    assert torch.equal(resumed, batches[2])
    assert not torch.equal(batches[0], batches[1])


def demo_recipe(tmp_path: Path, *extra: str):
    return gen.load_recipe(
        Path(__file__).resolve().parents[2] / "recipes" / "demo.toml",
        [
            "autoencoder.name='s2d'",
            "data.image_size=16",
            "backbone.patch_size=4",
            "backbone.bottleneck_dim=32",
            "train.steps=4",
            "train.global_batch=4",
            "train.ckpt_every=4",
            "train.eval_samples=8",
            "train.grid_samples=4",
            "sample.steps=2",
            *extra,
        ],
    )


def test_recipe_load_fills_the_backbone_from_the_latent_shape(s2d_host, tmp_path):
    recipe = demo_recipe(tmp_path)
    assert recipe.autoencoder.name == "s2d"
    assert recipe.backbone.config.in_channels == 12 and recipe.backbone.config.input_size == 8
    message = r"demo.toml: \[autoencoder\]: space_to_depth needs an even image size, got 15x15"
    with pytest.raises(gen.RecipeError, match=message):
        demo_recipe(tmp_path, "data.image_size=15", "backbone.patch_size=3")


def test_train_in_latent_space_and_sample_pixels(s2d_host, tmp_path, cli):
    run = tmp_path / "run"
    summary = gen.train(demo_recipe(tmp_path), run)
    assert summary["step"] == 4 and np.isfinite(summary["metrics"]["loss"])
    # The grid holds decoded 16 px images (2 x 2 with 2 px padding), not 8 px latents.
    assert Image.open(run / "samples" / "final.png").size == (38, 38)
    assert "oracle_accuracy" in summary["eval"]  # the shapes oracle scored decoded pixels
    model = gen.load(str(run))
    assert model.spec.shape == (12, 8, 8) and model.output_spec.shape == (3, 16, 16)
    x = model.sample([0, 1], steps=2)
    assert x.shape == (2, 3, 16, 16)
    cli("sample", run, "--num", 2, "--out", tmp_path / "out", "--steps", 2)
    pngs = sorted((tmp_path / "out").rglob("*.png"))
    assert pngs and Image.open(pngs[0]).size == (16, 16)
