"""Progress during a batch: the sampling driver reports every solver step (``on_step``), the model
sampler passes it on per batch, and ``gen sample``'s bar moves by fractions of images, exact at the end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rich.console import Console
from torch import nn

import gen
import gen.sampling.files
from gen.distributed import DistInfo
from gen.sampling.files import sample_to
from gen.sampling.model import ModelSampler, class_labels
from gen.sampling.noise import sample_noise
from gen_flow.sampling import sample_flow as sample


class Net(nn.Module):
    """A small deterministic network (float64); logs its calls into ``log``."""

    def __init__(self, log, dim=4, num_classes=3):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.embed = nn.Parameter(torch.randn(num_classes + 1, dim, generator=g, dtype=torch.float64))
        self.weight = nn.Parameter(torch.randn(dim, dim, generator=g, dtype=torch.float64) / dim)
        self.log = log

    def forward(self, z, t, y):
        self.log.append("net")
        return torch.tanh(z @ self.weight) * (1 + t[:, None]) + self.embed[y]


SOLVERS = ["euler", "heun", "ab2", "dpmpp_2m", "dpmpp_3m", "euler_maruyama"]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("grid", ["linear", "shifted"])
def test_on_step_reports_each_step_once_in_order_and_changes_nothing(solver, grid):
    steps = 5
    grid = gen.build("time_grid", "shifted", shift=3.0) if grid == "shifted" else grid
    log: list = []
    net = Net(log)
    noise = sample_noise(range(6), (4,), seed=3, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    kw = dict(prediction="x", sampler=solver, steps=steps, cfg=2.0, num_classes=3, grid=grid)
    plain = sample(net, noise, labels, **kw)
    log.clear()
    reported = sample(net, noise, labels, **kw, on_step=lambda k, total: log.append((k, total)))
    assert torch.equal(reported, plain)  # bit-identical with the callback
    calls = [c for c in log if c != "net"]
    assert calls == [(k, steps) for k in range(1, steps + 1)]  # once per step, increasing, to the end
    # During the batch: the first steps are reported before the network's last evaluation.
    assert log.index((1, steps)) < len(log) - 1 - log[::-1].index("net")


def test_an_adaptive_solver_reports_every_step_by_the_end():
    pytest.importorskip("torchdiffeq")
    log: list = []
    noise = sample_noise(range(2), (4,), seed=0, dtype=torch.float64)
    kw = dict(prediction="x", sampler="dopri5", steps=4, num_classes=3)
    plain = sample(Net([]), noise, torch.tensor([0, 1]), **kw)
    got = sample(Net([]), noise, torch.tensor([0, 1]), **kw, on_step=lambda k, n: log.append((k, n)))
    assert torch.equal(got, plain) and log == [(k, 4) for k in range(1, 5)]


def test_the_model_sampler_reports_the_steps_of_each_batch(run):
    sampler = ModelSampler.from_checkpoint(run)
    settings = sampler.settings("default", steps=3)
    labels = class_labels(5, 3)
    plain = list(sampler.images(range(5), labels, settings, seed=0, batch_size=2))
    log: list = []
    steps = list(
        sampler.images(
            range(5), labels, settings, seed=0, batch_size=2, on_step=lambda b, k, n: log.append((b, k, n))
        )
    )
    for (i, a), (j, b) in zip(plain, steps, strict=True):
        assert i == j and np.array_equal(a, b)
    assert log == [(b, k, 3) for b in (range(0, 2), range(2, 4), range(4, 5)) for k in (1, 2, 3)]


class RecordingProgress:
    """Stands in for `gen.progress_bar`: keeps the task's total and every ``completed`` it is set to."""

    def __init__(self):
        self.total, self.completed = None, []

    def __call__(self, console, enabled, label, **kw):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, name, total):
        self.total = total
        return 0

    def update(self, task, completed=None, advance=None):
        assert advance is None, "the bar is set to what is done, never advanced"
        self.completed.append(completed)


def test_gen_sample_bar_moves_per_step_in_images_and_ends_exact(run, tmp_path, monkeypatch):
    bar = RecordingProgress()
    monkeypatch.setattr(gen.sampling.files, "progress_bar", bar)
    sampler = ModelSampler.from_checkpoint(run)
    settings = sampler.settings("default", steps=4)
    dist = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    sample_to(
        tmp_path / "s.npz", sampler, settings, class_labels(5, 3), seed=0, batch_size=4, dist=dist,
        console=Console(quiet=True),
    )  # fmt: skip
    assert bar.total == 5
    # Batch [0, 4): 1, 2, 3, 4 images after each of its 4 steps; batch [4, 5): a quarter image a step.
    assert bar.completed == [1.0, 2.0, 3.0, 4.0, 4, 4.25, 4.5, 4.75, 5.0, 5]
    assert all(a <= b for a, b in zip(bar.completed[:-1], bar.completed[1:], strict=True))
    assert bar.completed[-1] == bar.total and isinstance(bar.completed[-1], int)  # exact: no 99.9 %
