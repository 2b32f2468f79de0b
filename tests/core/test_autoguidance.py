"""Autoguidance: ``v = v_g + s (v - v_g)`` with a weaker model of the same data guiding, both with the
label; in the driver (closed forms), in `gen sample` / `gen eval` (another EMA, an earlier checkpoint,
another run) and in training; bad guides are one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.recipe import load_recipe
from gen.runs import checkpoint as ckpt
from gen.training.engine import train
from gen_flow.guidance import FlowGuide as Guide
from gen_flow.guidance import guided_velocity
from gen_flow.sampling import sample_flow as sample

runner = CliRunner()
F64 = torch.float64


class LinearNet(torch.nn.Module):
    """out = A z + (1 + t) e_y: a model whose x-prediction is known in closed form; counts its calls."""

    def __init__(self, seed: int, num_classes: int = 3, dim: int = 4):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a = torch.nn.Parameter(torch.randn(dim, dim, generator=g, dtype=F64) / dim)
        self.e = torch.nn.Parameter(torch.randn(num_classes + 1, dim, generator=g, dtype=F64))
        self.calls = 0

    def forward(self, z, t, y):
        self.calls += 1
        return z @ self.a.T + (1 + t[:, None]) * self.e[y]


def x_velocity(net, z, t, y, t_eps=0.05):
    """v of an x-prediction: (x̂ - z) / max(1 - t, t_eps)."""
    return (net(z, torch.full((z.shape[0],), t, dtype=F64), y) - z) / max(1 - t, t_eps)


def fails(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


def test_the_main_model_guiding_itself_is_no_guidance():
    """With the guide equal to the main model, any scale gives the unguided velocity, bit for bit."""
    net, y = LinearNet(0), torch.tensor([0, 2, 1])
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=F64)
    plain = guided_velocity(net, y, prediction="x", cfg=1.0, num_classes=3)
    for s in (0.0, 1.5, 4.0):
        auto = guided_velocity(net, y, prediction="x", cfg=s, num_classes=3, guide=Guide(net, "x", 0.05))
        for t in (0.0, 0.3, 0.9):
            assert torch.equal(auto(z, t), plain(z, t))


def test_autoguidance_formula_and_interval():
    """Inside the interval v = v_g + s (v - v_g), both conditional; outside it v, and the guide is not run."""
    main, weak, y = LinearNet(0), LinearNet(7), torch.tensor([0, 2, 1])
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=F64)
    fn = guided_velocity(
        main, y, prediction="x", cfg=2.5, cfg_interval=(0.2, 0.8), num_classes=3, guide=Guide(weak, "x", 0.05)
    )
    for t in (0.5, 0.21, 0.79):
        v, v_g = x_velocity(main, z, t, y), x_velocity(weak, z, t, y)
        torch.testing.assert_close(fn(z, t), v_g + 2.5 * (v - v_g), rtol=1e-13, atol=1e-13)
    weak.calls = 0
    for t in (0.1, 0.2, 0.8, 0.95):  # low < t < high is the interval; its ends are outside
        torch.testing.assert_close(fn(z, t), x_velocity(main, z, t, y), rtol=0, atol=0)
    assert weak.calls == 0
    # An unconditional model is guided the same way, both passes with the null label.
    fn0 = guided_velocity(main, torch.zeros(3, dtype=torch.long), prediction="x", cfg=2.0, num_classes=0,
                          guide=Guide(weak, "x", 0.05))  # fmt: skip
    null = torch.zeros(3, dtype=torch.long)
    v, v_g = x_velocity(main, z, 0.5, null), x_velocity(weak, z, 0.5, null)
    torch.testing.assert_close(fn0(z, 0.5), v_g + 2.0 * (v - v_g), rtol=1e-13, atol=1e-13)


def test_the_ddpm_process_refuses_split_interval(train_env):
    with pytest.raises(gen.RecipeError, match="split_interval cuts the flow's ODE where guidance switches"):
        gen.load_recipe(
            "recipes/dit_s2.toml",
            [
                "sample.split_interval=true",
                "autoencoder.name='identity'",
                "data={name='synthetic', shape=[3, 16, 16]}",
            ],
        )


def test_the_ddpm_process_refuses_autoguidance_and_cfg_refuses_guide_keys(train_env):
    with pytest.raises(gen.RecipeError) as e:
        gen.load_recipe(
            "recipes/dit_s2.toml",
            [
                "sample.guidance='auto'",
                "autoencoder.name='identity'",
                "data={name='synthetic', shape=[3, 16, 16]}",
            ],
        )
    assert "guidance = 'auto' (autoguidance) guides the flow's velocity" in str(e.value)
    assert "samples with classifier-free guidance only: set guidance = 'cfg'" in str(e.value)
    with pytest.raises(
        gen.RecipeError, match="name the guiding model of autoguidance; set guidance = 'auto'"
    ):
        load_recipe(train_env, ["sample.guide_step=3"])
    with pytest.raises(gen.RecipeError, match="guide_ema = 'x'"):
        load_recipe(train_env, ["sample.guidance='auto'", "sample.guide_ema='x'"])


@pytest.fixture(scope="module")
def runs(train_env_module, tmp_path_factory):
    """A run with checkpoints at steps 3 and 6 (EMAs 0.9, 0.5), another of other data, one of another family."""
    root = tmp_path_factory.mktemp("guides")
    quiet = ["train.grid_samples=0", "train.eval_samples=0"]
    train(load_recipe(train_env_module, quiet), root / "main")
    train(load_recipe(train_env_module, [*quiet, "data.size=8", "train.steps=1"]), root / "other_data")
    jit = "backbone={name='jit', patch_size=2, hidden_size=8, depth=1, num_heads=1, bottleneck_dim=4, in_context_len=0}"
    train(load_recipe(train_env_module, [*quiet, jit, "train.steps=1"]), root / "other_family")
    return root


def _images(path):
    with np.load(path) as data:
        return data["arr_0"]


def test_gen_sample_with_a_guide(cli, runs, tmp_path):
    main = runs / "main"
    cli("sample", main, "--num", 6, "--cfg", 1, "--out", tmp_path / "plain.npz")
    cli("sample", main, "--num", 6, "--cfg", 3, "--guide-ema", "0.9", "--out", tmp_path / "self.npz")
    assert np.array_equal(_images(tmp_path / "plain.npz"), _images(tmp_path / "self.npz"))  # s (v - v) = 0
    result = cli("sample", main, "--num", 6, "--cfg", 3, "--guide-step", 3, "--out", tmp_path / "step3.npz")
    assert "autoguidance by step 3, ema default, scale 3.0" in result.stderr
    # The same images as the driver run by hand with both models.
    model = gen.load(str(main))
    guide = gen.load(str(ckpt.checkpoint_dir(main, 3)))
    guide.use_weights(0.9)
    model.use_weights(0.9)
    labels = torch.as_tensor(gen.sampling.model.class_labels(6, 3))
    noise = gen.sample_noise(range(6), (3, 4, 4), seed=0)
    x = sample(model.model, noise, labels, prediction="x", sampler="euler", steps=4, cfg=3.0, num_classes=3,
               guide=Guide(guide.model, "x", 0.05))  # fmt: skip
    assert np.array_equal(_images(tmp_path / "step3.npz"), gen.to_uint8(x))
    assert not np.array_equal(_images(tmp_path / "step3.npz"), _images(tmp_path / "plain.npz"))


def test_gen_eval_sweeps_guides_and_scales(cli, runs, tmp_path):
    out = tmp_path / "sweep.json"
    cli("eval", runs / "main", "--metric", "data", "--num", 6, "--guide-step", "3,6", "--guide-ema", "0.5",
        "--cfg", "1.5,2", "--out", out)  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    assert [(r["guide"], r["cfg"]) for r in rows] == [
        ("step 3, ema 0.5", 1.5), ("step 3, ema 0.5", 2.0), ("step 6, ema 0.5", 1.5), ("step 6, ema 0.5", 2.0)
    ]  # fmt: skip
    assert all("mean" in r for r in rows)
    # --guidance cfg,auto compares classifier-free guidance with autoguidance in one table.
    cli("eval", runs / "main", "--metric", "data", "--num", 6, "--guidance", "cfg,auto", "--guide-step", 3,
        "--out", out)  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    assert ["guide" in r for r in rows] == [False, True]


def test_bad_guides_are_one_line(runs, tmp_path):
    main, out = runs / "main", tmp_path / "x.png"
    assert fails("sample", main, "--out", out, "--guide-step", 4) == (
        f"guide_step 4: {main} has no checkpoint of step 4 (it has: 3, 6); keep the checkpoints you will "
        "guide with (train.milestone_every), or choose one of these"
    )
    other = ckpt.latest_checkpoint(runs / "other_data")
    assert fails("sample", main, "--out", out, "--guide-run", runs / "other_data") == (
        f"the guiding checkpoint {other} was trained on data of shape (3, 8, 8) with 3 classes, the main "
        "model on (3, 4, 4) with 3; autoguidance needs a model of the same data"
    )
    family = ckpt.latest_checkpoint(runs / "other_family")
    assert fails("eval", main, "--metric", "data", "--guide-run", runs / "other_family") == (
        f"the guiding checkpoint {family} is a jit model and the main model a tinymlp model; autoguidance "
        "needs a guide of the same family (an earlier, shorter-averaged or smaller tinymlp)"
    )
    assert fails("sample", main, "--out", out, "--guide-ema", "0.7").startswith(
        f"{ckpt.latest_checkpoint(main)}: --ema 0.7: this checkpoint has no such EMA"
    )
    assert fails("sample", main, "--out", out, "--guidance", "maybe") == (
        "--guidance maybe: use cfg (classifier-free) or auto (autoguidance)"
    )


def test_a_guide_of_another_process_is_one_line(train_env):
    from types import SimpleNamespace

    from gen.sampling.guides import check_compatible

    main = gen.load_recipe(train_env)
    other = gen.load_recipe(train_env, ['objective.process="twotimes"', 'sample.sampler="onestep"'])
    spec = gen.DataSpec(shape=(3, 4, 4), num_classes=3)
    guide = SimpleNamespace(path="RUN/checkpoints/step_00000006", spec=spec, recipe=other)
    with pytest.raises(gen.GenError) as e:
        check_compatible(main, spec, guide)
    assert str(e.value) == (
        "the guiding checkpoint RUN/checkpoints/step_00000006 is a model of the twotimes process and the "
        "main model of the flow process; autoguidance needs a guide of the same process"
    )
    check_compatible(main, spec, SimpleNamespace(path="RUN", spec=spec, recipe=main))  # the same: no error


def test_training_grids_and_scores_use_the_recipe_guide(train_env, tmp_path, cli):
    """[sample] guidance = 'auto' with guide_ema: the training score is gen eval's score of the checkpoint."""
    run = tmp_path / "run"
    overrides = ["sample.guidance='auto'", "sample.guide_ema='0.5'", "sample.cfg=2.0"]
    train(load_recipe(train_env, overrides), run)
    trained = json.loads((run / "eval.json").read_text())
    assert trained["guide"] == "this checkpoint, ema 0.5"
    cli("eval", run, "--metric", "data", "--num", 6, "--seed", 0, "--out", tmp_path / "e.json")
    row = json.loads((tmp_path / "e.json").read_text())["rows"][0]
    assert row["guide"] == "this checkpoint, ema 0.5" and row["mean"] == pytest.approx(
        trained["mean"], abs=1e-7
    )
    # A guiding checkpoint that does not exist yet is refused before training starts.
    with pytest.raises(gen.GenError) as e:
        train(load_recipe(train_env, ["sample.guidance='auto'", "sample.guide_step=100"]), tmp_path / "r2")
    assert str(e.value).startswith(
        f"[sample] guidance = 'auto': guide_step 100: {tmp_path / 'r2'} has no checkpoint"
    )
    assert not ckpt.list_checkpoints(tmp_path / "r2")
