"""The ADM/DiT/JiT center crop against images whose crop is known by hand, and the value conversions."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

import gen
from gen_data.transforms import center_crop_arr, to_uint8_chw, uint8_to_float


def test_no_resize_needed_is_a_pure_center_crop():
    # 200 wide x 128 high, target 128: scale 1 (no resampling), crop columns 36..163.
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (128, 200, 3), dtype=np.uint8)
    out = np.asarray(center_crop_arr(Image.fromarray(arr), 128))
    assert out.shape == (128, 128, 3)
    np.testing.assert_array_equal(out, arr[:, 36:164])


def test_box_halving_while_short_side_is_twice_the_target():
    # A 512x512 image constant on 4x4 blocks: two BOX halvings (512 -> 256 -> 128) give the blocks back
    # exactly; a direct BICUBIC downscale would blur neighbouring blocks together.
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    big = np.kron(small, np.ones((4, 4, 1), dtype=np.uint8))
    out = np.asarray(center_crop_arr(Image.fromarray(big), 128))
    np.testing.assert_array_equal(out, small)
    bicubic = np.asarray(Image.fromarray(big).resize((128, 128), resample=Image.BICUBIC))
    assert np.abs(bicubic.astype(int) - small).max() > 10


def test_halve_then_bicubic_then_center_crop_on_stripes():
    # 600 x 300 with vertical thirds red | green | blue, target 128: one halving (300 >= 256) to 300 x 150,
    # bicubic to 256 x 128, crop columns 64..191. Resized column c samples source x = (c + .5) * 300/256 - .5,
    # so the crop's column j shows red for j <= 14, green for 27 <= j <= 100, blue for j >= 113.
    arr = np.zeros((300, 600, 3), dtype=np.uint8)
    arr[:, :200, 0] = 255
    arr[:, 200:400, 1] = 255
    arr[:, 400:, 2] = 255
    out = np.asarray(center_crop_arr(Image.fromarray(arr), 128)).astype(int)
    assert out.shape == (128, 128, 3)
    assert (out == out[:1]).all()  # every row alike
    assert (out[:, :15] == [255, 0, 0]).all()
    assert (out[:, 27:101] == [0, 255, 0]).all()
    assert (out[:, 113:] == [0, 0, 255]).all()
    assert not (out[:, 15:27] == [255, 0, 0]).all()  # the red/green edge sits in between


def test_portrait_crops_rows():
    arr = np.zeros((100, 64, 3), dtype=np.uint8)
    arr[:, :, 0] = np.arange(100, dtype=np.uint8)[:, None]
    out = np.asarray(center_crop_arr(Image.fromarray(arr), 64))
    np.testing.assert_array_equal(out[:, 0, 0], np.arange(18, 82))


def test_flip_and_value_range():
    arr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    x = to_uint8_chw(Image.fromarray(arr))
    xf = to_uint8_chw(Image.fromarray(arr), flip=True)
    assert x.shape == (3, 2, 3) and x.dtype == torch.uint8
    assert torch.equal(xf, x.flip(-1))
    u8 = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    f = uint8_to_float(u8)
    torch.testing.assert_close(f.view(-1), torch.tensor([-1.0, 51 / 255 * 2 - 1, 1.0]))
    assert np.array_equal(gen.to_uint8(f), u8.permute(0, 2, 3, 1).numpy())  # the core's way back
