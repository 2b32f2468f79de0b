"""The objective and the sampling driver reproduce the published JiT code on the jit_tiny vectors."""

from __future__ import annotations

import pytest
import torch

import gen
from gen_flow.sampling import sample_flow


@pytest.fixture(scope="module")
def jit_tiny(reference):
    tensors, cfg = reference("jit_tiny")
    net = gen.build(
        "backbone", "jit", **cfg["backbone"], input_size=cfg["img_size"], num_classes=10, in_channels=3
    )
    net.load_state_dict({k.removeprefix("net."): v for k, v in tensors.items() if k.startswith("net.")})
    return net.eval(), tensors, cfg


def test_training_loss_matches_reference(jit_tiny):
    net, tensors, cfg = jit_tiny
    objective = gen.Objective(
        gen.ObjectiveConfig(prediction="x", loss="v", t_eps=cfg["t_eps"], noise_scale=cfg["noise_scale"]),
        num_classes=cfg["num_classes"],
    )
    with torch.no_grad():
        loss, stats = objective.loss_at(
            net, tensors["loss.x"], tensors["loss.y"], tensors["loss.t"], tensors["loss.e"]
        )
    assert abs(loss.item() - tensors["loss.value"].item()) < 1e-4 * max(1.0, tensors["loss.value"].item())
    assert stats["loss"].shape == (4,) and torch.equal(stats["t"], tensors["loss.t"])
    assert stats["loss"].mean().item() == pytest.approx(loss.item(), rel=1e-6)


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_sampling_matches_reference(jit_tiny, method):
    net, tensors, cfg = jit_tiny
    s = cfg["sampling"]
    out = sample_flow(
        net,
        tensors[f"sample_{method}.noise"],
        tensors[f"sample_{method}.labels"],
        prediction="x",
        sampler=method,
        steps=s["steps"],
        cfg=s["cfg"],
        cfg_interval=tuple(s["interval"]),
        t_eps=cfg["t_eps"],
        num_classes=cfg["num_classes"],
    )
    err = (out - tensors[f"sample_{method}.out"]).abs().max().item()
    assert err < 1e-4, err


def test_sampling_from_config_matches_reference(jit_tiny):
    from gen import sample as sample_from_config

    net, tensors, cfg = jit_tiny
    s = cfg["sampling"]
    sample_cfg = gen.SampleConfig(
        sampler="heun", steps=s["steps"], cfg=s["cfg"], cfg_interval=tuple(s["interval"])
    )
    out = sample_from_config(
        net,
        tensors["sample_heun.noise"],
        tensors["sample_heun.labels"],
        sample_cfg,
        gen.ObjectiveConfig(prediction="x", t_eps=cfg["t_eps"]),
        num_classes=cfg["num_classes"],
    )
    assert (out - tensors["sample_heun.out"]).abs().max().item() < 1e-4
