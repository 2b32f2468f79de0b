"""One grid convention (`gen.make_grid`): a class per row, white padding, for the training grids and
``gen sample --out NAME.png`` alike (``gen data info --grid``: tests/plugins/gen_data/test_commands.py)."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch
from PIL import Image

import gen
from gen.images import PAD_VALUE, make_grid
from gen.plugins import get_host
from gen.training.samples import grid_labels

SIZE, PAD = 4, 2  # the tiny plugin's 4 x 4 images; make_grid's default padding


@attrs.frozen(kw_only=True)
class ClassColourConfig:
    input_size: int = gen.field(4, doc="Image side.")
    in_channels: int = gen.field(3, doc="Channels.")
    num_classes: int = gen.field(3, doc="Classes.")


class ClassColour(torch.nn.Module):
    """x̂ = the grey level ``-0.9 + 0.6 y`` whatever z and t: with Euler and no guidance, the sample of
    label y is that level exactly, so a grid shows each tile's class (uint8 13, 89, 166 for y = 0, 1, 2)."""

    def __init__(self, cfg):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))  # something to train

    def forward(self, z, t, y):
        level = (-0.9 + 0.6 * y.to(z.dtype)).view(-1, *[1] * (z.ndim - 1))  # (B, 1, ..., 1)
        return level.expand_as(z) + 0 * self.w


def level(y: int) -> int:
    return round((-0.9 + 0.6 * y + 1) * 127.5)


class ColourPlugin:
    @gen.hookimpl
    def register_backbones(self, register):
        register("classcolour", ClassColour, config=ClassColourConfig, description="Grey level by class.")


@pytest.fixture
def colour_recipe(train_env):
    """The tiny training recipe with the class-colour backbone (Euler, no guidance)."""
    assert get_host().register(ColourPlugin(), name="colour_plugin")
    yield train_env
    get_host().unregister("colour_plugin")


def tile_classes(grid: np.ndarray, rows: int, cols: int) -> list[list[int | None]]:
    """The class of each tile of a grid of classcolour samples (None: an empty cell, all padding)."""
    by_level = {level(y): y for y in range(3)}
    out = []
    for r in range(rows):
        row = []
        for c in range(cols):
            top, left = PAD + r * (SIZE + PAD), PAD + c * (SIZE + PAD)
            cell = grid[top : top + SIZE, left : left + SIZE]
            if (cell == PAD_VALUE).all():
                row.append(None)
                continue
            assert (cell == cell[0, 0, 0]).all(), "a tile of one grey level"
            row.append(by_level[int(cell[0, 0, 0])])
        out.append(row)
    return out


def test_training_grid_and_gen_sample_grid_have_class_k_in_row_k(colour_recipe, tmp_path, cli):
    run = tmp_path / "run"
    over = ["backbone.name=classcolour", "sample.cfg=1.0", "train.grid_samples=6", "train.eval_samples=0"]
    cli("train", colour_recipe, *over, "--run-dir", run)
    grid = np.asarray(Image.open(run / "samples" / sorted(p.name for p in (run / "samples").iterdir())[-1]))
    # 6 samples of 3 classes: 3 rows of 2, row k all class k (it used to be a class per column)
    assert grid.shape == (3 * (SIZE + PAD) + PAD, 2 * (SIZE + PAD) + PAD, 3)
    assert tile_classes(grid, 3, 2) == [[0, 0], [1, 1], [2, 2]]

    cli("sample", run, "--per-class", 2, "--cfg", 1, "--out", tmp_path / "per_class.png")
    per_class = np.asarray(Image.open(tmp_path / "per_class.png"))
    assert np.array_equal(per_class, grid)  # the same grid: the same convention (and the same colours)

    cli("sample", run, "--num", 5, "--cfg", 1, "--out", tmp_path / "five.png")  # labels 0, 0, 1, 1, 2
    five = np.asarray(Image.open(tmp_path / "five.png"))
    assert tile_classes(five, 3, 2) == [[0, 0], [1, 1], [2, None]]  # the empty cell is padding
    cli("sample", run, "--num", 6, "--labels", "2,0,1", "--cfg", 1, "--out", tmp_path / "labels.png")
    assert tile_classes(np.asarray(Image.open(tmp_path / "labels.png")), 3, 2) == [[0, 0], [1, 1], [2, 2]]


def test_grid_labels_put_a_class_per_row():
    assert grid_labels(6, 3)[0].tolist() == [0, 0, 1, 1, 2, 2] and grid_labels(6, 3)[1] == 2
    labels, cols = grid_labels(64, 1000)  # ImageNet: 8 classes, 8 samples each
    assert cols == 8 and labels.tolist() == [i // 8 for i in range(64)]
    labels, cols = grid_labels(16, 2)  # few classes: blocks of whole rows of a square grid
    assert cols == 4 and labels.tolist() == [0] * 8 + [1] * 8
    assert grid_labels(5, 0)[0].tolist() == [0] * 5


def test_make_grid_a_class_per_row_and_its_pad_value():
    images = np.arange(1, 6, dtype=np.uint8)[:, None, None, None].repeat(3, axis=3)  # (5, 1, 1, 3)
    grid = make_grid(images, pad=1, labels=[2, 0, 2, 0, 1])[..., 0]
    assert grid.tolist() == [
        [255, 255, 255, 255, 255],
        [255, 2, 255, 4, 255],  # class 0: images 1 and 3, in their order
        [255, 255, 255, 255, 255],
        [255, 5, 255, 255, 255],  # class 1, then the empty cell in the pad colour
        [255, 255, 255, 255, 255],
        [255, 1, 255, 3, 255],  # class 2
        [255, 255, 255, 255, 255],
    ]
    assert make_grid(images, pad=1, pad_value=0, labels=[0, 0, 1, 1, 1], nrow=2)[..., 0].tolist() == [
        [0, 0, 0, 0, 0],
        [0, 1, 0, 2, 0],
        [0, 0, 0, 0, 0],
        [0, 3, 0, 4, 0],
        [0, 0, 0, 0, 0],
        [0, 5, 0, 0, 0],  # class 1 continues on the next row past nrow images
        [0, 0, 0, 0, 0],
    ]
    # Every class once: a square in class order; no labels: the images in their order.
    assert make_grid(images, pad=0, labels=[4, 3, 2, 1, 0])[..., 0].tolist() == [[5, 4, 3], [2, 1, 255]]
    assert make_grid(images, pad=0)[..., 0].tolist() == [[1, 2, 3], [4, 5, 255]]
    with pytest.raises(ValueError, match="pad_value"):
        make_grid(images, pad_value=256)
    with pytest.raises(ValueError, match="labels"):
        make_grid(images, labels=[0, 1])
