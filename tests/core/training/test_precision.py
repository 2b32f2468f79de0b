"""bf16 autocast trains like fp32: on the demo's JiT, the loss of every metrics window agrees within 5%.

The two runs see the same data and the same keyed draws, so what differs is the arithmetic alone. (This
once trained 300 steps of the 32 px demo at batch 16 and compared the last window: 164 s, nearly all of
it bf16 on a CPU without bf16 units. The model is the demo's at 16 px, batch 8, 32 steps, every window
compared; the losses fall from about 2.6 to 0.55 on the way, and agree to about 0.1% throughout.)
"""

from __future__ import annotations

import json

import pytest

import gen

STEPS, EVERY = 32, 8


def window_losses(precision: str, run_dir) -> list[float]:
    recipe = gen.load_recipe(
        "recipes/demo.toml",
        [
            f"train.precision='{precision}'",
            f"train.steps={STEPS}",
            "train.global_batch=8",
            "data.image_size=16",
            f"train.log_every={EVERY}",
            f"train.ckpt_every={STEPS}",
            "train.grid_samples=0",
            "train.eval_samples=0",
        ],
    )
    gen.train(recipe, run_dir)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(EVERY, STEPS + 1, EVERY))
    return [line["loss"] for line in lines]  # each the mean over its window of EVERY steps


def test_bf16_loss_within_five_percent_of_fp32(tmp_path):
    fp32 = window_losses("fp32", tmp_path / "fp32")
    bf16 = window_losses("bf16", tmp_path / "bf16")
    assert fp32[-1] < 0.5 * fp32[0]  # it trained
    assert bf16 == pytest.approx(fp32, rel=0.05), (fp32, bf16)
    assert bf16 != fp32  # and bf16 was really in use
