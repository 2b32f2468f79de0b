"""Plugins for core tests.

- ``toy_host``: a throwaway plugin with one component of every kind, on a plugin host of its own;
- ``train_env`` / ``train_env_module``: a tiny installed plugin (dataset ``blobs``, backbone ``tinymlp``)
  visible to this process and to subprocesses (torchrun), and a recipe that trains it in a second.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Literal

import attrs
import pytest
import torch
from attrs import validators as v

import gen
from gen.plugins import PluginHost, get_host, reset_host


@attrs.frozen(kw_only=True)
class ToyNetConfig:
    width: int = gen.field(8, doc="Hidden width.", validator=v.ge(1))
    ratio: float = gen.field(1.0, doc="A float.", validator=v.gt(0))
    act: Literal["relu", "gelu"] = gen.field("relu", doc="Activation.")
    bias: bool = gen.field(True, doc="Use biases.")
    tag: str = gen.field("toy", doc="A string.")
    mode: str = gen.field("fast", doc="One of a set.", validator=v.in_(("fast", "slow")))
    scales: tuple[int, ...] = gen.field((1, 2), doc="A sequence.")
    interval: tuple[float, float] = gen.field((0.0, 1.0), doc="A pair.")
    limit: int | None = gen.field(None, doc="Optional.", validator=v.optional(v.ge(0)))
    extra: dict[str, int] = gen.field({}, doc="A table.")
    input_dim: int = gen.field(4, doc="Input size (from the data).")
    num_classes: int = gen.field(0, doc="Classes (from the data).")

    def __attrs_post_init__(self):
        if self.limit is not None and self.limit > self.width:
            raise ValueError(f"limit ({self.limit}) must not exceed width ({self.width})")


class ToyNet(torch.nn.Module):
    def __init__(self, cfg: ToyNetConfig):
        super().__init__()
        self.cfg = cfg
        self.lin = torch.nn.Linear(cfg.input_dim, cfg.input_dim)

    def forward(self, z, t, y):
        return self.lin(z)


def build_toy_net(cfg: ToyNetConfig) -> ToyNet:
    """A one-layer toy backbone."""
    return ToyNet(cfg)


@attrs.frozen(kw_only=True)
class ToyScheduleConfig:
    low: float = gen.field(0.0, doc="Lower end.", validator=v.ge(0))


class ToyProcess:
    """A `gen.Process` that validates every section and samples nothing (the toy host's recipes)."""

    noise_scale = 1.0

    def with_objective(self, objective):
        return self

    def check_shape(self, shape):
        pass

    def check_sample(self, sample):
        pass

    def backbone_fields(self, spec):
        return {}

    def draw(self, n, generator):
        return {"t": torch.rand(n, generator=generator)}

    def loss(self, net, x, condition, draws, eps):
        per_sample = (net(x, draws["t"], condition.y) - x).pow(2).flatten(1).mean(1)
        return per_sample, {"loss": per_sample.detach(), "t": draws["t"]}

    def sample(self, net, noise, condition, sample, *, guide=None, on_step=None):
        return noise


class ToyPlugin:
    """Registered under the name ``toy``."""

    @gen.hookimpl
    def register_backbones(self, register):
        register("toynet", build_toy_net, config=ToyNetConfig)

    @gen.hookimpl
    def register_datasets(self, register):
        register("toyset", lambda cfg: gen.DataSpec(shape=(4,)), description="Four numbers.")

    @gen.hookimpl
    def register_schedules(self, register):
        register("logit_normal", lambda cfg: cfg, config=ToyScheduleConfig, description="Toy schedule.")
        register("uniform", lambda cfg: cfg, description="Toy uniform.")

    @gen.hookimpl
    def register_samplers(self, register):
        register("heun", lambda cfg: cfg, description="Toy solver.")

    @gen.hookimpl
    def register_predictions(self, register):
        register("x", lambda cfg: cfg, description="Toy prediction.")

    @gen.hookimpl
    def register_time_grids(self, register):
        register("linear", lambda cfg: lambda steps: gen.time_grid(steps), description="Toy grid.")

    @gen.hookimpl
    def register_processes(self, register):
        register("flow", lambda cfg: ToyProcess(), description="Toy flow.")

    @gen.hookimpl
    def register_autoencoders(self, register):
        register("identity", lambda cfg: cfg, description="Toy pixel space.")

    @gen.hookimpl
    def register_loggers(self, register):
        register("jsonl", lambda cfg: ToyLogger(), description="Toy logger (logs nothing).")


class ToyLogger:
    """A :class:`gen.Logger` that keeps nothing."""

    def open(self, run):
        pass

    def metrics(self, step, values):
        pass

    def image(self, step, tag, image):
        pass

    def scores(self, step, scores, record):
        pass

    def close(self, ok):
        pass


@pytest.fixture
def toy_host():
    """A host that loads no entry points and has only the toy plugin."""
    old = get_host()
    host = reset_host(PluginHost(load_entry_points=False))
    assert host.register(ToyPlugin(), name="toy", version="1.0")
    yield host
    reset_host(old)


# -- the tiny installed plugin ----------------------------------------------------------------------

PLUGIN = '''
import time

import attrs
import torch
from attrs import validators as v

import gen


@attrs.frozen(kw_only=True)
class BlobsConfig:
    size: int = gen.field(4, doc="Image side.")
    num_classes: int = gen.field(3, doc="Classes; 0 = unconditional.")
    num_samples: int = gen.field(64, doc="Samples in an epoch.")
    nan_batch: int = gen.field(-1, doc="Batch index that holds NaNs (fault injection).")
    delay: float = gen.field(0.0, doc="Seconds to sleep per batch (to test signals).")


class Blobs:
    """Class-coloured noise images; sample i depends only on (seed, i)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.spec = gen.DataSpec(shape=(3, cfg.size, cfg.size), num_classes=cfg.num_classes)
        self.num_samples = cfg.num_samples

    def sample(self, seed, i):
        g = torch.Generator().manual_seed(seed * 100003 + i)
        k = self.cfg.num_classes
        y = int(torch.randint(0, k, (1,), generator=g)) if k else 0
        x = 0.3 * torch.randn(self.spec.shape, generator=g) + (y - 1) * 0.5
        return x.clamp(-1, 1), y

    def train_batches(self, batch_size, *, seed, rank=0, world_size=1, start_batch=0):
        k = start_batch
        while True:
            first = k * batch_size * world_size + rank * batch_size
            pairs = [self.sample(seed, first + i) for i in range(batch_size)]
            x = torch.stack([p[0] for p in pairs])
            if k == self.cfg.nan_batch:
                x = x * float("nan")
            if self.cfg.delay:
                time.sleep(self.cfg.delay)
            yield x, torch.tensor([p[1] for p in pairs], dtype=torch.long)
            k += 1

    def evaluate_samples(self, x, y):
        return {"mean": float(x.mean())}


@attrs.frozen(kw_only=True)
class TinyConfig:
    input_size: int = gen.field(4, doc="Image side.")
    in_channels: int = gen.field(3, doc="Channels.")
    num_classes: int = gen.field(3, doc="Classes.")
    hidden: int = gen.field(32, doc="Width.", validator=v.ge(1))


class TinyMLP(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg.in_channels * cfg.input_size**2
        self.embed = torch.nn.Embedding(cfg.num_classes + 1, cfg.hidden)
        self.inp = torch.nn.Linear(d + 1, cfg.hidden)
        self.norm = torch.nn.LayerNorm(cfg.hidden)
        self.out = torch.nn.Linear(cfg.hidden, d)

    def forward(self, z, t, y):
        h = self.inp(torch.cat([z.flatten(1), t[:, None]], 1)) + self.embed(y)
        return self.out(torch.nn.functional.silu(self.norm(h))).view_as(z)


class TwoTimes:
    """A process that draws two times per sample, as MeanFlow draws (r, t): its draws must be keyed by
    position in the global batch like the flow's one time."""

    noise_scale = 1.0

    def __init__(self, cfg):
        pass

    def with_objective(self, objective):
        return self

    def check_shape(self, shape):
        pass

    def check_sample(self, sample):
        pass

    def backbone_fields(self, spec):
        return {}

    def draw(self, n, generator):
        t = torch.rand(n, generator=generator)
        return {"t": t, "r": torch.rand(n, generator=generator) * t}

    def loss(self, net, x, condition, draws, eps):
        t, r = draws["t"], draws["r"]
        tb = t.view(-1, *[1] * (x.ndim - 1))
        out = net(tb * x + (1 - tb) * eps, t - r, condition.y)
        per_sample = ((out - x) ** 2).flatten(1).mean(1)
        return per_sample, {"loss": per_sample.detach(), "t": t.detach()}

    def sample(self, net, noise, condition, sample, *, guide=None, on_step=None):
        return net(noise, torch.ones(noise.shape[0]), condition.y)  # one step from noise


@gen.hookimpl
def register_processes(register):
    register("twotimes", TwoTimes, description="Two times a sample (tests).")


@gen.hookimpl
def register_samplers(register):
    register("onestep", lambda cfg: None, description="One step (tests).", process="twotimes")


@gen.hookimpl
def register_datasets(register):
    register("blobs", Blobs, config=BlobsConfig, description="Class-coloured noise (tests).")


@gen.hookimpl
def register_backbones(register):
    register("tinymlp", TinyMLP, config=TinyConfig, description="A small MLP (tests).")
'''

RECIPE = """
[backbone]
name = "tinymlp"

[data]
name = "blobs"

[objective]
prediction = "x"
loss = "v"

[sample]
sampler = "euler"
steps = 4
cfg = 2.0

[train]
steps = 6
global_batch = 8
lr = 1e-3
warmup_steps = 2
ema_decays = [0.9, 0.5]
log_every = 1
ckpt_every = 3
grid_samples = 6
eval_samples = 6
"""


def _install_tiny_plugin(root: Path, mp: pytest.MonkeyPatch) -> Path:
    """Write the plugin as an installed distribution under ``root/site``; returns the recipe path."""
    site = root / "site"
    site.mkdir()
    info = site / "gen_traintest-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gen_traintest\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gen]\ngen_traintest = gen_traintest_mod\n")
    (site / "gen_traintest_mod.py").write_text(textwrap.dedent(PLUGIN))
    mp.syspath_prepend(str(site))
    mp.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    recipe = root / "tiny.toml"
    recipe.write_text(RECIPE)
    return recipe


@pytest.fixture
def train_env(tmp_path, monkeypatch):
    """Installs the tiny plugin (also for subprocesses via PYTHONPATH); returns a recipe path."""
    recipe = _install_tiny_plugin(tmp_path, monkeypatch)
    old = get_host()
    reset_host(PluginHost())
    yield recipe
    reset_host(old)


@pytest.fixture(scope="module")
def train_env_module(tmp_path_factory):
    """:func:`train_env` for a whole test module (to train one run that several tests read)."""
    with pytest.MonkeyPatch.context() as mp:
        recipe = _install_tiny_plugin(tmp_path_factory.mktemp("tiny"), mp)
        old = get_host()
        reset_host(PluginHost())
        yield recipe
        reset_host(old)


@pytest.fixture(scope="module")
def run(train_env_module, tmp_path_factory):
    """A tiny run trained for 6 steps: 3 classes of 3 x 4 x 4 images, EMAs 0.9 and 0.5."""
    from gen.recipe import load_recipe
    from gen.training.engine import train

    run_dir = tmp_path_factory.mktemp("run")
    train(load_recipe(train_env_module, ["train.grid_samples=0", "train.eval_samples=0"]), run_dir)
    return run_dir
