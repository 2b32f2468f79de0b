"""`gen export` in the ``gen`` format: the folder a model hub takes (weights, config, card, grid), read back
by ``gen.load`` and ``gen sample`` into the same samples as the run's; EMA choice, ``--force``, ``--set``,
the formats it knows. Faults (damaged files, bad input) are in ``tests/faults/test_export_faults.py``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import gen
from gen.recipe import load_recipe
from gen.runs import checkpoint as ckpt
from gen.training.engine import train


@pytest.fixture(scope="module")
def trained(train_env_module, tmp_path_factory):
    """The tiny run (6 steps, EMAs 0.9 and 0.5) with its sample grid and training scores, and one
    ``gen eval`` result of its last step."""
    run = tmp_path_factory.mktemp("export") / "run"
    train(load_recipe(train_env_module), run)
    from typer.testing import CliRunner

    from gen.commands import app

    result = CliRunner().invoke(app, ["eval", str(run), "--metric", "data", "--num", "6", "--cfg", "1.0,2.0"])
    assert result.exit_code == 0, result.output
    return run


def npz(path):
    with np.load(path) as data:
        return data["arr_0"], data["arr_1"]


def test_the_folder_samples_as_the_run_did(cli, trained, tmp_path):
    out = tmp_path / "tiny-model"
    result = cli("export", trained, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "sample_grid.png",
    ]
    assert "exported" in result.stderr and "hf upload USER/tiny-model" in result.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    latest = ckpt.latest_checkpoint(trained)
    stored = load_file(str(latest / "ema_0.9.safetensors"))  # the default EMA, as gen sample picks it
    exported = load_file(str(out / "model.safetensors"))
    assert exported.keys() == stored.keys() and all(torch.equal(exported[k], stored[k]) for k in stored)

    config = json.loads((out / "config.json").read_text())
    assert set(config["recipe"]) == {"backbone", "autoencoder", "objective", "sample", "data"}  # no [train]
    assert config["data_spec"] == {"shape": [3, 4, 4], "num_classes": 3}
    assert config["weights"] == {"step": 6, "ema": "0.9"}

    # The same samples, bit for bit in float32: gen sample and gen.load read the folder as a checkpoint.
    cli("sample", trained, "--num", 7, "--seed", 3, "--out", tmp_path / "run.npz")
    cli("sample", out, "--num", 7, "--seed", 3, "--out", tmp_path / "export.npz")
    (a, ya), (b, yb) = npz(tmp_path / "run.npz"), npz(tmp_path / "export.npz")
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    x = gen.load(str(trained)).sample([0, 2, 1], seed=5, cfg=1.5)
    y = gen.load(str(out)).sample([0, 2, 1], seed=5, cfg=1.5)
    assert x.dtype == torch.float32 and torch.equal(x, y)
    model = gen.load(str(out))
    assert model.checkpoint.step == 6 and model.checkpoint.default_ema() is None  # one set of weights


def test_the_card_holds_the_recipe_scores_and_grid(cli, trained, tmp_path):
    yaml = pytest.importorskip("yaml")
    out = tmp_path / "m"
    cli("export", trained, out)
    card = (out / "README.md").read_text()
    head, body = card.split("---\n", 2)[1:]
    meta = yaml.safe_load(head)
    assert meta["library_name"] == "gen"
    assert {"gen", "tinymlp", "flow", "pixel-space", "class-conditional"} <= set(meta["tags"])
    assert "<!-- written by gen export -->" in body and "step 6, EMA `0.9`" in body
    assert "![samples](sample_grid.png)" in body and "`samples/final.png`" in body
    assert (out / "sample_grid.png").read_bytes() == (trained / "samples" / "final.png").read_bytes()
    # The training score (eval.jsonl) and the two gen eval results, each with its settings.
    record = json.loads((trained / "eval.jsonl").read_text().splitlines()[-1])
    assert "Scores measured during training (eval.jsonl)" in body and f"{record['mean']:.4g}" in body
    assert "Scores measured by gen eval (eval/results.jsonl)" in body
    table = body.split("Scores measured by gen eval", 1)[1].split("\n\n", 2)[1].splitlines()
    assert table[0].startswith("| ema | cfg | interval | steps | sampler |") and len(table) == 4  # 2 rows
    assert '```toml\n[backbone]\nname = "tinymlp"' in body and "ema_decays = [" in body  # the whole recipe


def test_ema_choice_and_sampling_defaults(cli, trained, tmp_path):
    latest = ckpt.latest_checkpoint(trained)
    cli("export", trained, tmp_path / "raw", "--ema", "none")
    raw = load_file(str(tmp_path / "raw" / "model.safetensors"))
    assert all(torch.equal(raw[k], v) for k, v in load_file(str(latest / "model.safetensors")).items())
    # An earlier checkpoint, its second EMA, and sampling defaults of the export's own.
    cli(
        "export",
        latest.parent / "step_00000003",
        tmp_path / "early",
        "--ema",
        "0.5",
        "--set",
        "sample.cfg=1.0",
    )
    config = json.loads((tmp_path / "early" / "config.json").read_text())
    assert config["weights"] == {"step": 3, "ema": "0.5"} and config["recipe"]["sample"]["cfg"] == 1.0
    card = (tmp_path / "early" / "README.md").read_text()
    assert "no sample grid of step 3" in card and "recorded no score of step 3" in card
    model = gen.load(str(tmp_path / "early"))
    assert model.recipe.sample.cfg == 1.0
    expected = load_file(str(latest.parent / "step_00000003" / "ema_0.5.safetensors"))
    assert all(torch.equal(model.checkpoint.load_weights(None)[k], v) for k, v in expected.items())


def test_force_replaces_an_export_once_the_new_one_is_whole(cli, trained, tmp_path):
    out = tmp_path / "m"
    cli("export", trained, out, "--ema", "none")
    cli("export", trained, out, "--force")
    assert json.loads((out / "config.json").read_text())["weights"]["ema"] == "0.9"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # the previous one removed, nothing hidden
    # An export of an export: the same weights and config, its grid carried along.
    cli("export", out, tmp_path / "again")
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
    assert (tmp_path / "again" / "sample_grid.png").is_file()


def test_formats_are_gen_and_the_registered_exporters():
    from gen.export.writer import formats

    assert formats()[0] == "gen" and "diffusers" in formats()  # gen_dit's
    assert "diffusers" in gen.get_registry("exporter")
