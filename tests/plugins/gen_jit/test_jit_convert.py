"""``gen convert jit``: a checkpoint in the published training format becomes safetensors and a recipe."""

from __future__ import annotations

import argparse

import attrs
import numpy as np
import pytest
import tomllib
import torch
import typer
from safetensors.torch import load_file
from typer.testing import CliRunner

import gen
import gen_jit
from gen_jit.config import JiTConfig
from gen_jit.convert import convert_checkpoint, infer_config
from gen_jit.model import JiT


def published_checkpoint(path, net: JiT) -> dict[str, dict[str, torch.Tensor]]:
    """Write ``net`` as LTH14/JiT's ``save_model`` does: denoiser state dicts (``net.`` prefix) + extras."""
    model = {f"net.{k}": v.clone() for k, v in net.state_dict().items()}
    ema1 = {k: v + 0.001 for k, v in model.items()}
    ema2 = {k: v - 0.002 for k, v in model.items()}
    torch.save(
        {
            "model": model,
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
            "epoch": 7,
            "args": argparse.Namespace(model="JiT-B/16", img_size=256, output_dir="out", proj_dropout=0.0),
            "model_ema1": ema1,
            "model_ema2": ema2,
        },
        path,
    )
    return {"model": model, "model_ema1": ema1, "model_ema2": ema2}


def test_convert_round_trip(tmp_path, tiny, perturb):
    net = perturb(tiny())
    saved = published_checkpoint(tmp_path / "checkpoint-last.pth", net)
    out = tmp_path / "converted"
    # The tiny model matches no preset: heads cannot be read from shapes, so they are given.
    convert_checkpoint(tmp_path / "checkpoint-last.pth", out, num_heads=2, in_context_start=1)

    recipe = tomllib.loads((out / "recipe.toml").read_text())
    section = recipe["backbone"]
    assert section.pop("name") == "jit"
    assert section == {
        "input_size": 16, "in_channels": 3, "num_classes": 5, "patch_size": 4, "hidden_size": 32, "depth": 4,
        "num_heads": 2, "mlp_ratio": 4.0, "bottleneck_dim": 8, "in_context_len": 2, "in_context_start": 1,
        "attn_drop": 0.0, "proj_drop": 0.0, "mlp": "swiglu", "norm": "rms", "rope": True, "qk_norm": True,
        "compile": False,
    }  # fmt: skip
    rebuilt = gen.build("backbone", "jit", **section)
    for file, key in [("model", "model"), ("ema_0.9999", "model_ema1"), ("ema_0.9996", "model_ema2")]:
        weights = load_file(str(out / f"{file}.safetensors"))
        expected = {k.removeprefix("net."): v for k, v in saved[key].items()}
        assert weights.keys() == expected.keys()
        assert all(torch.equal(weights[k], expected[k]) for k in expected)
    rebuilt.load_state_dict(load_file(str(out / "model.safetensors")), strict=True)
    z, t, y = torch.randn(2, 3, 16, 16), torch.rand(2), torch.tensor([1, 5])
    torch.testing.assert_close(rebuilt(z, t, y), net(z, t, y), rtol=0, atol=0)


def test_infer_config_of_a_preset_and_of_every_switch(tiny):
    with torch.device("meta"):
        b16 = JiT(JiTConfig(preset="B/16", input_size=256, num_classes=1000))
    config, preset = infer_config(b16.state_dict())
    assert preset == "B/16"
    assert config.resolved() == JiTConfig(preset="B/16", input_size=256, num_classes=1000).resolved()

    switched = tiny(
        mlp="gelu", norm="layer", qk_norm=False, bottleneck_dim=0, in_context_len=0, mlp_ratio=2.0
    )
    config, preset = infer_config(switched.state_dict(), num_heads=2, rope=False)
    assert preset is None
    assert config.resolved() == attrs.evolve(switched.config, rope=False, in_context_start=0)


def test_ema_decays_name_the_files(tmp_path, tiny):
    published_checkpoint(tmp_path / "ckpt.pth", tiny())
    convert_checkpoint(
        tmp_path / "ckpt.pth", tmp_path / "o", ema_decays=(0.999, 0.99), num_heads=2, in_context_start=1
    )
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "ema_0.99.safetensors", "ema_0.999.safetensors", "model.safetensors", "recipe.toml"
    ]  # fmt: skip


