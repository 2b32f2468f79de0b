"""Guidance on an interval, integrated piecewise (``split_interval``): where the grid is cut, the scale of
each piece, and the exact solution of the discontinuous field (closed forms, orders of convergence)."""

from __future__ import annotations

import math

import pytest
import torch

import gen
from gen_flow.guidance import FlowGuide as Guide
from gen_flow.guidance import guided_velocity, interval_pieces
from gen_flow.sampling import sample_flow

F64 = torch.float64


def cut(times, cfg, interval):
    """The pieces as lists of rounded times and their scales."""
    return [([round(float(t), 6) for t in piece], s) for piece, s in interval_pieces(times, cfg, interval)]


def test_an_end_on_the_grid_cuts_there():
    times = torch.linspace(0, 1, 11, dtype=F64)
    assert cut(times, 2.0, (0.1, 1.0)) == [([0.0, 0.1], 1.0), ([round(i / 10, 6) for i in range(1, 11)], 2.0)]


def test_the_nearest_point_moves_onto_each_end_and_the_steps_stay():
    times = torch.linspace(0, 1, 11, dtype=F64)
    pieces = cut(times, 3.0, (0.23, 0.77))
    assert pieces == [
        ([0.0, 0.1, 0.23], 1.0),
        ([0.23, 0.3, 0.4, 0.5, 0.6, 0.7, 0.77], 3.0),
        ([0.77, 0.9, 1.0], 1.0),
    ]
    assert sum(len(p) - 1 for p, _ in pieces) == 10


def test_ends_are_inserted_where_no_point_can_move():
    assert cut(torch.tensor([0.0, 1.0], dtype=F64), 2.0, (0.3, 0.6)) == [
        ([0.0, 0.3], 1.0),
        ([0.3, 0.6], 2.0),
        ([0.6, 1.0], 1.0),
    ]
    # the one interior point moves onto the first end; the second end is inserted
    assert cut(torch.tensor([0.0, 0.5, 1.0], dtype=F64), 2.0, (0.3, 0.6)) == [
        ([0.0, 0.3], 1.0),
        ([0.3, 0.6], 2.0),
        ([0.6, 1.0], 1.0),
    ]


def test_no_switch_inside_is_one_piece():
    times = torch.linspace(0, 1, 5)
    for cfg, interval in [(2.0, (0.0, 1.0)), (1.0, (0.3, 0.6))]:
        ((piece, scale),) = interval_pieces(times, cfg, interval)
        assert torch.equal(piece, times) and scale == cfg


def test_float32_grids_cut_at_the_end_guidance_scale_compares_with():
    """0.1 in float32 is the time at which guidance_scale switches on a float32 grid."""
    times = torch.linspace(0, 1, 8, dtype=F64).float()  # 0.1 is no grid point: the nearest moves
    pieces = interval_pieces(times, 2.0, (0.1, 1.0))
    assert pieces[0][0][-1] == torch.tensor(0.1, dtype=torch.float32) and pieces[0][0].dtype == torch.float32
    assert gen.guidance_scale(pieces[0][0][-1], 2.0, (0.1, 1.0)) == 1.0  # left of the switch, as its piece


class ConstantNet(torch.nn.Module):
    """A v-prediction net whose output is e_y, whatever z and t: a field constant on each piece."""

    def __init__(self):
        super().__init__()
        self.e = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]], dtype=F64))

    def forward(self, z, t, y):
        return self.e[y].expand_as(z).clone()


