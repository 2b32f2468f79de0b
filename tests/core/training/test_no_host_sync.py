"""A training step never asks the host for a number: on a GPU that would stall the device every step.

On the CPU no call blocks, so the test counts the calls that would (``.item()``, ``.tolist()``,
``.cpu()``, ``.numpy()``, ``bool``/``float``/``int`` of a tensor) made on tensors during steady-state
steps: between two metrics lines there must be none. The host looks once per metrics line.
"""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest
import torch

import gen
from gen.recipe import load_recipe
from gen.training.engine import Trainer

SYNCING = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")


@contextlib.contextmanager
def count_host_reads(counter: Counter):
    originals = {name: getattr(torch.Tensor, name) for name in SYNCING}

    def wrap(name, fn):
        def counted(self, *args, **kwargs):
            counter[name] += 1
            return fn(self, *args, **kwargs)

        return counted

    for name, fn in originals.items():
        setattr(torch.Tensor, name, wrap(name, fn))
    try:
        yield counter
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)


def steady_steps(recipe, run_dir, steps: int) -> Counter:
    """Host reads during ``steps`` training steps after a warm-up step, with no metrics line between."""
    trainer = Trainer(recipe, run_dir)
    trainer.setup()
    stream = trainer.data_stream()

    def one_step():
        trainer.train_step(stream)

    one_step()  # first-step allocations (optimizer state) are not the steady state
    counter: Counter = Counter()
    with count_host_reads(counter):
        for _ in range(steps):
            one_step()
    trainer.lock.release()
    return counter


@pytest.mark.parametrize("backbone", ["jit", "dit"])
def test_steady_state_steps_read_nothing_from_the_device(backbone, tmp_path):
    overrides = [
        "data.image_size=16",
        "backbone.patch_size=4",
        "train.global_batch=4",
        "train.micro_batch=2",  # two micro-batches: accumulation too
        "train.steps=10",
    ]
    if backbone == "dit":
        overrides += ["backbone={name='dit', preset='S/4', depth=2, hidden_size=64, num_heads=2}"]
    else:
        overrides += ["backbone.bottleneck_dim=32"]
    recipe = load_recipe("recipes/demo.toml", overrides)
    counts = steady_steps(recipe, tmp_path / "run", steps=3)
    assert sum(counts.values()) == 0, dict(counts)


def test_the_counter_sees_a_host_read():
    counter: Counter = Counter()
    with count_host_reads(counter):
        float(torch.ones(()))
        torch.zeros(2).tolist()
    assert counter == Counter({"__float__": 1, "tolist": 1})


def test_a_skipped_step_changes_nothing(tmp_path):
    """The device-side guard: a step with a non-finite loss leaves weights, optimizer moments, its step
    count and the EMA exactly as they were."""
    recipe = load_recipe(
        "recipes/demo.toml",
        ["data.image_size=16", "backbone.patch_size=4", "backbone.bottleneck_dim=32", "train.global_batch=2"],
    )
    trainer = Trainer(recipe, tmp_path / "run")
    trainer.setup()
    stream = trainer.data_stream()
    local, grad_norm = trainer.forward_backward(stream)
    trainer.optimizer.found_inf = torch.zeros(())
    trainer.optimizer.step()  # a good step first: the optimizer has state
    before = [p.detach().clone() for p in trainer.model.parameters()]
    moments = [trainer.optimizer.state[p]["exp_avg"].clone() for p in trainer.model.parameters()]
    ema = [t.clone() for t in trainer.ema.shadows[0]]
    steps = trainer.optimizer.state[next(trainer.model.parameters())]["step"].clone()

    local, grad_norm = trainer.forward_backward(stream)
    keep = trainer.guard.keep(local.loss_sum * float("nan"), grad_norm, 2)
    trainer.optimizer.found_inf = 1.0 - keep
    trainer.optimizer.step()
    trainer.ema.update(trainer.model, keep)
    assert float(keep) == 0.0
    assert all(torch.equal(a, p) for a, p in zip(before, trainer.model.parameters(), strict=True))
    assert all(
        torch.equal(m, trainer.optimizer.state[p]["exp_avg"])
        for m, p in zip(moments, trainer.model.parameters(), strict=True)
    )
    assert all(torch.equal(a, b) for a, b in zip(ema, trainer.ema.shadows[0], strict=True))
    assert torch.equal(steps, trainer.optimizer.state[next(trainer.model.parameters())]["step"])
    with pytest.raises(
        gen.GenError, match=r"loss is nan \(grad norm .*\) at step 2; training stopped at step 5"
    ):
        trainer.guard.raise_if_skipped(5, None)
    trainer.lock.release()