def test_errors_are_one_line_gen_errors(tmp_path, tiny):
    with pytest.raises(gen.GenError, match="checkpoint not found"):
        convert_checkpoint(tmp_path / "missing.pth", tmp_path / "o")
    torch.save({"model": {"net.x": torch.zeros(1)}, "epoch": 1}, tmp_path / "partial.pth")
    with pytest.raises(gen.GenError, match="missing model_ema1, model_ema2"):
        convert_checkpoint(tmp_path / "partial.pth", tmp_path / "o")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(gen.GenError, match="not a readable torch checkpoint") as info:
        convert_checkpoint(tmp_path / "junk.pth", tmp_path / "o")
    assert "\n" not in str(info.value)
    torch.save(
        {k: {"other.x": torch.zeros(1)} for k in ("model", "model_ema1", "model_ema2")}, tmp_path / "x.pth"
    )
    with pytest.raises(gen.GenError, match="no 'net.\\*' parameters"):
        convert_checkpoint(tmp_path / "x.pth", tmp_path / "o")
    published_checkpoint(tmp_path / "tiny.pth", tiny())
    with pytest.raises(gen.GenError, match="--num-heads"):
        convert_checkpoint(tmp_path / "tiny.pth", tmp_path / "o")
    convert_checkpoint(tmp_path / "tiny.pth", tmp_path / "o", num_heads=2, in_context_start=1)
    with pytest.raises(gen.GenError, match="--force"):
        convert_checkpoint(tmp_path / "tiny.pth", tmp_path / "o", num_heads=2, in_context_start=1)
    convert_checkpoint(tmp_path / "tiny.pth", tmp_path / "o", num_heads=2, in_context_start=1, force=True)


def test_command_line(tmp_path, tiny):
    published_checkpoint(tmp_path / "ckpt.pth", tiny())
    app = typer.Typer()
    app.command("noop")(lambda: None)  # a second command, so that `convert` stays a sub-command
    gen_jit.register_commands(app)
    result = CliRunner().invoke(
        app, ["convert", "jit", str(tmp_path / "ckpt.pth"), str(tmp_path / "o"), "--num-heads", "2",
              "--in-context-start", "1", "--ema-decay2", "0.9"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ema_0.9.safetensors" in result.output
    assert (tmp_path / "o" / "ema_0.9.safetensors").is_file()


def test_command_joins_an_existing_convert_group():
    app, convert = typer.Typer(), typer.Typer()
    convert.command("dit")(lambda: None)
    app.add_typer(convert, name="convert")
    gen_jit.register_commands(app)
    assert len(app.registered_groups) == 1
    assert {c.name for c in convert.registered_commands} == {"dit", "jit"}


def test_gen_cli_prints_one_line_errors(tmp_path):
    from gen.commands import app

    result = CliRunner().invoke(app, ["convert", "jit", str(tmp_path / "missing.pth"), str(tmp_path / "o")])
    assert result.exit_code == 2
    assert (
        result.output.strip().splitlines()[-1] == f"error: checkpoint not found: {tmp_path / 'missing.pth'}"
    )


def test_convert_with_a_recipe_makes_a_run_that_gen_sample_reads(tmp_path, tiny, perturb):
    net = perturb(tiny())
    saved = published_checkpoint(tmp_path / "checkpoint-last.pth", net)
    base = tmp_path / "base.toml"
    base.write_text(
        '[backbone]\nname = "jit"\n[data]\nname = "shapes"\nimage_size = 16\nnum_classes = 5\n'
        '[sample]\nsampler = "euler"\nsteps = 3\ncfg = 1.5\n[train]\nsteps = 1\n'
    )
    out = tmp_path / "run"
    # The tiny model matches no preset: heads and the in-context start are given.
    convert = ["convert", "jit", str(tmp_path / "checkpoint-last.pth"), str(out), "--num-heads", "2",
               "--in-context-start", "1", "--recipe", str(base)]  # fmt: skip
    result = CliRunner().invoke(gen_cli_app(), convert)
    assert result.exit_code == 0, result.output
    checkpoint = gen.load_checkpoint(out)
    assert checkpoint.step == 0 and checkpoint.ema_decays == (0.9999, 0.9996)
    assert checkpoint.spec == gen.DataSpec(shape=(3, 16, 16), num_classes=5)
    assert (checkpoint.path / "recipe.toml").is_file() and not (checkpoint.path / "state.pt").exists()
    sampler = gen.ModelSampler.from_checkpoint(out)
    sampler.use_weights(0.9996)
    expected = {k.removeprefix("net."): v for k, v in saved["model_ema2"].items()}
    assert all(torch.equal(sampler.model.state_dict()[k], v) for k, v in expected.items())
    # The published weights sample end to end with the recipe's settings.
    result = CliRunner().invoke(
        gen_cli_app(), ["sample", str(out), "--num", "4", "--out", str(tmp_path / "s.npz")]
    )
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "s.npz") as arrays:
        assert arrays["arr_0"].shape == (4, 16, 16, 3) and arrays["arr_1"].tolist() == [0, 1, 2, 3]
    # Converting into the same run again is refused, naming the folder.
    again = CliRunner().invoke(gen_cli_app(), convert)
    assert again.exit_code == 2 and "step_00000000 exists; choose another run directory" in again.output


def gen_cli_app():
    from gen.commands import app

    return app
