"""``gen toy run`` end to end on a tiny grid (a few training steps per cell), and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen_toy.experiment import Cell, parse_list
from gen_toy.figure import figure_size

REPO = Path(__file__).resolve().parents[3]
RECIPE = REPO / "recipes" / "toy" / "manifold.toml"


def run(*args: str):
    return CliRunner().invoke(app, ["toy", "run", "--recipe", str(RECIPE), *args])


def test_tiny_grid_end_to_end(tmp_path):
    out = tmp_path / "toy"
    result = run(
        "--dims",
        "2,8",
        "--predictions",
        "x,eps",
        "--steps",
        "3",
        "--samples",
        "16",
        "--out",
        str(out),
        "--jobs",
        "2",
    )
    assert result.exit_code == 0, result.output

    image = Image.open(out / "toy_grid.png")
    assert image.size == figure_size(2, 2)  # rows: predictions, columns: dimensions

    keys = {"x_D2", "x_D8", "eps_D2", "eps_D8"}
    with np.load(out / "samples.npz") as npz:
        assert set(npz.files) == keys | {f"{k}_2d" for k in keys}
        for key in keys:
            dim = int(key.split("_D")[1])
            assert npz[key].shape == (16, dim) and npz[f"{key}_2d"].shape == (16, 2)
        # The 2-D arrays are the samples projected on the data plane of that D.
        dataset = gen.build("dataset", "manifold", dim=8)
        projected = dataset.project(torch.from_numpy(npz["x_D8"])).numpy()
        np.testing.assert_allclose(npz["x_D8_2d"], projected, rtol=1e-6, atol=1e-6)

    report = json.loads((out / "scores.json").read_text())
    assert report["steps"] == 3 and report["num_samples"] == 16
    cells = {c["key"]: c for c in report["cells"]}
    assert set(cells) == keys
    for key, cell in cells.items():
        assert cell["prediction"] == key.split("_")[0] and np.isfinite(cell["spiral_distance"])
        assert cell["spiral_distance_p90"] >= 0 and cell["final_loss"] is not None
    # Each cell is a normal run of the recipe with its overrides.
    run_recipe = (out / "runs" / "eps_D8" / "recipe.toml").read_text()
    assert 'prediction = "eps"' in run_recipe and "dim = 8" in run_recipe and "steps = 3" in run_recipe
    for line in ("D = 2", "D = 8", "eps"):
        assert line in result.output


def test_existing_runs_are_not_overwritten(tmp_path):
    (tmp_path / "runs" / "x_D2" / "checkpoints").mkdir(parents=True)
    result = run("--dims", "2", "--predictions", "x", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "already holds runs of x_D2" in result.output


def test_bad_options_fail_before_training(tmp_path):
    result = run("--dims", "2,big", "--out", str(tmp_path))
    assert result.exit_code == 2 and "--dims" in result.output
    result = run("--predictions", "x,z", "--dims", "2", "--out", str(tmp_path))
    assert result.exit_code == 2 and "unknown prediction 'z'" in result.output
    result = run("--dims", "2,8,2", "--out", str(tmp_path))
    assert result.exit_code == 2 and "lists 2 more than once" in result.output
    result = run("--dims", "1", "--out", str(tmp_path))  # the manifold needs D >= 2
    assert result.exit_code == 2 and "dim" in result.output
    result = CliRunner().invoke(
        app, ["toy", "run", "--recipe", str(tmp_path / "nope.toml"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "recipe not found" in result.output
    assert not (tmp_path / "runs").exists()


def test_cell_names_and_overrides():
    cell = Cell("v", 512)
    assert cell.key == "v_D512"
    assert cell.overrides(100) == [
        "objective.prediction='v'",
        "data.dim=512",
        "train.eval_samples=0",
        "train.steps=100",
    ]
    assert parse_list(" 2, 8 ,16", what="dims", convert=int) == [2, 8, 16]
