"""``gen convert dit``: a published DiT file (a plain state dict, or train.py's checkpoint) becomes a run
that ``gen sample`` and ``gen.load`` sample with the DDPM process of its recipe."""

from __future__ import annotations

import argparse
import textwrap

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import gen
from gen_dit.convert import infer_config

TINY = dict(
    input_size=8, in_channels=3, out_channels=6, num_classes=10, patch_size=2, hidden_size=64, depth=2
)

RECIPE = """\
[backbone]
name = "dit"

[data]
name = "shapes"
image_size = 8
num_classes = 10
min_scale = 0.4
max_scale = 0.5

[objective]
prediction = "eps"
loss = "eps"
process = { name = "ddpm", learn_sigma = true }

[sample]
sampler = "ddim"
steps = 4
cfg = 2.0

[train]
steps = 1
"""


def tiny_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = gen.build("backbone", "dit", num_heads=4, **TINY)
    with torch.no_grad():
        for p in net.parameters():  # away from the zero init, so that the samples depend on every weight
            p.add_(0.02 * torch.randn_like(p))
    return net.state_dict()


def invoke(*args):
    from gen.commands import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "dit_tiny.toml"
    path.write_text(textwrap.dedent(RECIPE))
    return path


def test_released_state_dict_converts_and_samples(tmp_path, recipe):
    state = tiny_state(0)
    torch.save(state, tmp_path / "DiT-tiny.pt")
    out = tmp_path / "run"
    result = invoke("convert", "dit", tmp_path / "DiT-tiny.pt", out, "--recipe", recipe, "--num-heads", 4)
    assert result.exit_code == 0, result.output
    model = gen.load(str(out))
    assert model.checkpoint.ema_decays == (0.9999,)
    model.use_weights(0.9999)
    for k, v in model.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    cfg = model.recipe.backbone.config
    assert (cfg.hidden_size, cfg.depth, cfg.num_heads, cfg.out_channels) == (64, 2, 4, 6)

    # The converted run samples with the recipe's process: DDIM through ModelSampler equals the process
    # run by hand on the published weights.
    x = model.sample([3, 7], seed=5)
    net = gen.build("backbone", "dit", num_heads=4, **TINY)
    net.load_state_dict(state)
    noise = gen.sample_noise(range(2), (3, 8, 8), seed=5)
    process = model.recipe.objective.build_process()
    by_hand = process.run_sampler(
        net.eval(),
        noise,
        torch.tensor([3, 7]),
        sampler=gen.build("sampler", "ddim"),
        steps=4,
        cfg=2.0,
        cfg_interval=(0.0, 1.0),
        num_classes=10,
    )
    torch.testing.assert_close(x, by_hand)
    result = invoke("sample", out, "--num", 2, "--out", tmp_path / "s.npz")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "s.npz")["arr_0"].shape == (2, 8, 8, 3)


def test_train_py_checkpoint_keeps_raw_and_ema_weights(tmp_path, recipe):
    model, ema = tiny_state(1), tiny_state(2)
    torch.save(
        {"model": model, "ema": ema, "opt": {}, "args": argparse.Namespace(model="DiT-tiny")},
        tmp_path / "0400000.pt",
    )
    out = tmp_path / "run"
    result = invoke("convert", "dit", tmp_path / "0400000.pt", out, "--recipe", recipe, "--num-heads", 4)
    assert result.exit_code == 0, result.output
    checkpoint = gen.load_checkpoint(str(out))
    assert torch.equal(checkpoint.load_weights(None)["pos_embed"], model["pos_embed"])
    raw, averaged = checkpoint.load_weights(None), checkpoint.load_weights(0.9999)
    assert torch.equal(raw["blocks.0.attn.qkv.weight"], model["blocks.0.attn.qkv.weight"])
    assert torch.equal(averaged["blocks.0.attn.qkv.weight"], ema["blocks.0.attn.qkv.weight"])


class NotATensor:
    pass


def test_bad_files_are_one_line_errors(tmp_path, recipe):
    torch.save({"x": NotATensor()}, tmp_path / "pickled.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    torch.save(tiny_state(0), tmp_path / "tiny.pt")
    cases = [
        ("pickled.pt", "is not a plain tensor file (it holds pickled Python objects: "),
        ("garbage.pt", "is not a torch file (nor any pickle)"),
        ("other.pt", "has no x_embedder.proj.weight; it is not a DiT checkpoint"),
        ("missing.pt", "missing.pt is missing"),
        ("tiny.pt", "width 64 and depth 2 match no DiT size (S, B, L, XL); pass --num-heads"),
    ]
    for name, message in cases:
        result = invoke("convert", "dit", tmp_path / name, tmp_path / f"out_{name}", "--recipe", recipe)
        assert result.exit_code == 2, (name, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (name, result.output)
        assert not (tmp_path / f"out_{name}").exists()


def test_infer_config_reads_the_published_xl2_shapes():
    """The shapes of DiT-XL/2 at 256 px (a state dict on the meta device: nothing is allocated)."""
    with torch.device("meta"):
        net = gen.build("backbone", "dit", preset="XL/2", input_size=32, in_channels=4, out_channels=8)
    config = infer_config(net.state_dict())
    assert config.preset == "XL/2" and config.input_size == 32 and config.num_heads == 16
    assert (config.in_channels, config.out_channels, config.num_classes) == (4, 8, 1000)
    assert sum(p.numel() for p in net.parameters()) == 675_129_632  # the fixtures README's count
