"""The training engine: exact resume, accumulation, faults, EMA, LR schedule, run directory."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.recipe import load_recipe
from gen.runs import checkpoint as ckpt
from gen.training.batch_plan import BatchPlan
from gen.training.ema import EMA
from gen.training.engine import Trainer, train
from gen.training.optim import lr_at, param_groups

runner = CliRunner()


def weights(run_dir, stem="model"):
    return load_file(str(ckpt.latest_checkpoint(run_dir) / f"{stem}.safetensors"))


def assert_same(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        if atol == 0.0:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)


def test_train_writes_run_directory(train_env, tmp_path):
    run = tmp_path / "run"
    summary = train(load_recipe(train_env), run)
    assert summary["step"] == 6
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(m["loss"]) and m["images_per_s"] > 0 for m in lines)
    assert {"grad_norm", "lr", "peak_memory_mb", "loss_by_t"} <= lines[0].keys()
    assert lines[0]["lr"] == pytest.approx(0.5e-3) and lines[1]["lr"] == pytest.approx(1e-3)
    assert (run / "samples" / "final.png").is_file()
    assert json.loads((run / "eval.json").read_text())["num_samples"] == 6
    assert load_recipe(run / "recipe.toml") == load_recipe(train_env)
    prov = json.loads((run / "provenance.jsonl").read_text().splitlines()[0])
    assert (
        prov["world_size"] == 1
        and prov["gen_version"] == gen.__version__
        and len(prov["recipe_sha256"]) == 64
    )
    names = [p.name for p in ckpt.list_checkpoints(run)]
    assert names == ["step_00000003", "step_00000006"]
    files = sorted(p.name for p in (run / "checkpoints" / "step_00000006").iterdir())
    assert files == [
        "ema_0.5.safetensors",
        "ema_0.9.safetensors",
        "meta.json",
        "model.safetensors",
        "recipe.toml",  # the run's resolved recipe: a copied folder samples on its own
        "state.pt",
    ]
    assert (run / "checkpoints" / "step_00000006" / "recipe.toml").read_text().split("\n", 1)[1] == (
        (run / "recipe.toml").read_text().split("\n", 1)[1]
    )  # the same recipe (the header line differs)


def test_exact_resume_is_bit_identical(train_env, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(load_recipe(train_env, ["train.ckpt_every=100"]), straight)
    train(load_recipe(train_env, ["train.steps=3"]), split)
    train(load_recipe(train_env), split, resume=True)
    for stem in ("model", "ema_0.9", "ema_0.5"):
        assert_same(weights(straight, stem), weights(split, stem))
    a = ckpt.load_state(ckpt.latest_checkpoint(straight))["optimizer"]["state"]
    b = ckpt.load_state(ckpt.latest_checkpoint(split))["optimizer"]["state"]
    for k in a:
        assert torch.equal(a[k]["exp_avg_sq"], b[k]["exp_avg_sq"])


def test_gradient_accumulation_matches_one_big_batch(train_env, tmp_path):
    train(load_recipe(train_env, ["train.steps=2"]), tmp_path / "big")
    train(load_recipe(train_env, ["train.steps=2", "train.micro_batch=2"]), tmp_path / "accum")
    assert_same(weights(tmp_path / "big"), weights(tmp_path / "accum"), atol=1e-6)


TWO_TIMES = ['objective.process="twotimes"', 'sample.sampler="onestep"']


def test_a_process_with_two_draws_resumes_exactly_and_accumulates(train_env, tmp_path):
    # A process that draws (t, r) per sample, as MeanFlow does: both are keyed by position in the
    # global batch, so resume is bit-identical and micro-batches see the draws of one big batch.
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(load_recipe(train_env, [*TWO_TIMES, "train.ckpt_every=100"]), straight)
    train(load_recipe(train_env, [*TWO_TIMES, "train.steps=3"]), split)
    train(load_recipe(train_env, TWO_TIMES), split, resume=True)
    assert_same(weights(straight), weights(split))
    train(load_recipe(train_env, [*TWO_TIMES, "train.steps=2"]), tmp_path / "big")
    train(load_recipe(train_env, [*TWO_TIMES, "train.steps=2", "train.micro_batch=2"]), tmp_path / "accum")
    assert_same(weights(tmp_path / "big"), weights(tmp_path / "accum"), atol=1e-6)


def test_a_solver_of_another_process_is_one_line_naming_both(train_env):
    with pytest.raises(gen.RecipeError) as e:
        load_recipe(train_env, [TWO_TIMES[0], 'sample.sampler="euler"'])
    assert "sampler 'euler' samples the flow process, not the twotimes process of this model" in str(e.value)
    assert "choose one of onestep" in str(e.value)


def test_unconditional_training(train_env, tmp_path):
    run = tmp_path / "uncond"
    summary = train(load_recipe(train_env, ["data.num_classes=0", "sample.cfg=3.0"]), run)
    assert summary["step"] == 6 and math.isfinite(summary["metrics"]["loss"])
    assert (run / "samples" / "final.png").is_file()


def test_epochs_count_steps_from_the_dataset_size(train_env, tmp_path):
    by_epochs = tmp_path / "epochs.toml"
    by_epochs.write_text(train_env.read_text().replace("steps = 6", "epochs = 0.25"))
    summary = train(load_recipe(by_epochs), tmp_path / "ep")
    assert summary["step"] == 2  # 0.25 * 64 samples / 8 per step


def test_nan_loss_stops_and_keeps_the_last_checkpoint(train_env, tmp_path):
    run = tmp_path / "nan"
    with pytest.raises(gen.GenError) as e:
        train(load_recipe(train_env, ["data.nan_batch=4"]), run)
    good = run / "checkpoints" / "step_00000003"
    assert str(e.value) == (
        f"loss is nan (grad norm nan) at step 5; training stopped before the update and the last good "
        f"checkpoint, {good}, is intact. Lower train.blr/lr, set train.grad_clip, or check the data"
    )
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000003"]
    assert all(torch.isfinite(v).all() for v in weights(run).values())


def test_nan_through_the_cli_is_one_line(train_env, tmp_path):
    result = runner.invoke(
        app, ["train", str(train_env), "data.nan_batch=0", "--run-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("error: loss is nan (grad norm nan) at step 1;")
    assert "no checkpoint was written" in result.stderr


def test_killed_checkpoint_write_is_ignored(train_env, tmp_path, monkeypatch):
    run = tmp_path / "kill"
    train(load_recipe(train_env, ["train.steps=3"]), run)
    before = weights(run)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed during the write")

    monkeypatch.setattr(ckpt, "save_file", killed)
    with pytest.raises(KeyboardInterrupt):
        train(load_recipe(train_env), run, resume=True)
    monkeypatch.undo()
    assert (run / "checkpoints" / ".step_00000006.tmp").is_dir()  # the half-written one
    assert ckpt.latest_checkpoint(run).name == "step_00000003"
    assert_same(before, weights(run))
    # A directory without meta.json (killed before the rename completed its content) is ignored too.
    (run / "checkpoints" / "step_00000099").mkdir()
    assert ckpt.latest_checkpoint(run).name == "step_00000003"
    summary = train(load_recipe(train_env), run, resume=True)
    assert summary["step"] == 6


def test_refuses_to_overwrite_a_run(train_env, tmp_path):
    run = tmp_path / "run"
    train(load_recipe(train_env, ["train.steps=3"]), run)
    result = runner.invoke(app, ["train", str(train_env), "--run-dir", str(run)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {run} already holds checkpoints (latest step_00000003); pass --resume to continue it, "
        "or choose another --run-dir"
    )
    result = runner.invoke(app, ["train", str(train_env), "--run-dir", str(tmp_path / "empty"), "--resume"])
    assert result.exit_code == 2
    assert "no checkpoint in" in result.stderr


def test_resume_with_another_model_names_the_file(train_env, tmp_path):
    run = tmp_path / "run"
    train(load_recipe(train_env, ["train.steps=3"]), run)
    result = runner.invoke(
        app, ["train", str(train_env), "backbone.hidden=16", "--run-dir", str(run), "--resume"]
    )
    assert result.exit_code == 2
    model_file = run / "checkpoints" / "step_00000003" / "model.safetensors"
    assert result.stderr.strip().startswith(
        f"error: {model_file}: embed.weight has shape (4, 32), the model (4, 16);"
    )
    assert_same(weights(run), weights(run))  # the checkpoint is still readable


def test_eval_every_scores_during_training_and_keeps_every_score(train_env, tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(train_env), "train.eval_every=2", "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4, 6] and all(r["num_samples"] == 6 for r in lines)
    assert json.loads((run / "eval.json").read_text()) == lines[-1]  # eval.json: the latest (final) score
    assert len({r["mean"] for r in lines}) == 3  # the weights moved between the scores
    for r in lines[:2]:
        assert f"eval at step {r['step']}: mean = {r['mean']:.4f}" in result.output
    # Scoring draws from its own generator: the training itself is the same as without it.
    plain = tmp_path / "plain"
    train(load_recipe(train_env), plain)
    assert_same(weights(run), weights(plain))
    assert_same(weights(run, "ema_0.5"), weights(plain, "ema_0.5"))


def test_scoring_needs_a_dataset_metric(train_env, tmp_path, monkeypatch):
    monkeypatch.delattr(type(gen.build("dataset", "blobs")), "evaluate_samples")
    gen.ScoresSamples._abc_caches_clear()  # isinstance() caches per class; this test changed the class
    result = runner.invoke(app, ["train", str(train_env), "--run-dir", str(tmp_path / "b")])
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == (
        "error: train.eval_samples = 6: [data] blobs has no metric of its own (evaluate_samples); set "
        "eval_samples = 0 and score FID with gen eval RUN --ref STATS"
    )
    assert not (tmp_path / "b" / "checkpoints").exists()


def test_batch_plan():
    assert BatchPlan.make(256, 4, None) == BatchPlan(256, 4, 64, 1)
    assert BatchPlan.make(256, 2, 32) == BatchPlan(256, 2, 32, 4)
    with pytest.raises(gen.GenError, match="does not split over 3 processes"):
        BatchPlan.make(256, 3, None)
    with pytest.raises(gen.GenError, match="micro_batch = 48 does not divide the per-process batch 128"):
        BatchPlan.make(256, 2, 48)


def test_ema_by_hand():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = EMA(model, (0.9, 0.5))
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model)  # 0.9 * 1 + 0.1 * 3 = 1.2; 0.5 * 1 + 0.5 * 3 = 2
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema.update(model)  # 0.9 * 1.2 = 1.08; 0.5 * 2 = 1
    assert ema.state_dict(0, model)["weight"].item() == pytest.approx(1.08)
    assert ema.state_dict(1, model)["weight"].item() == pytest.approx(1.0)


def test_lr_schedule_values():
    kw = dict(peak=1.0, warmup=4, total=14)
    assert [lr_at(s, schedule="constant", **kw) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cos = [lr_at(s, schedule="cosine", min_lr=0.1, **kw) for s in (4, 9, 14)]
    assert cos == pytest.approx([1.0, 0.1 + 0.9 * 0.5, 0.1])
    assert lr_at(0, peak=2.0, warmup=0, total=10, schedule="constant") == 2.0


def test_no_weight_decay_on_biases_and_norms():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.LayerNorm(3))
    decay, no_decay = param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and [p.shape for p in decay["params"]] == [torch.Size([3, 2])]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3


def test_backbone_takes_shape_from_data_unless_set(train_env):
    recipe = load_recipe(train_env, ["data.size=6", "data.num_classes=5"])
    trainer = Trainer(recipe, "unused")
    from gen.recipe import build_backbone

    net = build_backbone(recipe, trainer.recipe.data.build().spec)
    assert net.inp.in_features == 3 * 36 + 1 and net.embed.num_embeddings == 6
    recipe = load_recipe(train_env, ["backbone.num_classes=7"])
    net = build_backbone(recipe, recipe.data.build().spec)
    assert net.embed.num_embeddings == 8


def test_shard_model_makes_every_block_of_a_module_list_its_own_unit(tmp_path):
    import torch.distributed as dist
    from torch.distributed.fsdp import FSDPModule

    from gen.training.sharding import gather_state, is_sharded, shard_model

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Linear(4, 8)
            self.blocks = torch.nn.ModuleList(torch.nn.Linear(8, 8) for _ in range(3))

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        net = Net()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        shard_model(net, torch.device("cpu"), 1)
        assert isinstance(net, FSDPModule) and all(isinstance(b, FSDPModule) for b in net.blocks)
        assert not isinstance(net.stem, FSDPModule) and is_sharded(net)
        assert_same(gather_state(net.state_dict()), before)  # gathering gives the whole tensors back
    finally:
        dist.destroy_process_group()


def test_the_training_score_is_gen_eval_metric_data_of_the_same_checkpoint(train_env, tmp_path):
    run = tmp_path / "run"
    train(load_recipe(train_env, ["train.seed=3"]), run)
    trained = json.loads((run / "eval.json").read_text())
    assert (trained["step"], trained["num_samples"], trained["seed"], trained["ema"]) == (6, 6, 3, "0.9")
    result = runner.invoke(app, ["eval", str(run), "--metric", "data", "--num", "6", "--seed", "3"])
    assert result.exit_code == 0, result.output
    row = json.loads((run / "eval" / "step_00000006.json").read_text())["rows"][0]
    assert row["ema"] == "0.9" and row["num_images"] == 6
    assert row["mean"] == trained["mean"]  # the same function on the same samples: equal, not close
    # Another seed draws other samples, so the number moves: the equality above is not an accident.
    runner.invoke(
        app,
        [
            "eval",
            str(run),
            "--metric",
            "data",
            "--num",
            "6",
            "--seed",
            "4",
            "--out",
            str(tmp_path / "o.json"),
        ],
    )
    assert json.loads((tmp_path / "o.json").read_text())["rows"][0]["mean"] != trained["mean"]


def test_resuming_a_finished_run_reports_its_last_loss(train_env, tmp_path):
    run = tmp_path / "run"
    train(load_recipe(train_env), run)
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    result = runner.invoke(app, ["train", str(train_env), "--run-dir", str(run), "--resume"])
    assert result.exit_code == 0, result.output
    assert f"done: step 6, loss {last['loss']:.4f}" in " ".join(result.output.split())
