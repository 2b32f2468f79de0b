"""``gen data encode`` through the real ``gen`` command line, with a tiny random diffusers VAE."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import gen
from gen.commands import app

pytest.importorskip("diffusers")

runner = CliRunner()


def write_images(root, counts=(("cat", 3), ("dog", 2)), size=16):
    """Class folders of random ``size``-square PNGs; returns (x (N, 3, S, S) in [-1, 1], labels) in folder
    order (a square image at the crop's size is cropped to itself)."""
    rng = np.random.default_rng(0)
    arrays, labels = [], []
    for label, (name, count) in enumerate(counts):
        (root / name).mkdir(parents=True)
        for i in range(count):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / name / f"{i}.png")
            arrays.append(arr)
            labels.append(label)
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255 * 2 - 1  # (N, 3, S, S)
    return x, labels


def read_shards(out):
    """{key: (latents (V, c, h, w), label)} of every latent shard in ``out``."""
    samples: dict[str, dict] = {}
    for shard in sorted(out.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                key, ext = member.name.split(".", 1)
                samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return {
        key: (np.load(io.BytesIO(parts["npy"]), allow_pickle=False), int(parts["cls"].decode()))
        for key, parts in samples.items()
    }


def encode_args(src, out, vae):
    return (
        "data",
        "encode",
        src,
        out,
        "--vae",
        vae,
        "--image-size",
        16,
        "--batch-size",
        2,
        "--shard-size",
        2,
    )


def fails(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_encode_writes_the_latents_of_each_image_and_its_flip(cli, tiny_vae_dir, tmp_path):
    x, labels = write_images(tmp_path / "src")
    out = tmp_path / "out"
    args = (*encode_args(tmp_path / "src", out, tiny_vae_dir), "--set", "encode_mode=mean", "--workers", 1)
    result = cli(*args)
    assert "wrote 5 latents (4, 8, 8) of 2 classes in 3 shard(s)" in result.output
    vae = gen.build("autoencoder", "sd_vae", path=str(tiny_vae_dir), encode_mode="mean")
    meta = json.loads((out / "latents.json").read_text())
    assert meta["encoded_by"] == vae.identity()
    assert (meta["latent_shape"], meta["image_shape"], meta["num_samples"]) == ([4, 8, 8], [3, 16, 16], 5)
    assert (meta["num_classes"], meta["flip"], meta["classes"]) == (2, True, {"cat": 0, "dog": 1})
    assert sorted(p.name for p in out.iterdir()) == [
        "index.npy",
        "latents.json",
        "shard-000000.tar",
        "shard-000001.tar",
        "shard-000002.tar",
    ]  # nothing left under a .tmp name
    stored = read_shards(out)
    assert sorted(stored) == [f"{i:08d}" for i in range(5)]
    as_is, flipped = vae.encode(x), vae.encode(x.flip(-1))  # (5, 4, 8, 8) each
    for i, (key, (z, label)) in enumerate(sorted(stored.items())):
        assert z.shape == (2, 4, 8, 8) and z.dtype == np.float32 and label == labels[i], key
        torch.testing.assert_close(torch.from_numpy(z[0]), as_is[i], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.from_numpy(z[1]), flipped[i], rtol=1e-5, atol=1e-5)


def test_posterior_samples_are_keyed_by_seed_and_image(cli, tiny_vae_dir, tmp_path):
    x, _ = write_images(tmp_path / "src")
    for name, seed, workers in (("a", 3, 1), ("b", 3, 2), ("c", 4, 1)):
        cli(
            *encode_args(tmp_path / "src", tmp_path / name, tiny_vae_dir),
            "--seed",
            seed,
            "--workers",
            workers,
        )
    shards = {name: [p.read_bytes() for p in sorted((tmp_path / name).glob("shard-*"))] for name in "abc"}
    assert shards["a"] == shards["b"]  # a re-run writes the same bytes, whatever the decoding processes
    assert shards["a"] != shards["c"]
    assert (tmp_path / "a" / "index.npy").read_bytes() == (tmp_path / "b" / "index.npy").read_bytes()
    vae = gen.build("autoencoder", "sd_vae", path=str(tiny_vae_dir))
    stored = read_shards(tmp_path / "a")
    for i in (0, 4):  # image i, view v is drawn from key_seed(seed, i, v), whatever its batch
        generators = [torch.Generator().manual_seed(gen.key_seed(3, i, v)) for v in (0, 1)]
        expected = vae.encode(torch.cat([x[i : i + 1], x[i : i + 1].flip(-1)]), generator=generators)
        torch.testing.assert_close(torch.from_numpy(stored[f"{i:08d}"][0]), expected, rtol=1e-5, atol=1e-5)


def test_shards_source_without_flips(cli, tiny_vae_dir, tmp_path, helpers):
    truth = helpers.write_shards(tmp_path / "shards", 2, 3, 3)  # 32 x 32 id images, label = id % 3
    out = tmp_path / "out"
    cli("data", "encode", tmp_path / "shards", out, "--vae", tiny_vae_dir, "--image-size", 32, "--no-flip")
    meta = json.loads((out / "latents.json").read_text())
    assert (meta["flip"], meta["num_classes"], meta["latent_shape"], meta["num_samples"]) == (
        False,
        3,
        [4, 16, 16],
        6,
    )
    stored = read_shards(out)
    assert [label for _, label in stored.values()] == [truth[i] for i in range(6)]
    assert all(z.shape == (1, 4, 16, 16) for z, _ in stored.values())


def test_unreadable_images_are_skipped_and_reported(cli, tiny_vae_dir, tmp_path, helpers):
    helpers.write_folder(tmp_path / "src", {"a": 2, "b": 1}, corrupt=("b",))
    out = tmp_path / "out"
    result = cli(
        "data", "encode", tmp_path / "src", out, "--vae", tiny_vae_dir, "--image-size", 32, "--workers", 1
    )
    assert "skipped 1 unreadable image(s)" in result.output and "zz_broken.png" in result.output
    assert json.loads((out / "latents.json").read_text())["num_samples"] == 3


def test_refuses_a_non_empty_out_unless_overwrite(cli, tiny_vae_dir, tmp_path):
    write_images(tmp_path / "src")
    args = (*encode_args(tmp_path / "src", tmp_path / "out", tiny_vae_dir), "--workers", 1)
    cli(*args)
    assert "is not empty" in fails(*args) and "--overwrite" in fails(*args)
    cli(*args, "--shard-size", 5, "--overwrite")
    assert sorted(p.name for p in (tmp_path / "out").glob("shard-*")) == ["shard-000000.tar"]  # old ones gone
    assert "is the source" in fails(
        *encode_args(tmp_path / "src", tmp_path / "src", tiny_vae_dir), "--overwrite"
    )


def test_option_errors_are_one_line(tiny_vae_dir, tmp_path):
    write_images(tmp_path / "src")
    src, out = tmp_path / "src", tmp_path / "out"
    assert "divisible by 2, got 15x15" in fails(
        "data", "encode", src, out, "--vae", tiny_vae_dir, "--image-size", 15
    )
    assert "unknown key" in fails("data", "encode", src, out, "--vae", tiny_vae_dir, "--set", "colour=1")
    assert "write KEY=VALUE" in fails("data", "encode", src, out, "--vae", tiny_vae_dir, "--set", "mode")
    assert "nothing to encode" in fails("data", "encode", src, out, "--autoencoder", "identity")
    assert f"{tmp_path / 'no_vae'} does not exist" in fails(
        "data", "encode", src, out, "--vae", tmp_path / "no_vae"
    )
    assert "does not exist" in fails("data", "encode", tmp_path / "none", out, "--vae", tiny_vae_dir)
    assert "not both" in fails("data", "encode", src, out, "--autoencoder", "sd_vae", "--recipe", "r.toml")
    assert not out.exists()  # nothing is created before the options are known to work


def test_recipe_gives_the_autoencoder_and_image_size(cli, tiny_vae_dir, tmp_path):
    write_images(tmp_path / "src")
    recipe = tmp_path / "latent.toml"
    recipe.write_text(
        f"""
[backbone]
name = "jit"
patch_size = 2
hidden_size = 32
depth = 1
num_heads = 2
bottleneck_dim = 16
in_context_len = 0

[data]
name = "imagefolder"
root = {json.dumps(str(tmp_path / "src"))}
image_size = 16

[autoencoder]
name = "sd_vae"
path = {json.dumps(str(tiny_vae_dir))}

[train]
steps = 1
"""
    )
    out = tmp_path / "out"
    cli("data", "encode", tmp_path / "src", out, "--recipe", recipe, "--set", "scale=0.5", "--workers", 1)
    meta = json.loads((out / "latents.json").read_text())
    assert meta["image_shape"] == [3, 16, 16] and meta["encoded_by"]["scale"] == 0.5
