"""End-to-end tests that need real processes: DDP and FSDP with two Gloo ranks (torchrun), and SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from gen.commands import app
from gen.recipe import load_recipe
from gen.runs import checkpoint as ckpt
from gen.training.engine import train

#: One process and two compute the same update with the gradient summed in another order (DDP's all-reduce,
#: FSDP's reduce-scatter). Adam moves a weight by lr m / sqrt(v) a step (about lr = 1e-3 here), which changes
#: by lr times the gradient's relative rounding error, float32 eps x sum|terms| / |sum|: up to 1e-3 for a
#: patch-embedding gradient that cancels to 1e-4 of its terms (9.4e-7 measured, 1.7e-6 with SSE4.1 kernels).
#: ATOL allows 1% of a step; a wrong update (another batch, a rank's gradient lost) moves weights by ~lr.
ATOL = 1e-5


def gen_cmd(*args):
    return [sys.executable, "-m", "gen", *args]


def test_two_process_gloo_equals_one_process(torchrun, train_env, tmp_path):
    one = tmp_path / "one"
    train(load_recipe(train_env, ["train.steps=2"]), one)
    two = tmp_path / "two"
    done = torchrun(["-m", "gen", "train", train_env, "train.steps=2", "--run-dir", two], clean=[two])
    a = load_file(str(ckpt.latest_checkpoint(one) / "model.safetensors"))
    b = load_file(str(ckpt.latest_checkpoint(two) / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=ATOL, rtol=0, msg=k)
    assert ckpt.read_meta(ckpt.latest_checkpoint(two)).world_size == 2
    assert "2 process(es) x 1 accumulation x 4" in done.stderr


def test_fsdp_on_two_processes_equals_one_process_and_resumes_on_one(torchrun, train_env, tmp_path):
    """FSDP shards the update but computes the same one; its checkpoints are whole, so any layout resumes."""
    fsdp = tmp_path / "fsdp"
    power = ["train.ema_lengths=[0.1]", "train.ema_snapshot_every=2"]  # sharded power EMAs and snapshots too
    done = torchrun(
        ["-m", "gen", "train", train_env, "train.steps=3", "train.parallel=fsdp", "train.micro_batch=2",
         *power, "--run-dir", fsdp],
        clean=[fsdp],
    )  # fmt: skip
    assert (
        "2 process(es) x 2 accumulation x 2 (FSDP: parameters, gradients, optimizer state and EMA sharded)"
        in (" ".join(done.stderr.split()))
    )
    one = tmp_path / "one"
    train(load_recipe(train_env, ["train.steps=3", *power]), one)
    last_one, last_fsdp = ckpt.latest_checkpoint(one), ckpt.latest_checkpoint(fsdp)
    names = [f"{stem}.safetensors" for stem in ("model", "ema_0.9", "ema_0.5", "phema_0.1")]
    pairs = [(last_one / name, last_fsdp / name) for name in names]
    snapshot = Path("ema_snapshots") / "step_00000002" / "phema_0.1.safetensors"
    pairs.append((one / snapshot, fsdp / snapshot))
    for a_file, b_file in pairs:
        a, b = load_file(str(a_file)), load_file(str(b_file))
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], atol=ATOL, rtol=0, msg=f"{a_file} {k}")
    # Grids and scores are drawn from the gathered EMA on rank 0.
    assert (fsdp / "samples" / "final.png").is_file() and (fsdp / "eval.json").is_file()
    # The sharded run's checkpoint (optimizer moments included) resumes in one process: 3 + 3 steps
    # equal 6 straight.
    train(load_recipe(train_env, power), fsdp, resume=True)
    straight = tmp_path / "straight"
    train(load_recipe(train_env, power), straight)
    a = load_file(str(ckpt.latest_checkpoint(straight) / "model.safetensors"))
    b = load_file(str(ckpt.latest_checkpoint(fsdp) / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=ATOL, rtol=0, msg=k)


def test_fsdp_shards_a_jit_block_by_block_and_computes_the_same_update(torchrun, tmp_path):
    """A tiny JiT (two blocks in a ModuleList, each its own FSDP unit) on shapes: FSDP = one process."""
    recipe = Path(__file__).resolve().parents[3] / "recipes" / "demo.toml"
    tiny = [
        "backbone.hidden_size=32", "backbone.depth=2", "backbone.num_heads=2", "backbone.bottleneck_dim=16",
        "train.steps=2", "train.global_batch=8", "train.warmup_steps=1", "train.grid_samples=0",
        "train.eval_samples=0", "train.lr=1e-3",
    ]  # fmt: skip
    # A low lr: Adam's first steps divide g by |g| + eps, so a weight whose gradient is near eps moves by an
    # amount that depends on the last bits of g, which FSDP sums in another order (at the demo's lr of
    # 1.6e-2 one weight of the patch embedding differed by 4e-6).
    fsdp = tmp_path / "fsdp"
    done = torchrun(
        ["-m", "gen", "train", recipe, *tiny, "train.parallel=fsdp", "--run-dir", fsdp], clean=[fsdp]
    )
    assert "(FSDP: parameters, gradients, optimizer state and EMA sharded)" in " ".join(done.stderr.split())
    one = tmp_path / "one"
    train(load_recipe(recipe, tiny), one)
    for stem in ("model", "ema_0.995"):
        a = load_file(str(ckpt.latest_checkpoint(one) / f"{stem}.safetensors"))
        b = load_file(str(ckpt.latest_checkpoint(fsdp) / f"{stem}.safetensors"))
        assert a.keys() == b.keys() and any(k.startswith("blocks.1.") for k in a)
        for k in a:
            torch.testing.assert_close(a[k], b[k], atol=ATOL, rtol=0, msg=f"{stem} {k}")


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(train_env, tmp_path):
    run = tmp_path / "run"
    cmd = gen_cmd("train", str(train_env), "train.steps=1000", "data.delay=0.05", "--run-dir", str(run))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    latest = ckpt.latest_checkpoint(run)
    step = ckpt.read_meta(latest).step
    assert 2 <= step < 1000
    said = " ".join(err.split())
    assert (
        f"stopped by SIGTERM at step {step}; checkpoint saved. Continue with: gen train {run} --resume"
        in said
    )
    # It resumes from there, as the line says: the run directory knows its recipe.
    result = CliRunner().invoke(app, ["train", str(run), "--resume", f"train.steps={step + 1}"])
    assert result.exit_code == 0, result.output
    assert f"done: step {step + 1}," in " ".join(result.output.split())
