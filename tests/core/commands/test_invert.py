"""``gen invert``, ``gen sample --noise`` and `gen.ModelSampler.invert` / ``regenerate`` on a tiny run:
the round trip, the noise file, and bad input in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.sampling.inversion import psnr, read_noise_file

runner = CliRunner()
SETTINGS = ("--cfg", "1", "--steps", "16", "--sampler", "euler", "--grid", "edm")  # contracting steps


def fail(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture(scope="module")
def images(run, tmp_path_factory):
    """Five 4 x 4 images the run drew (uint8 PNGs), and the same as floats in [-1, 1]."""
    folder = tmp_path_factory.mktemp("images")
    runner.invoke(app, ["sample", str(run), "--num", "5", "--out", str(folder)])
    files = sorted(folder.iterdir())
    assert len(files) == 5
    x = (
        torch.stack([torch.from_numpy(np.array(Image.open(f))).permute(2, 0, 1) for f in files]).float()
        / 127.5
        - 1
    )
    return folder, x


def test_invert_then_sample_from_the_noise_gives_the_images_back(cli, run, images, tmp_path):
    folder, x = images
    out = cli(
        "invert",
        run,
        folder,
        "--out",
        tmp_path / "noise.npz",
        "--labels",
        "0,0,1,1,2",
        *SETTINGS,
        "--fixed-point",
        "30",
        "--check",
    ).output
    assert "round trip: PSNR" in out
    noise, labels, settings = read_noise_file(tmp_path / "noise.npz", (3, 4, 4))
    assert noise.shape == (5, 3, 4, 4) and labels.tolist() == [0, 0, 1, 1, 2]
    assert settings["sample"]["steps"] == 16 and settings["sample"]["grid"]["name"] == "edm"
    assert settings["ema"] == "0.9" and settings["fixed_point"] == 30
    # gen sample --noise uses the file's labels and settings: the images come back to the pixel.
    cli("sample", run, "--noise", tmp_path / "noise.npz", "--out", tmp_path / "again")
    again = sorted((tmp_path / "again").iterdir())
    assert [f.name for f in again] == [
        "000000_0.png",
        "000001_0.png",
        "000002_1.png",
        "000003_1.png",
        "000004_2.png",
    ]
    for original, back in zip(sorted(folder.iterdir()), again, strict=True):
        assert np.abs(np.array(Image.open(original), int) - np.array(Image.open(back), int)).max() <= 1


def test_the_python_api_inverts_and_regenerates_with_the_null_label_by_default(run, images):
    _, x = images
    model = gen.load(str(run))
    edm = {"name": "edm"}
    noise = model.invert(x, steps=16, sampler="euler", grid=edm, cfg=1.0, fixed_point=30)
    assert noise.shape == (5, 3, 4, 4)
    back = model.regenerate(noise, steps=16, sampler="euler", grid=edm, cfg=1.0)
    assert float(psnr(back, x).min()) > 60  # float32 rounding only: far below a pixel's quantum
    with_labels = model.invert(
        x, [0, 1, 2, 0, 1], steps=16, sampler="euler", grid=edm, cfg=1.0, fixed_point=30
    )
    assert not torch.allclose(with_labels, noise)  # the label is a condition of the field
    with pytest.raises(gen.GenError, match=r"class ids in \[0, 3\), got \[0, 7\]"):
        model.invert(x, [0, 7])


def test_bad_images_are_one_line_naming_the_file(run, tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "big.png")
    assert fail("invert", run, tmp_path / "big.png", "--out", tmp_path / "n.npz") == (
        f"error: {tmp_path / 'big.png'}: 8x8 pixels, the model draws 4x4; resize it to 4x4"
    )
    Image.new("L", (4, 4)).save(tmp_path / "grey.png")
    line = fail("invert", run, tmp_path / "grey.png", "--out", tmp_path / "n.npz")
    assert line.startswith(f"error: {tmp_path / 'grey.png'}: a grey image") and "convert it to RGB" in line
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert f"{tmp_path / 'broken.png'} cannot be read as an image" in fail(
        "invert", run, tmp_path / "broken.png", "--out", tmp_path / "n.npz"
    )
    assert "no such image file or folder" in fail(
        "invert", run, tmp_path / "nope.png", "--out", tmp_path / "n.npz"
    )
    assert "the noise file is an .npz" in fail(
        "invert", run, tmp_path / "big.png", "--out", tmp_path / "n.png"
    )
    assert not list(tmp_path.glob("*.npz")) and not list(tmp_path.glob(".*"))


def test_a_multistep_sampler_is_refused_before_any_work(run, images, tmp_path):
    line = fail("invert", run, images[0], "--out", tmp_path / "n.npz", "--sampler", "dpmpp_2m")
    assert "cannot be inverted step by step" in line and "euler, heun" in line
    assert not (tmp_path / "n.npz").exists()


def test_a_bad_noise_file_is_one_line_naming_it(cli, run, images, tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 junk")
    line = fail("sample", run, "--noise", tmp_path / "junk.npz", "--out", tmp_path / "x.png")
    assert line.startswith(f"error: {tmp_path / 'junk.npz'} cannot be read as a noise file")
    np.savez(
        tmp_path / "other.npz",
        noise=np.zeros((2, 3, 8, 8), np.float32),
        labels=np.zeros(2, np.int64),
        settings=np.array("{}"),
        sources=np.array(["a", "b"]),
    )
    assert "invert the images with this model" in fail(
        "sample", run, "--noise", tmp_path / "other.npz", "--out", tmp_path / "x.png"
    )
    cli("invert", run, images[0], "--out", tmp_path / "n.npz", *SETTINGS)
    assert "brings its own labels" in fail(
        "sample", run, "--noise", tmp_path / "n.npz", "--labels", "1", "--out", tmp_path / "x.png"
    )
    assert not (tmp_path / "x.png").exists()


def test_a_process_without_inversion_says_so(run):
    from gen.sampling import driver

    model = gen.load(str(run))

    class NoInversion:
        def __repr__(self):
            return "DDPMProcess()"

    with pytest.raises(gen.GenError, match=r"process DDPMProcess\(\) has no inversion"):
        driver.invert(
            model.model,
            torch.zeros(1, 3, 4, 4),
            None,
            model.recipe.sample,
            model.recipe.objective,
            num_classes=3,
            process=NoInversion(),
        )
