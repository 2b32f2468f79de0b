"""A MeanFlow run end to end: recipe checks, exact resume, bf16, sampling in 1 and 2 steps through the CLI
and the Python API, and the one-line refusals."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.recipe import load_recipe
from gen.runs import checkpoint as ckpt
from gen.training.engine import train

runner = CliRunner()

RECIPE = """
[backbone]
name = "{backbone}"
patch_size = 4
hidden_size = 32
depth = 2
num_heads = 2
{extra}
[data]
name = "shapes"
image_size = 16
num_classes = 3
num_samples = 64

[objective]
prediction = "x"
loss = "v"

[objective.process]
name = "meanflow"
variant = "pmf"

[sample]
sampler = "meanflow"
steps = 1
cfg = 2.0

[train]
steps = 4
global_batch = 8
lr = 1e-3
warmup_steps = 1
log_every = 1
ckpt_every = 2
sample_every = 0
grid_samples = 4
eval_samples = 0
ema_decays = [0.9]
"""


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("recipe") / "meanflow.toml"
    path.write_text(
        RECIPE.format(backbone="jit", extra="bottleneck_dim = 8\nin_context_len = 2\nin_context_start = 1\n")
    )
    return path


@pytest.fixture(scope="module")
def run(recipe_file, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    train(load_recipe(recipe_file), run_dir)
    return run_dir


def weights(run_dir):
    return load_file(str(ckpt.latest_checkpoint(run_dir) / "model.safetensors"))


def test_training_logs_the_regression_error_and_the_weighted_loss(run):
    import json

    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3, 4]
    assert all(m["loss"] > 0 and 0 < m["loss_weighted"] <= 1 for m in lines)
    assert "scalar_embedders.embedders.h.mlp.0.weight" in weights(run)


def test_resume_is_bit_identical(recipe_file, run, tmp_path):
    split = tmp_path / "split"
    train(load_recipe(recipe_file, ["train.steps=2"]), split)
    train(load_recipe(recipe_file), split, resume=True)
    a, b = weights(run), weights(split)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_training_stays_close_to_fp32(recipe_file, tmp_path):
    # One step of each from the same initial weights: the updates agree to bf16's resolution.
    fp32, bf16 = tmp_path / "fp32", tmp_path / "bf16"
    train(load_recipe(recipe_file, ["train.steps=1", "train.ckpt_every=1"]), fp32)
    train(load_recipe(recipe_file, ["train.steps=1", "train.ckpt_every=1", "train.precision='bf16'"]), bf16)
    import json

    loss = [json.loads((d / "metrics.jsonl").read_text().splitlines()[0])["loss"] for d in (fp32, bf16)]
    assert loss[1] == pytest.approx(loss[0], rel=0.05)


@pytest.mark.parametrize("steps", ["1", "2"])
def test_gen_sample_in_one_and_two_steps(run, tmp_path, steps):
    out = tmp_path / f"s{steps}.png"
    result = runner.invoke(app, ["sample", str(run), "--steps", steps, "--num", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_python_api_samples_with_steps_and_cfg(run):
    model = gen.load(run)
    one = model.sample([0, 1, 2], steps=1, seed=0)
    again = model.sample([0, 1, 2], steps=1, seed=0)
    two = model.sample([0, 1, 2], steps=2, cfg=3.0, seed=0)
    assert one.shape == (3, 3, 16, 16) and torch.equal(one, again) and not torch.equal(one, two)


@pytest.mark.parametrize(
    "option, message",
    [
        (["--sampler", "heun"], "sampler 'heun' samples the flow process, not the meanflow process"),
        (["--cfg", "0.5"], "takes guidance scales >= 1 (trained in [1, 8]"),
    ],
)
def test_what_does_not_apply_is_one_line(run, tmp_path, option, message):
    result = runner.invoke(app, ["sample", str(run), *option, "--num", "2", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_a_backbone_without_scalar_inputs_is_refused_at_load(tmp_path):
    path = tmp_path / "mlp.toml"
    text = (
        RECIPE.format(backbone="mlp", extra="").replace("patch_size = 4\n", "").replace("num_heads = 2\n", "")
    )
    path.write_text(text.replace("hidden_size = 32\ndepth = 2\n", ""))
    result = runner.invoke(app, ["recipe", "check", str(path)])
    assert result.exit_code == 2
    assert "the meanflow process needs the backbone field(s) scalar_inputs" in result.output, result.output


def test_dit_trains_as_a_meanflow(tmp_path):
    path = tmp_path / "dit.toml"
    path.write_text(RECIPE.format(backbone="dit", extra="").replace('prediction = "x"', 'prediction = "v"'))
    summary = train(
        load_recipe(path, ["train.steps=2", "objective.process.variant='mf'", "sample.cfg=1.0"]),
        tmp_path / "d",
    )
    assert summary["step"] == 2


def test_gen_eval_sweeps_the_number_of_steps(run, tmp_path):
    out = tmp_path / "eval.json"
    result = runner.invoke(
        app, ["eval", str(run), "--steps", "1,2", "--num", "4", "--metric", "data", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    import json

    rows = json.loads(out.read_text())["rows"]
    assert [(r["steps"], r["sampler"]) for r in rows] == [(1, "meanflow"), (2, "meanflow")]
    assert all(0 <= r["oracle_accuracy"] <= 1 for r in rows)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.compile=true", "compile = true: the MeanFlow loss differentiates the backbone forward-mode"),
        ("backbone.compile=true", "backbone.compile = true: the MeanFlow loss"),
    ],
)
def test_compiled_training_is_refused_at_load(recipe_file, override, message):
    result = runner.invoke(app, ["recipe", "check", str(recipe_file), override])
    assert result.exit_code == 2 and message in result.output, result.output


def test_sampling_compiles_as_one_graph(run):
    # [sample] compile = true compiles the guided average velocity with fullgraph: dynamo must trace it
    # with no break (checked by explaining it; compiling would take the test's time).
    model = gen.load(run)
    process = model.process
    condition = gen.ClassLabels(torch.tensor([0, 1]), num_classes=3)
    u = process.sampling_velocity(model.model.eval(), condition, 2.0, (0.2, 0.9))
    z, t = torch.randn(2, 3, 16, 16), torch.zeros(2)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(u)(z, t, t + 1)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, explanation.break_reasons


def test_a_flow_run_starts_a_meanflow(recipe_file, tmp_path):
    # init_from a flow model: every tensor comes over but the interval's embedder, which starts as built.
    flow = tmp_path / "flow"
    train(
        load_recipe(recipe_file, ["objective.process='flow'", "sample.sampler='heun'", "train.steps=2"]), flow
    )
    run = tmp_path / "mf"
    result = runner.invoke(
        app,
        ["train", str(recipe_file), "train.steps=1", f"train.init_from='{flow}'", "train.init_ema='none'"]
        + ["--run-dir", str(run)],
    )
    assert result.exit_code == 0, result.output
    line = " ".join(result.output.split())
    assert "kept as built (this size, this process): the embedders of cfg, cfg_high, cfg_low, h" in line
    start = load_file(str(ckpt.latest_checkpoint(flow) / "model.safetensors"))
    assert all(k in weights(run) for k in start)
    assert any(k.startswith("scalar_embedders.") for k in weights(run)) and not any(
        k.startswith("scalar_embedders.") for k in start
    )


def test_a_recipe_without_a_sampler_samples_with_its_process_sampler(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(RECIPE.format(backbone="dit", extra="").replace('sampler = "meanflow"\n', ""))
    assert load_recipe(path).sample.sampler.name == "meanflow"


def test_missing_perceptual_weights_stop_training_before_the_first_step(recipe_file, tmp_path):
    missing = tmp_path / "vgg16.pth"
    overrides = [
        "objective.process.lpips_weight=0.4",
        f"objective.process.lpips_vgg='{missing}'",
        f"objective.process.lpips_heads='{missing}'",
    ]
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(recipe_file), *overrides, "--run-dir", str(run)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"[objective.process] lpips_vgg = '{missing}': no such file" in " ".join(result.output.split())
    assert not (run / "checkpoints").exists()
