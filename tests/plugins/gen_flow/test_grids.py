"""Time grids: closed forms, their checks, bad input through the CLI, and guidance on a shifted grid."""

from __future__ import annotations

import math
import textwrap

import pytest
import torch
from typer.testing import CliRunner

import gen
from gen.commands import app
from gen.sampling.grids import grid_times
from gen_flow.grids import EDMGrid, EDMGridConfig, ShiftedGrid, ShiftedGridConfig, linear, shift_time
from gen_flow.sampling import sample_flow as sample

F64 = torch.float64
runner = CliRunner()


def test_registered_grids_and_the_linear_one_is_published_jits():
    assert gen.get_registry("time_grid").names() == ["density", "edm", "linear", "list", "shifted"]
    assert torch.equal(grid_times("linear", 4), torch.tensor([0, 0.25, 0.5, 0.75, 1], dtype=F64))
    assert torch.equal(grid_times("linear", 7), gen.time_grid(7, dtype=F64))


def test_shift_by_its_closed_forms():
    u = linear(8)
    for s in (0.5, 1.0, 3.0):
        t = ShiftedGrid(ShiftedGridConfig(shift=s))(8)
        torch.testing.assert_close(t, u / (u + s * (1 - u)), rtol=0, atol=0)
        # SD3's form in the noise level sigma = 1 - t: sigma' = s sigma / (1 + (s - 1) sigma).
        torch.testing.assert_close(1 - t, s * (1 - u) / (1 + (s - 1) * (1 - u)), rtol=0, atol=1e-15)
        # The SNR t^2 / (1 - t)^2 divided by s^2: logit t' = logit t - log s (inside (0, 1)).
        inner = slice(1, -1)
        torch.testing.assert_close(
            torch.logit(t[inner]), torch.logit(u[inner]) - math.log(s), rtol=0, atol=1e-12
        )
    assert torch.equal(ShiftedGrid(ShiftedGridConfig(shift=1.0))(8), u)
    # shift > 1 spends more of the steps at high noise (small t).
    assert (ShiftedGrid(ShiftedGridConfig(shift=3.0))(8)[1:-1] < u[1:-1]).all()


def test_edm_grid_spaces_the_noise_to_signal_ratio_as_edm_spaces_sigma():
    cfg = EDMGridConfig(rho=7.0, sigma_min=0.002, sigma_max=80.0)
    t = EDMGrid(cfg)(6)
    assert t[0] == 0 and t[-1] == 1 and bool((t[1:] > t[:-1]).all())
    sigma = (1 - t[1:-1]) / t[1:-1]  # EDM's sigma on the linear path
    i = torch.arange(5, dtype=F64)
    a, b = 80.0 ** (1 / 7), 0.002 ** (1 / 7)
    torch.testing.assert_close(sigma, (a + i / 4 * (b - a)) ** 7, rtol=1e-12, atol=0)
    assert torch.equal(EDMGrid(cfg)(1), linear(1))


def test_list_grid_and_the_steps_it_needs():
    spec = gen.resolve_config("time_grid", "list", points=[0, 0.2, 0.7, 1])
    grid = gen.build("time_grid", "list", points=[0, 0.2, 0.7, 1])
    assert spec.points == (0.0, 0.2, 0.7, 1.0)
    assert torch.equal(grid_times(grid, 3), torch.tensor([0, 0.2, 0.7, 1], dtype=F64))
    with pytest.raises(ValueError, match="the list has 3 steps; set steps = 3"):
        grid_times(grid, 5)


def test_a_grid_that_breaks_the_rules_is_refused_by_the_driver():
    with pytest.raises(ValueError, match="from 0 to 1"):
        grid_times(lambda n: torch.linspace(0.1, 1, n + 1), 4)
    with pytest.raises(ValueError, match="increase strictly"):
        grid_times(lambda n: torch.tensor([0.0, 0.5, 0.5, 1.0]), 3)
    with pytest.raises(ValueError, match="has 2 steps, not 3"):
        grid_times(lambda n: torch.tensor([0.0, 0.5, 1.0]), 3)


RECIPE = """
[backbone]
name = "jit"
patch_size = 8
hidden_size = 32
depth = 2
num_heads = 2
bottleneck_dim = 16
in_context_len = 0

[data]
name = "shapes"
image_size = 32

[train]
steps = 10
"""


