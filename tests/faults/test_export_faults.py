"""`gen export` and the folders it writes, when things go wrong: each case one ``error:`` line naming the
file and the fix, and nothing half-done written (no output folder, no temporary one, an earlier export
whole). ``gen sample`` and ``gen.load`` of a damaged export name the damaged file."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import gen
from gen.errors import GenError


@pytest.fixture(scope="module")
def export(trained, tmp_path_factory):
    """An export of the tiny run (default EMA); copy it before damaging."""
    out = tmp_path_factory.mktemp("exported") / "model"
    from typer.testing import CliRunner

    from gen.commands import app

    result = CliRunner().invoke(app, ["export", str(trained), str(out)])
    assert result.exit_code == 0, result.output
    return out


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("truncated", "is truncated ("),
        ("empty", "is empty (0 bytes), not a safetensors file"),
        ("pickle", "is a pickle (a torch.save file), not a safetensors file; it was not loaded"),
        ("missing", "is missing; the exported model is incomplete"),
    ],
)
def test_damaged_weights_are_one_line_naming_the_file(g, export, tmp_path, how, problem):
    copy = tmp_path / "model"
    shutil.copytree(export, copy)
    weights = copy / "model.safetensors"
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[:300])
    elif how == "empty":
        weights.write_bytes(b"")
    elif how == "pickle":
        torch.save({"w": torch.zeros(2)}, weights)
    else:
        weights.unlink()
    line = g.fails("sample", copy, "--num", 2, "--out", tmp_path / "x.png")
    assert line.startswith(f"{weights} {problem}") and "export it again (gen export RUN OUT --force)" in line
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(GenError, match="model.safetensors"):
        gen.load(str(copy))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"gen": {"format": 1}, "reci', "cannot be read (JSONDecodeError"),
        ('{"recipe": {}}', "is not the config.json of a gen model"),
        ('{"gen": {"format": 1}, "data_spec": {}, "weights": {}}', "lacks its `recipe` table"),
        (None, "is missing; the exported model is incomplete"),
    ],
)
def test_a_damaged_config_is_one_line_naming_it(g, export, tmp_path, text, problem):
    copy = tmp_path / "model"
    shutil.copytree(export, copy)
    config = copy / "config.json"
    if text is None:
        config.unlink()
    else:
        config.write_text(text)
    line = g.fails("sample", copy, "--num", 2, "--out", tmp_path / "x.png")
    assert line.startswith(f"{config} {problem}"), line


def test_a_config_of_a_later_format_or_a_bad_key(g, export, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(export, copy)
    config = json.loads((copy / "config.json").read_text())
    config["recipe"]["backbone"]["hidden"] = 0
    (copy / "config.json").write_text(json.dumps(config))
    line = g.fails("sample", copy, "--num", 2, "--out", tmp_path / "x.png")
    assert line == f"{copy / 'config.json'}: [backbone] hidden: must be >= 1: 0"
    config["gen"]["format"] = 99
    (copy / "config.json").write_text(json.dumps(config))
    assert "cannot read; upgrade gen" in g.fails("sample", copy, "--num", 2, "--out", tmp_path / "x.png")


def test_bad_input_writes_nothing(g, trained, export, tmp_path):
    out = tmp_path / "new"
    line = g.fails("export", trained, out, "--ema", "0.7")
    assert "--ema 0.7: this checkpoint has no such EMA; choose one of: 0.9, 0.5, none" in line
    line = g.fails("export", trained, out, "--format", "onnx")
    assert line.startswith("--format onnx: unknown export format; choose one of: gen, diffusers")
    line = g.fails("export", trained, out, "--format", "diffusers")
    assert "a 'tinymlp' model; diffusers' DiTPipeline holds DiT models (backbone dit)" in line
    assert "export it with --format gen" in line
    line = g.fails("export", trained, out, "--set", "train.lr=1.0")
    assert "gen export changes only the [sample] section" in line
    assert g.fails("export", trained, out, "--set", "sample.cfg=nan").endswith(
        "expected a finite number, got nan"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no folder, no temporary one


def test_an_existing_folder_needs_force_and_force_deletes_only_an_export(g, trained, export, tmp_path):
    line = g.fails("export", trained, export)
    assert (
        line
        == f"{export} exists; give --force to replace it (once the new export is complete), or choose another folder"
    )
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    line = g.fails("export", trained, mine, "--force")
    assert "holds files gen export did not write (such as notes.txt)" in line
    assert (mine / "notes.txt").read_text() == "keep me"
    line = g.fails("export", export, export, "--force")  # an export into itself
    assert line == f"{export} holds the checkpoint being exported ({export}); choose another folder"


def test_a_failed_export_leaves_the_earlier_one_whole(g, trained, export, tmp_path, monkeypatch):
    copy = tmp_path / "model"
    shutil.copytree(export, copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    from gen.export import gen_format

    def fail(self, source, folder):
        (folder / "model.safetensors").write_bytes(b"half")
        raise GenError("the disk went away")

    monkeypatch.setattr(gen_format.GenFormat, "write", fail)
    assert g.fails("export", trained, copy, "--force") == "the disk went away"
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before
    assert leftovers(tmp_path) == []


def test_autoguidance_is_not_exported(g, trained, tmp_path):
    line = g.fails(
        "export", trained, tmp_path / "m", "--set", "sample.guidance=auto", "--set", "sample.guide_step=3"
    )
    assert "guidance = 'auto' guides with another checkpoint" in line and "--set sample.guidance=cfg" in line
    assert leftovers(tmp_path) == [] and not (tmp_path / "m").exists()
