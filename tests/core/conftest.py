"""A throwaway plugin with one component of every kind, on a plugin host of its own."""

from __future__ import annotations

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


@pytest.fixture
def toy_host():
    """A host that loads no entry points and has only the toy plugin."""
    old = get_host()
    host = reset_host(PluginHost(load_entry_points=False))
    assert host.register(ToyPlugin(), name="toy", version="1.0")
    yield host
    reset_host(old)