def test_the_density_grid_by_hand_for_any_number_of_steps():
    # Three quarters of the steps in [0, 0.5] (density 3 there, 1 above): quantiles i / N of the CDF.
    grid = gen.build("time_grid", "density", edges=(0.0, 0.5, 1.0), density=(3.0, 1.0))
    torch.testing.assert_close(
        grid(4), torch.tensor([0, 1 / 6, 1 / 3, 0.5, 1], dtype=F64), rtol=0, atol=1e-15
    )
    torch.testing.assert_close(grid(8)[::2], grid(4), rtol=0, atol=1e-15)  # the same density at 2N
    assert torch.equal(grid(1), torch.tensor([0.0, 1.0], dtype=F64))
    # Uniform densities are the linear grid, whatever the edges.
    uniform = gen.build("time_grid", "density", edges=(0.0, 0.1, 0.7, 1.0), density=(2.0, 2.0, 2.0))
    torch.testing.assert_close(uniform(10), linear(10), rtol=0, atol=1e-15)
    assert torch.equal(gen.build("time_grid", "density")(5), linear(5))  # the default: one bin


@pytest.mark.parametrize(
    ("sample_section", "message"),
    [
        ('grid = { name = "shifted", shift = 0.0 }', "[sample.grid] shift: must be > 0: 0.0"),
        ('grid = { name = "shifted", shift = -2.0 }', "[sample.grid] shift: must be > 0: -2.0"),
        (
            'grid = { name = "list", points = [0.0, 0.6, 0.4, 1.0] }',
            "[sample.grid] points: must increase strictly",
        ),
        (
            'grid = { name = "list", points = [0.1, 0.5, 1.0] }',
            "[sample.grid] points: must start at 0 and end at 1",
        ),
        (
            'grid = { name = "list", points = [0.0, 0.5, 0.9] }',
            "[sample.grid] points: must start at 0 and end at 1",
        ),
        (
            'steps = 4\ngrid = { name = "list", points = [0.0, 0.5, 1.0] }',
            "[sample]: grid 'list' with steps = 4: the list has 2 steps; set steps = 2",
        ),
        (
            'grid = { name = "density", edges = [0.0, 0.5, 1.0], density = [1.0] }',
            "[sample.grid]: density has 1 values for 2 bins of edges; give one per bin",
        ),
        (
            'grid = { name = "density", edges = [0.0, 1.0], density = [-1.0] }',
            "[sample.grid] density: must be positive and finite",
        ),
        ('sampler = "dpmpp_4m"', "[sample.sampler] name: unknown sampler 'dpmpp_4m'; did you mean"),
        ('grid = "shifed"', "[sample.grid] name: unknown time_grid 'shifed'; did you mean 'shifted'?"),
    ],
)
def test_bad_grids_and_solvers_are_one_line_before_any_work(tmp_path, sample_section, message):
    path = tmp_path / "r.toml"
    path.write_text(textwrap.dedent(RECIPE) + "\n[sample]\n" + sample_section + "\n")
    for args in (["recipe", "check", str(path)], ["train", str(path), "--run-dir", str(tmp_path / "run")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert text.startswith("error: ") and message in text and "Traceback" not in text, text
        assert result.output.count("error:") == 1
    assert not (tmp_path / "run").exists()


class TimeRecorder(torch.nn.Module):
    """An x-predicting network that records each call's time and batch size."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[float, int]] = []

    def forward(self, z, t, y):
        self.calls.append((float(t[0]), z.shape[0]))
        return torch.tanh(z) + y[:, None].to(z.dtype) * 0.1


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp_2m", "dpmpp_3m"])
def test_guidance_interval_is_in_t_on_a_shifted_coarse_grid(sampler):
    net = TimeRecorder()
    noise = torch.randn(2, 3, dtype=F64)
    grid = gen.ComponentSpec(kind="time_grid", name="shifted", config=ShiftedGridConfig(shift=3.0))
    low, high = 0.1, 0.6
    sample(net, noise, torch.tensor([0, 1]), prediction="x", sampler=sampler, steps=5, cfg=2.5,
           cfg_interval=(low, high), num_classes=3, grid=grid)  # fmt: skip
    times = shift_time(linear(5), 3.0).tolist()  # [0, 0.077, 0.158, 0.333, 0.571, 1]
    assert {round(t, 9) for t, _ in net.calls} <= {round(t, 9) for t in times}
    for t, batch in net.calls:
        guided = t < high and (low == 0 or t > low)
        assert batch == (4 if guided else 2), (t, batch)  # cond + uncond in one batch only inside
    assert any(b == 4 for _, b in net.calls) and any(b == 2 for _, b in net.calls)
