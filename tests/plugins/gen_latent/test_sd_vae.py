"""The ``sd_vae`` autoencoder on a tiny random diffusers VAE (factor 2, 4 latent channels)."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from safetensors.torch import save_file

import gen
from gen.protocols import Autoencoder

pytest.importorskip("diffusers")


def images(n: int = 2, size: int = 16, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) images in [-1, 1]."""
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def build(path, **fields):
    return gen.build("autoencoder", "sd_vae", path=str(path), **fields)


def raw_model(folder):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(str(folder), local_files_only=True).eval()


def test_shapes_identity_and_protocol(tiny_vae_dir):
    vae = build(tiny_vae_dir)
    assert isinstance(vae, Autoencoder)
    assert vae.latent_shape((3, 16, 12)) == (4, 8, 6)
    assert vae.image_shape((4, 8, 6)) == (3, 16, 12)
    assert vae.identity() == {
        "name": "sd_vae",
        "latent_channels": 4,
        "scale": 0.18215,
        "shift": 0.0,
        "factor": 2,
    }
    assert json.loads(json.dumps(vae.identity())) == vae.identity()
    with pytest.raises(ValueError, match="divisible by 2, got 15x16"):
        vae.latent_shape((3, 15, 16))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        vae.latent_shape((1, 16, 16))


def test_mean_latents_are_the_scaled_shifted_posterior_mean(tiny_vae_dir):
    x = images()
    with torch.no_grad():
        mean = raw_model(tiny_vae_dir).encode(x).latent_dist.mean  # (2, 4, 8, 8)
    vae = build(tiny_vae_dir, encode_mode="mean", scale=0.5, shift=0.25)
    z = vae.encode(x)
    assert z.shape == (2, 4, 8, 8) and z.dtype == torch.float32
    torch.testing.assert_close(z, (mean - 0.25) * 0.5)
    with torch.no_grad():
        expected = raw_model(tiny_vae_dir).decode(mean).sample
    out = vae.decode(z)
    assert out.shape == (2, 3, 16, 16) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected)
    assert not any(p.requires_grad for p in vae.load().parameters()) and not vae.load().training