@pytest.mark.parametrize("sampler", ["euler", "heun", "ab2", "dpmpp_3m", "deis_pc", "dopri5"])
def test_split_integration_is_exact_for_a_field_constant_on_each_piece(sampler):
    """v = e_y outside the interval, e_null + s (e_y - e_null) inside: z_1 = z_0 + e_y + (high - low)
    (s - 1) (e_y - e_null). Every solver is exact on a constant field once no step straddles a switch;
    the published rule (scale decided at each t) is not, on a grid without the ends (dopri5 adapts its
    steps, but within its tolerance only)."""
    net, y = ConstantNet(), torch.tensor([0, 1])
    noise = torch.randn(2, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    cfg, (low, high) = 3.0, (0.23, 0.61)
    exact = noise + net.e[y] + (high - low) * (cfg - 1) * (net.e[y] - net.e[2])
    kwargs = dict(prediction="v", sampler=sampler, steps=5, cfg=cfg, cfg_interval=(low, high), num_classes=2)
    split = sample_flow(net, noise, y, split_interval=True, **kwargs)
    torch.testing.assert_close(split, exact, rtol=0, atol=1e-12)
    published = sample_flow(net, noise, y, **kwargs)
    assert (published - exact).abs().max() > 0.01


class DecayNet(torch.nn.Module):
    """A v-prediction net with v = -a_y z: the guided field is -(a_null + s (a_y - a_null)) z."""

    rates = torch.tensor([0.5, 2.0, 1.5], dtype=F64)  # a_0, a_1, a_null

    def forward(self, z, t, y):
        return -self.rates[y][:, None] * z


def decay_error(steps, sampler, split):
    cfg, (low, high), y = 2.5, (0.33, 1.0), torch.tensor([0, 1])
    z0 = torch.ones(2, 3, dtype=F64)
    a, a_null = DecayNet.rates[y], DecayNet.rates[2]
    integral = a * (1 - (high - low)) + (a_null + cfg * (a - a_null)) * (high - low)  # ∫ rate dt
    exact = z0 * torch.exp(-integral)[:, None]
    out = sample_flow(DecayNet(), z0, y, prediction="v", sampler=sampler, steps=steps, cfg=cfg,
                     cfg_interval=(low, high), num_classes=2, split_interval=split)  # fmt: skip
    return float((out - exact).abs().max())


@pytest.mark.parametrize("sampler, order", [("heun", 2), ("ab2", 2), ("deis_pc", 2)])
def test_split_integration_keeps_the_solvers_order(sampler, order):
    """On a linear grid that never holds 0.33, the published rule is first order at the switch; cut
    there, each solver keeps its order."""
    split = [decay_error(n, sampler, True) for n in (12, 24, 48)]
    published = [decay_error(n, sampler, False) for n in (12, 24, 48)]
    rates = [math.log2(a / b) for a, b in zip(split[:-1], split[1:], strict=False)]
    assert min(rates) > order - 0.3, (split, rates)
    assert published[-1] > 10 * split[-1], (published, split)


def test_autoguidance_takes_a_constant_scale_too():
    """with_scale(s) at a time outside the interval is the guided field of the scale s there."""
    net, weak, y = DecayNet(), DecayNet(), torch.tensor([0, 1])
    weak.rates = torch.tensor([1.0, 1.0, 1.0], dtype=F64)
    z = torch.ones(2, 3, dtype=F64)
    fn = guided_velocity(net, y, prediction="v", cfg=2.0, cfg_interval=(0.3, 0.6), num_classes=2,
                         guide=Guide(weak, "v", 0.05))  # fmt: skip
    v_main, v_weak = net(z, None, y), weak(z, None, y)
    torch.testing.assert_close(fn(z, 0.1), v_main)  # outside: no guidance
    torch.testing.assert_close(fn.with_scale(2.0)(z, 0.1), v_weak + 2.0 * (v_main - v_weak))
    torch.testing.assert_close(fn.with_scale(1.0)(z, 0.45), v_main)


def test_progress_counts_the_steps_of_the_cut_grid():
    """One step cannot be cut at two ends without two more: the progress reports three, in order."""
    net, y, calls = ConstantNet(), torch.tensor([0, 1]), []
    noise = torch.zeros(2, 2, dtype=F64)
    sample_flow(net, noise, y, prediction="v", sampler="euler", steps=1, cfg=3.0, cfg_interval=(0.3, 0.6),
               num_classes=2, split_interval=True, on_step=lambda k, total: calls.append((k, total)))  # fmt: skip
    assert calls == [(1, 3), (2, 3), (3, 3)]
