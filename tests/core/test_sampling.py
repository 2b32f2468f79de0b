"""The sampling driver: time grid, guidance with interval, batched CFG, the skipped pass, start noise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gen
from gen.objective import ObjectiveConfig
from gen.sampling.config import SampleConfig
from gen.sampling.grids import time_grid
from gen.sampling.guidance import guidance_scale
from gen.sampling.noise import sample_noise
from gen_flow.guidance import guided_velocity
from gen_flow.sampling import sample_flow as sample

F64 = torch.float64


class ClassNet(nn.Module):
    """A deterministic per-sample network whose output depends on z, t and the label; counts its calls."""

    def __init__(self, num_classes=3, dim=4, dtype=F64):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.embed = nn.Parameter(torch.randn(num_classes + 1, dim, generator=g, dtype=dtype))
        self.weight = nn.Parameter(torch.randn(dim, dim, generator=g, dtype=dtype) / dim)
        self.batch_sizes = []

    def forward(self, z, t, y):
        self.batch_sizes.append(z.shape[0])
        assert t.shape == (z.shape[0],) and y.shape == (z.shape[0],)
        h = z.flatten(1)  # (B, D)
        return (torch.tanh(h @ self.weight) * (1 + t[:, None]) + self.embed[y]).view_as(z)


def reference_sample(net, noise, labels, *, steps, cfg, interval, method, t_eps=0.05, num_classes=3):
    """The published JiT sampler as /work/shared/fixtures/reference/README.md states it (two passes)."""
    null = torch.full_like(labels, num_classes)
    ts = torch.linspace(0.0, 1.0, steps + 1, dtype=noise.dtype)
    low, high = interval

    def v(z, t):
        tv = t.expand(z.shape[0])
        v_c = (net(z, tv, labels) - z) / (1 - t).clamp_min(t_eps)
        v_u = (net(z, tv, null) - z) / (1 - t).clamp_min(t_eps)
        s = cfg if bool((t < high) & ((low == 0) | (t > low))) else 1.0
        return v_u + s * (v_c - v_u)

    z = noise
    for i in range(steps - 1):
        t, t_next = ts[i], ts[i + 1]
        if method == "euler":
            z = z + (t_next - t) * v(z, t)
        else:
            v1 = v(z, t)
            v2 = v(z + (t_next - t) * v1, t_next)
            z = z + (t_next - t) * (v1 + v2) / 2
    return z + (ts[-1] - ts[-2]) * v(z, ts[-2])


def test_time_grid():
    torch.testing.assert_close(time_grid(4), torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    assert time_grid(3, dtype=F64)[1].item() == 1 / 3
    with pytest.raises(ValueError):
        time_grid(0)


def test_guidance_scale_interval():
    assert guidance_scale(0.1, 3.0, (0.1, 1.0)) == 1.0  # t > low is strict
    assert guidance_scale(0.2, 3.0, (0.1, 1.0)) == 3.0
    assert guidance_scale(1.0, 3.0, (0.1, 1.0)) == 1.0  # t < high is strict
    assert guidance_scale(0.0, 3.0, (0.0, 0.5)) == 3.0  # low = 0 means from the start
    assert guidance_scale(0.5, 3.0, (0.0, 0.5)) == 1.0
    assert guidance_scale(torch.tensor(0.75), 2.0, (0.1, 0.8)) == 2.0


def _two_pass(net, z, t, labels, s, num_classes=3, t_eps=0.05):
    tv = torch.full((z.shape[0],), t, dtype=z.dtype)
    v_c = (net(z, tv, labels) - z) / max(1 - t, t_eps)
    v_u = (net(z, tv, torch.full_like(labels, num_classes)) - z) / max(1 - t, t_eps)
    return v_u + s * (v_c - v_u)


def test_batched_cfg_equals_two_separate_passes():
    net = ClassNet()
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=F64)
    labels = torch.tensor([0, 1, 2, 3, 1])  # one sample already asks for the null label
    velocity = guided_velocity(net, labels, prediction="x", cfg=2.5, cfg_interval=(0.1, 0.9), num_classes=3)
    got = velocity(z, torch.tensor(0.5, dtype=F64))
    assert net.batch_sizes == [10]  # one forward of the conditional and unconditional batch
    torch.testing.assert_close(got, _two_pass(ClassNet(), z, 0.5, labels, 2.5), rtol=0, atol=1e-13)


def test_float32_batched_cfg_matches_two_passes():
    net = ClassNet(dtype=torch.float32)
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(8) % 3
    velocity = guided_velocity(net, labels, prediction="x", cfg=4.0, num_classes=3)
    got = velocity(z, 0.3)
    torch.testing.assert_close(got, _two_pass(net, z, 0.3, labels, 4.0), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("t", "cfg", "interval", "num_classes"),
    [
        (0.05, 2.5, (0.1, 0.9), 3),  # before the interval
        (0.95, 2.5, (0.1, 0.9), 3),  # after it
        (0.5, 1.0, (0.0, 1.0), 3),  # no guidance
        (0.5, 2.5, (0.0, 1.0), 0),  # an unconditional model
    ],
)
def test_skipping_the_unconditional_pass_changes_nothing(t, cfg, interval, num_classes):
    net = ClassNet(num_classes=max(num_classes, 1))
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=F64)
    labels = torch.tensor([0, 1, 2, 0, 1]) if num_classes else torch.zeros(5, dtype=torch.long)
    velocity = guided_velocity(
        net, labels, prediction="x", cfg=cfg, cfg_interval=interval, num_classes=num_classes
    )
    got = velocity(z, t)
    assert net.batch_sizes == [5]  # the conditional pass only
    s = guidance_scale(t, cfg, interval) if num_classes else cfg
    want = _two_pass(ClassNet(num_classes=max(num_classes, 1)), z, t, labels, s, num_classes=num_classes)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-13)


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("interval", [(0.1, 1.0), (0.0, 1.0), (0.3, 0.6)])
def test_sampling_matches_the_reference_loop(method, interval):
    net = ClassNet()
    noise = torch.randn(6, 4, generator=torch.Generator().manual_seed(3), dtype=F64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    kwargs = dict(steps=8, cfg=2.9)
    got = sample(
        net, noise, labels, prediction="x", sampler=method, cfg_interval=interval, num_classes=3, **kwargs
    )
    want = reference_sample(ClassNet(), noise, labels, interval=interval, method=method, **kwargs)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_sampling_skips_passes_outside_the_interval():
    net = ClassNet()
    noise = torch.randn(2, 4, dtype=F64)
    sample(net, noise, torch.tensor([0, 1]), prediction="x", sampler="euler", steps=4, cfg=3.0,
           cfg_interval=(0.3, 1.0), num_classes=3)  # fmt: skip
    assert net.batch_sizes == [2, 2, 4, 4]  # t = 0, 0.25 outside; t = 0.5, 0.75 inside


def test_sampler_given_as_name_function_or_spec():
    from gen_flow.solvers import heun

    noise = torch.randn(3, 4, generator=torch.Generator().manual_seed(4), dtype=F64)
    labels = torch.tensor([0, 1, 2])
    common = dict(prediction="x", steps=5, cfg=1.5, num_classes=3)
    by_name = sample(ClassNet(), noise, labels, sampler="heun", **common)
    by_fn = sample(ClassNet(), noise, labels, sampler=heun, **common)
    spec = gen.ComponentSpec(kind="sampler", name="heun", config=None)
    by_spec = sample(ClassNet(), noise, labels, sampler=spec, **common)
    assert torch.equal(by_name, by_fn) and torch.equal(by_name, by_spec)
    by_config = gen.sample(
        ClassNet(),
        noise,
        labels,
        SampleConfig(sampler="heun", steps=5, cfg=1.5),
        ObjectiveConfig(),
        num_classes=3,
    )
    assert torch.equal(by_name, by_config)


def test_labels_none_is_unconditional():
    noise = torch.randn(3, 4, dtype=F64)
    common = dict(prediction="x", sampler="euler", steps=3, cfg=2.0, num_classes=3)
    a = sample(ClassNet(), noise, None, **common)
    b = sample(ClassNet(), noise, torch.full((3,), 3), **common)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-13)


class GaussianOracle(nn.Module):
    """The exact denoiser of data x ~ N(mu_y, sigma^2) (per class y, per dim) under noise N(0, 1)."""

    def __init__(self, prediction, mu, sigma):
        super().__init__()
        self.prediction, self.mu, self.sigma = prediction, mu, sigma

    def forward(self, z, t, y):
        t = t[:, None]
        mu = self.mu[y]  # (B, D)
        var = t**2 * self.sigma**2 + (1 - t) ** 2
        x_hat = mu + t * self.sigma**2 / var * (z - t * mu)  # E[x | z_t]
        eps_hat = (1 - t) / var * (z - t * mu)  # E[eps | z_t]
        return {"x": x_hat, "eps": eps_hat, "v": x_hat - eps_hat}[self.prediction]


@pytest.mark.parametrize("prediction", ["x", "eps", "v"])
@pytest.mark.parametrize("sampler", ["heun", "ab2"])
def test_exact_denoiser_transports_noise_to_data(prediction, sampler):
    mu = torch.tensor([[0.5, -1.0, 0.0], [-0.5, 1.0, 2.0]], dtype=F64)
    sigma = torch.tensor([0.3, 0.5, 1.0], dtype=F64)
    noise = torch.randn(4, 3, generator=torch.Generator().manual_seed(5), dtype=F64)
    labels = torch.tensor([0, 1, 0, 1])
    out = sample(GaussianOracle(prediction, mu, sigma), noise, labels, prediction=prediction, sampler=sampler,
                 steps=200, t_eps=1e-3, num_classes=2)  # fmt: skip
    exact = mu[labels] + sigma * noise  # the flow map of a Gaussian is affine
    # eps-prediction carries no velocity at t = 0 (v = (z - eps) / max(t, t_eps) and eps = z there), so
    # its first step is off by O(h); x- and v-prediction are second order.
    tolerance = 1e-2 if prediction == "eps" else 5e-4
    assert (out - exact).abs().max().item() < tolerance


def test_sample_noise_is_per_index():
    full = sample_noise(range(6), (3, 4, 4), seed=7)
    parts = torch.cat(
        [sample_noise(range(0, 2), (3, 4, 4), seed=7), sample_noise([2, 3, 4, 5], (3, 4, 4), seed=7)]
    )
    assert full.shape == (6, 3, 4, 4) and torch.equal(full, parts)
    assert torch.equal(sample_noise([4], (3, 4, 4), seed=7)[0], full[4])
    assert not torch.equal(sample_noise(range(6), (3, 4, 4), seed=8), full)
    assert not torch.equal(full[0], full[1])
    scaled = sample_noise(range(6), (3, 4, 4), seed=7, noise_scale=2.0, dtype=F64)
    torch.testing.assert_close(scaled, 2 * full.to(F64))
    big = sample_noise(range(64), (1000,), seed=0)
    assert big.mean().abs().item() < 0.01 and big.std().item() == pytest.approx(1.0, abs=0.01)
    assert sample_noise([], (2,), seed=0).shape == (0, 2)
    with pytest.raises(ValueError):
        sample_noise([0], (2,), seed=-1)
