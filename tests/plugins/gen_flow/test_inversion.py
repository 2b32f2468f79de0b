"""Inverting the flow (`gen_flow.inversion`): each solver step undone by fixed-point iterations, the exact
velocity at t = 1, the network never asked there, evaluations counted, multistep solvers refused.

Fields with known answers, in float64:

- an x-prediction network that outputs ``x̂ = a z + b_y`` (linear in z, a label-dependent shift): the
  inverse of each Euler or Heun step is the solution of a linear system, which the fixed-point
  iterations reach to rounding when ``h (1 - a) / (1 - t) < 1`` (they contract by that factor);
- a network that outputs 0: ``v = -z / (1 - t)``; the explicit reverse Euler step from t = 1 uses the
  exact ``v(z, 1) = z``, so two reverse steps give ``z_1/2 = x / 2``, then ``z_0 = z_1/2 + v / 2 = x``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gen
from gen_flow.inversion import INVERTIBLE_SOLVERS, inversion_evaluations, invert_flow
from gen_flow.sampling import sample_flow

F64 = torch.float64


class LinearDenoiser(nn.Module):
    """``x̂ = a z + shift[y]``: records the times it is asked at and counts its calls."""

    def __init__(self, a: float, num_classes: int = 3):
        super().__init__()
        self.a = a
        self.shift = torch.linspace(-0.3, 0.3, num_classes + 1, dtype=F64)  # the null label's is 0.3
        self.times: list[float] = []

    def forward(self, z, t, y):
        self.times += t.tolist()
        return self.a * z + self.shift[y].view(-1, 1, 1, 1)


def grid(name: str):
    if name == "linear":
        return "linear"
    return gen.ComponentSpec(kind="time_grid", name="edm", config=gen.resolve_config("time_grid", "edm"))


@pytest.mark.parametrize("solver", INVERTIBLE_SOLVERS)
@pytest.mark.parametrize("grid_name", ["linear", "edm"])
@pytest.mark.parametrize(("cfg", "split"), [(1.0, False), (2.5, False), (2.5, True)])
def test_sampling_from_the_inverted_noise_gives_the_images_back_to_rounding(solver, grid_name, cfg, split):
    net = LinearDenoiser(a=0.9)
    noise = torch.randn(4, 2, 3, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    labels = gen.ClassLabels(torch.tensor([0, 1, 2, 3]), 3)  # the last one the null label
    settings = dict(prediction="x", sampler=solver, steps=8, grid=grid(grid_name), cfg=cfg)
    settings.update(cfg_interval=(0.2, 0.9), split_interval=split)
    x = sample_flow(net, noise, labels, **settings)
    z = invert_flow(net, x, labels, fixed_point=60, **settings)
    assert torch.allclose(z, noise, rtol=0, atol=1e-10)  # contracting by h (1 - a) / max(1 - t, t_eps) < 1
    again = sample_flow(net, z, labels, **settings)
    assert torch.allclose(again, x, rtol=0, atol=1e-10)


def test_the_explicit_reverse_step_from_the_data_end_uses_v_equal_to_z():
    class Zero(nn.Module):
        def forward(self, z, t, y):
            return torch.zeros_like(z)

    x = torch.randn(3, 1, 2, 2, dtype=F64)
    null = gen.ClassLabels.null(3, 0)
    z = invert_flow(Zero(), x, null, prediction="x", sampler="euler", steps=2, fixed_point=0)
    # v(x, 1) = x: z_1/2 = x - x / 2; v(x / 2, 1/2) = -(x / 2) / (1/2) = -x: z_0 = x / 2 + x / 2.
    assert torch.equal(z, x)


@pytest.mark.parametrize("solver", INVERTIBLE_SOLVERS)
@pytest.mark.parametrize("fixed_point", [0, 1, 3])
def test_inversion_never_asks_the_network_at_t_1_and_counts_its_evaluations(solver, fixed_point):
    net = LinearDenoiser(a=0.5, num_classes=0)
    x = torch.randn(2, 1, 2, 2, dtype=F64)
    invert_flow(
        net, x, gen.ClassLabels.null(2, 0), prediction="x", sampler=solver, steps=5, fixed_point=fixed_point
    )
    assert net.times and max(net.times) < 1.0
    assert len(net.times) // 2 == inversion_evaluations(solver, 5, fixed_point)  # two samples a call


def test_one_fixed_point_iteration_makes_a_step_exact_where_explicit_steps_are_not():
    net = LinearDenoiser(a=0.8, num_classes=0)
    noise = torch.randn(3, 1, 4, 4, dtype=F64, generator=torch.Generator().manual_seed(1))
    null = gen.ClassLabels.null(3, 0)
    x = sample_flow(net, noise, null, prediction="x", sampler="euler", steps=8)
    errors = [
        float(
            (invert_flow(net, x, null, prediction="x", sampler="euler", steps=8, fixed_point=k) - noise)
            .abs()
            .max()
        )
        for k in (0, 1, 2, 4, 8)
    ]
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] * 1e-3


@pytest.mark.parametrize("sampler", ["dpmpp_2m", "ab2", "euler_maruyama"])
def test_a_solver_whose_step_depends_on_more_than_its_start_is_refused_in_one_line(sampler):
    with pytest.raises(gen.GenError, match=r"cannot be inverted step by step.*euler, heun"):
        invert_flow(
            LinearDenoiser(0.5),
            torch.zeros(1, 1, 2, 2),
            gen.ClassLabels.null(1, 3),
            prediction="x",
            sampler=sampler,
            steps=4,
        )


def test_negative_iterations_are_refused():
    with pytest.raises(gen.GenError, match="fixed_point = -1"):
        invert_flow(
            LinearDenoiser(0.5),
            torch.zeros(1, 1, 2, 2),
            gen.ClassLabels.null(1, 3),
            prediction="x",
            sampler="euler",
            steps=4,
            fixed_point=-1,
        )