def test_sample_mode_is_keyed_by_the_generator(tiny_vae_dir):
    x = images()
    vae = build(tiny_vae_dir)  # encode_mode = "sample" by default, as DiT trains
    mean = build(tiny_vae_dir, encode_mode="mean").encode(x)
    a = vae.encode(x, generator=torch.Generator().manual_seed(1))
    b = vae.encode(x, generator=torch.Generator().manual_seed(1))
    c = vae.encode(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.allclose(a, mean)
    # one generator per image: an image's sample does not depend on the batch it is encoded in
    gens = [torch.Generator().manual_seed(s) for s in (5, 6)]
    pair = vae.encode(x, generator=gens)
    alone = vae.encode(x[1:], generator=[torch.Generator().manual_seed(6)])
    torch.testing.assert_close(pair[1:], alone)
    with pytest.raises(ValueError, match="1 generators for a batch of 2"):
        vae.encode(x, generator=gens[:1])


def test_single_file_equals_folder(tiny_vae_dir, tmp_path):
    state = raw_model(tiny_vae_dir).state_dict()
    # a file written before diffusers renamed its attention projections loads too
    old = {k.replace("attentions.0.to_q.", "attentions.0.query."): t.contiguous() for k, t in state.items()}
    save_file(old, str(tmp_path / "vae.safetensors"))
    x = images()
    folder = build(tiny_vae_dir, encode_mode="mean")
    single = build(
        tmp_path / "vae.safetensors", config_path=str(tiny_vae_dir / "config.json"), encode_mode="mean"
    )
    assert single.identity() == folder.identity()
    torch.testing.assert_close(single.encode(x), folder.encode(x), rtol=0, atol=0)
    assert all(p.device.type == "cpu" for p in single.load().parameters())
    # without config_path the file must hold the SD VAE's architecture
    with pytest.raises(gen.GenError, match="does not match the SD VAE's architecture") as info:
        build(tmp_path / "vae.safetensors").load()
    assert "autoencoder.config_path" in str(info.value) and "\n" not in str(info.value)
    assert build(tmp_path / "vae.safetensors").identity()["factor"] == 8  # known without loading


def test_original_ldm_names_are_refused(tmp_path):
    save_file({"encoder.down.0.block.0.conv1.weight": torch.zeros(1)}, str(tmp_path / "ldm.safetensors"))
    with pytest.raises(gen.GenError, match="original \\(LDM\\) key names"):
        build(tmp_path / "ldm.safetensors").load()


def test_bfloat16_runs_and_returns_float32(tiny_vae_dir):
    vae = build(tiny_vae_dir, dtype="bfloat16", encode_mode="mean")
    z = vae.encode(images())
    assert z.dtype == torch.float32 and z.shape == (2, 4, 8, 8)
    assert next(vae.load().parameters()).dtype == torch.bfloat16
    reference = build(tiny_vae_dir, encode_mode="mean").encode(images())
    torch.testing.assert_close(z, reference, rtol=0.05, atol=0.05)
    assert vae.decode(z).dtype == torch.float32


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def test_path_errors_name_the_path_and_the_key(tiny_vae_dir, tmp_path):
    with pytest.raises(gen.GenError) as info:
        build("")
    assert "set autoencoder.path" in one_line(info)
    with pytest.raises(gen.GenError) as info:
        build(tmp_path / "nowhere")
    assert f"{tmp_path / 'nowhere'} does not exist" in one_line(info) and "autoencoder.path" in one_line(info)
    (tmp_path / "empty").mkdir()
    with pytest.raises(gen.GenError) as info:
        build(tmp_path / "empty")
    assert "lacks config.json or diffusion_pytorch_model.safetensors" in one_line(info)
    with pytest.raises(gen.GenError, match="pickled weights are never loaded"):
        torch.save({"a": torch.zeros(1)}, tmp_path / "vae.pt")
        build(tmp_path / "vae.pt")


def test_damaged_weights_are_one_line(tiny_vae_dir, tmp_path):
    import shutil

    folder = tmp_path / "vae"
    shutil.copytree(tiny_vae_dir, folder)
    weights = folder / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    with pytest.raises(gen.GenError) as info:
        build(folder)
    assert (
        str(weights) in one_line(info)
        and "damaged" in one_line(info)
        and "autoencoder.path" in one_line(info)
    )
    torch.save({"a": torch.zeros(1)}, weights)
    with pytest.raises(gen.GenError, match="is a pickle"):
        build(folder)
    state = raw_model(tiny_vae_dir).state_dict()
    del state["encoder.conv_in.weight"]  # diffusers would initialise it at random and go on
    save_file({k: t.contiguous() for k, t in state.items()}, str(weights))
    with pytest.raises(gen.GenError) as info:
        build(folder).load()
    assert "lacks 1 weight(s)" in one_line(info) and "encoder.conv_in.weight" in one_line(info)
    shutil.copy(tiny_vae_dir / "diffusion_pytorch_model.safetensors", weights)
    (folder / "config.json").write_text("{ not json")
    with pytest.raises(gen.GenError, match="config.json cannot be read as JSON"):
        build(folder)


def test_missing_diffusers_is_one_line(tiny_vae_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # `import diffusers` now fails
    with pytest.raises(gen.GenError) as info:
        build(tiny_vae_dir)
    assert one_line(info) == "autoencoder 'sd_vae' needs diffusers: pip install 'gen[latent]'"


def test_config_validation_goes_through_recipe_errors(tiny_vae_dir):
    with pytest.raises(gen.RecipeError, match="encode_mode"):
        build(tiny_vae_dir, encode_mode="mode")
    with pytest.raises(gen.RecipeError, match="scale"):
        build(tiny_vae_dir, scale=0.0)


def test_components_lists_sd_vae(cli):
    out = cli("components", "autoencoder").output
    assert "sd_vae" in out and "encode_mode" in out and "identity" in out
