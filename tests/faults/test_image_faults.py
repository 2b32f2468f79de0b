"""Images as cameras, scanners and editors write them: CMYK, 16-bit, palette with transparency, EXIF-rotated
JPEGs are read as a user sees them (RGB, 8 bits, upright) by every reader — ``imagefolder`` and ``gen data
pack``/``encode`` (`gen_data.transforms.load_image`), shards (`decode_image`) and ``gen eval FOLDER``
(`gen.metrics.image_sources`); a decompression bomb or a damaged file is skipped with a warning naming it
by the datasets, and is one line naming it where every image counts (``gen eval FOLDER``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from gen.metrics import image_sources
from gen_data.imagefolder import ImageFolderConfig, ImageFolderDataset
from gen_data.transforms import decode_image, load_image


def save(image: Image.Image, path, **kwargs):
    image.save(path, **kwargs)
    return path


def solid(mode, size, value):
    return Image.new(mode, size, value)


def expected_and_file(kind, tmp_path):
    """A file of ``kind`` and the (H, W, 3) uint8 RGB image a user sees in it."""
    if kind == "cmyk":
        path = save(solid("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", quality=100)
        return path, np.broadcast_to(np.array([255, 0, 0], np.uint8), (8, 8, 3)), 8
    if kind == "16-bit":
        values = np.arange(64, dtype=np.uint16).reshape(8, 8) * 4  # 0..252 in 8 bits
        path = save(Image.fromarray(values * 257), tmp_path / "gray16.png")  # 16-bit grayscale PNG (I;16)
        return path, np.repeat(values.astype(np.uint8)[..., None], 3, axis=2), 0
    if kind == "palette":
        image = Image.new("P", (8, 8), 1)
        image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
        image.paste(2, (0, 0, 4, 8))  # left half blue, right half red
        path = save(image, tmp_path / "palette.png", transparency=bytes([0, 128, 255] + [255] * 253))
        rgb = np.zeros((8, 8, 3), np.uint8)
        rgb[:, :4, 2], rgb[:, 4:, 0] = 255, 255
        return path, rgb, 0
    assert kind == "exif-rotated"
    upright = np.zeros((16, 8, 3), np.uint8)  # 16 high, 8 wide: white on top, black below
    upright[:8] = 255
    stored = np.rot90(upright, k=1)  # as the camera stored it, with Orientation 6 ("rotate 90 CW to show")
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(
        Image.fromarray(np.ascontiguousarray(stored)), tmp_path / "rotated.jpg", exif=exif, quality=100
    )
    return path, upright, 8


READERS = {
    "load_image": lambda path: np.asarray(load_image(str(path))),
    "decode_image": lambda path: np.asarray(decode_image(path.read_bytes())),
    "gen eval FOLDER": lambda path: next(image_sources.image_batches(path.parent, 1))[0],
}


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("kind", ["cmyk", "16-bit", "palette", "exif-rotated"])
def test_images_are_read_as_a_user_sees_them(tmp_path, kind, reader):
    path, expected, tolerance = expected_and_file(kind, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no PIL warning per image either
        got = READERS[reader](path)
    assert got.shape == expected.shape and got.dtype == np.uint8, (got.shape, got.dtype)
    off = np.abs(got.astype(int) - expected.astype(int)).max()
    assert off <= tolerance, (kind, reader, off)


@pytest.fixture
def small_bomb_limit(monkeypatch):
    """PIL's decompression-bomb limit lowered so that a 64 x 64 image is one (a real bomb is gigapixels)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)


def folder_with(tmp_path, bad: str):
    root = tmp_path / "images"
    root.mkdir()
    for i in range(3):
        save(solid("RGB", (16, 16), (10 * i, 0, 0)), root / f"ok{i}.png")
    if bad == "bomb":
        save(solid("RGB", (64, 64), (0, 0, 0)), root / "zz_bomb.png")  # 4096 pixels > 2 x 1000
    else:
        (root / "zz_bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # damaged
    return root


@pytest.mark.parametrize("bad", ["bomb", "damaged"])
def test_a_bomb_or_a_damaged_image_is_skipped_by_a_dataset_with_a_warning_naming_it(
    tmp_path, small_bomb_limit, bad, caplog
):
    root = folder_with(tmp_path, bad)
    config = ImageFolderConfig(root=str(root), image_size=8, num_workers=0, check_sizes=False)
    dataset = ImageFolderDataset(config)
    with caplog.at_level("WARNING", logger="gen_data"):
        batches = list(dataset.iter_images(8))
    assert sum(len(y) for _, y in batches) == 3 and dataset.skipped == 1
    [warning] = [r.getMessage() for r in caplog.records]
    assert f"skipped 1 corrupt sample(s) so far (latest: {root / 'zz_bomb.png'}: " in warning
    if bad == "bomb":
        assert "DecompressionBombError" in warning


@pytest.mark.parametrize("bad", ["bomb", "damaged"])
def test_a_bomb_or_a_damaged_image_is_one_line_in_gen_eval(g, tmp_path, small_bomb_limit, bad):
    root = folder_with(tmp_path, bad)
    ref = tmp_path / "ref"
    ref.mkdir()
    for i in range(3):
        save(solid("RGB", (16, 16), (0, 10 * i, 0)), ref / f"r{i}.png")
    message = g.fails("eval", root, "--metric", "fd_random", "--ref", ref, "--batch-size", 2, only=False)
    what = "DecompressionBombError: " if bad == "bomb" else ""
    assert message.startswith(f"{root / 'zz_bomb.png'} cannot be read as an image ({what}"), message
    assert message.endswith("; remove it from the folder or replace it"), message
