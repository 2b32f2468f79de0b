"""torch.compile sees one graph: the forward and loss of JiT and DiT (flow and DDPM) trace with zero
graph breaks (a break splits the compiled step and, on a GPU, costs a launch gap and a host round
trip)."""

from __future__ import annotations

import pytest
import torch

import gen
from gen_flow.sampling import sample_flow

JIT = dict(input_size=16, patch_size=4, hidden_size=32, depth=2, num_heads=2, num_classes=5,
           bottleneck_dim=16, in_context_len=2, in_context_start=1)  # fmt: skip
DIT = dict(input_size=16, in_channels=3, patch_size=4, hidden_size=32, depth=2, num_heads=2, num_classes=5)


def explain(fn, *args):
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(fn)(*args)
    reasons = [b.reason for b in explanation.break_reasons]
    return explanation.graph_break_count, explanation.graph_count, reasons


@pytest.mark.parametrize(
    ("backbone", "fields", "objective"),
    [
        ("jit", JIT, gen.ObjectiveConfig()),
        ("dit", DIT, gen.ObjectiveConfig()),
        ("dit", {**DIT, "out_channels": 6}, None),  # the DDPM process, learned variance
    ],
)
def test_training_loss_traces_without_graph_breaks(backbone, fields, objective):
    if objective is None:
        objective = (
            gen.build("backbone", "dit", **DIT)
            and gen.load_recipe(
                "recipes/dit_s2.toml",
                ["autoencoder.name='identity'", "data={name='synthetic', shape=[3, 16, 16]}"],
            ).objective
        )
    net = gen.build("backbone", backbone, **fields)
    obj = gen.Objective(objective, num_classes=5)
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(2, 3, 16, 16, generator=g), torch.randn(2, 3, 16, 16, generator=g)
    t = obj.draw(2, generator=g)["t"]
    y = torch.tensor([0, 5])

    def loss(x, y, t, eps):
        return obj.loss_at(net, x, y, t, eps)[0]

    breaks, graphs, reasons = explain(loss, x, y, t, eps)
    assert (breaks, graphs) == (0, 1), reasons


@pytest.mark.parametrize("cfg", [1.0, 2.9])
def test_guided_sampling_compiles_to_whole_graphs(cfg):
    """fullgraph compilation of the conditional and the guided evaluation (the ``eager`` backend traces
    with dynamo as inductor would, and fails on any graph break) gives the eager samples."""
    net = gen.build("backbone", "jit", **JIT).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
    noise = gen.sample_noise(range(3), (3, 16, 16), seed=0)
    kwargs = dict(prediction="x", sampler="heun", steps=4, cfg=cfg, cfg_interval=(0.1, 1.0), num_classes=5)
    torch._dynamo.reset()
    eager = sample_flow(net, noise, torch.tensor([0, 1, 2]), **kwargs)
    compiled = sample_flow(net, noise, torch.tensor([0, 1, 2]), compile="eager", **kwargs)
    torch.testing.assert_close(compiled, eager)
