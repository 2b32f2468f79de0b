"""bf16 autocast trains like fp32: the demo recipe's loss after 300 steps agrees within 5%."""

from __future__ import annotations

import json

import pytest

import gen


def final_window_loss(precision: str, run_dir) -> float:
    recipe = gen.load_recipe(
        "recipes/demo.toml",
        [
            f"train.precision='{precision}'",
            "train.steps=300",
            "train.global_batch=16",
            "train.log_every=50",
            "train.ckpt_every=300",
            "train.grid_samples=0",
            "train.eval_samples=0",
        ],
    )
    gen.train(recipe, run_dir)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 300
    return lines[-1]["loss"]  # the mean over steps 251-300


def test_bf16_loss_within_five_percent_of_fp32(tmp_path):
    fp32 = final_window_loss("fp32", tmp_path / "fp32")
    bf16 = final_window_loss("bf16", tmp_path / "bf16")
    assert bf16 == pytest.approx(fp32, rel=0.05), (fp32, bf16)
