"""The ddpm process computes the published DiT diffusion's functions (``dit_diffusion`` reference vectors)."""

from __future__ import annotations

import pytest
import torch

import gen

TOL = 1e-4  # max abs error / max abs value


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert ours.shape == ref.shape
    return ((ours - ref).abs().max() / ref.abs().max()).item()


@pytest.fixture(scope="module")
def setup(reference, dit_from_reference):
    tensors, config = reference("dit_diffusion")
    learn_sigma = config["backbone"]["learn_sigma"]
    process = gen.build(
        "process", "ddpm", num_timesteps=config["diffusion"]["steps"], learn_sigma=learn_sigma
    )
    return tensors, config, dit_from_reference(tensors, config), process


def test_forward_on_integer_timesteps(setup):
    tensors, _, net, _ = setup
    with torch.no_grad():
        out = net(tensors["forward.z"], tensors["forward.t"].float(), tensors["forward.y"])
    assert rel_err(out, tensors["forward.out"]) < TOL


def test_hybrid_loss_per_sample(setup):
    tensors, _, net, process = setup
    with torch.no_grad():
        loss, stats = process.loss_at(
            net, tensors["loss.x"], tensors["loss.y"], tensors["loss.t"].float(), tensors["loss.noise"]
        )
    for key in ("mse", "vb", "loss"):
        ref = tensors[f"loss.{key}"]
        assert rel_err(stats[key], ref) < TOL, key
        # vb spans 0.01 (t > 0) to 2 (the decoder NLL at t = 0): each entry on its own scale too.
        assert ((stats[key] - ref).abs() / ref.abs().clamp_min(1e-3)).max().item() < TOL, key
    torch.testing.assert_close(loss, stats["loss"], rtol=0, atol=0)


def respacing(text: str) -> tuple[str, int]:
    """ADM's respacing string -> (the sampler's spacing, steps): "ddim8" -> ("ddim", 8), "250" -> ("even", 250)."""
    return ("ddim", int(text[len("ddim") :])) if text.startswith("ddim") else ("even", int(text))


@pytest.mark.parametrize(("key", "guided"), [("ddim.out", False), ("ddim_cfg.out", True)])
def test_ddim_eta0_respaced(setup, key, guided):
    tensors, config, net, process = setup
    sampling = config["sampling"]
    spacing, steps = respacing(sampling["respacing"])
    sampler = gen.build(
        "sampler", "ddim", eta=0.0, spacing=spacing, cfg_channels=sampling["guidance_channels"]
    )
    out = process.run_sampler(
        net,
        tensors["ddim.noise"],
        tensors["ddim.labels"],
        sampler=sampler,
        steps=steps,
        cfg=sampling["cfg_scale"] if guided else 1.0,
        cfg_interval=(0.0, 1.0),
        num_classes=config["backbone"]["num_classes"],
    )
    assert rel_err(out, tensors[key]) < TOL
