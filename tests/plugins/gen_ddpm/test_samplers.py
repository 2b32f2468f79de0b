"""The ddpm and ddim samplers: determinism, batch independence, guidance and spacing."""

from __future__ import annotations

import pytest
import torch

import gen
from gen_ddpm import AncestralSampler, DDIMSampler
from gen_ddpm.guidance import guidance_scale_at, guided_output


@pytest.fixture(scope="module")
def process():
    return gen.build("process", "ddpm")


def run(process, net, noise, labels, sampler, *, steps=6, cfg=1.0, interval=(0.0, 1.0)):
    return process.run_sampler(
        net, noise, labels, sampler=sampler, steps=steps, cfg=cfg, cfg_interval=interval, num_classes=3
    )


def start(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, 8, 8, generator=g), torch.tensor([0, 2, 3])[:n]


def test_samplers_are_registered_objects_of_the_ddpm_process():
    for name, cls in (("ddpm", AncestralSampler), ("ddim", DDIMSampler)):
        sampler = gen.build("sampler", name)
        assert isinstance(sampler, cls) and sampler.process == "ddpm" and not callable(sampler)
    assert gen.build("sampler", "ddpm").config.spacing == "even"
    assert gen.build("sampler", "ddim").config.spacing == "ddim"
    assert gen.build("sampler", "ddim").config.eta == 0.0


def test_default_spacings():
    assert gen.build("sampler", "ddim").timesteps(1000, 8) == list(range(0, 1000, 125))
    even = gen.build("sampler", "ddpm").timesteps(1000, 250)
    assert len(even) == 250 and even[0] == 0 and even[-1] == 999


@pytest.mark.parametrize("cfg", [1.0, 2.5])
def test_ddim_eta0_is_deterministic_and_batch_independent(process, tiny, cfg):
    noise, labels = start()
    sampler = gen.build("sampler", "ddim")
    batch = run(process, tiny, noise, labels, sampler, cfg=cfg)
    assert torch.equal(batch, run(process, tiny, noise, labels, sampler, cfg=cfg))
    for i in range(3):
        alone = run(process, tiny, noise[i : i + 1], labels[i : i + 1], sampler, cfg=cfg)
        torch.testing.assert_close(alone[0], batch[i], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("name", "options"), [("ddpm", {}), ("ddim", {"eta": 1.0})])
def test_stochastic_samplers_draw_per_sample_noise(process, tiny, name, options):
    noise, labels = start()
    sampler = gen.build("sampler", name, **options)
    batch = run(process, tiny, noise, labels, sampler)
    alone = run(process, tiny, noise[1:2], labels[1:2], sampler)
    torch.testing.assert_close(alone[0], batch[1], rtol=1e-5, atol=1e-5)
    swapped = run(process, tiny, noise.flip(0), labels.flip(0), sampler)
    torch.testing.assert_close(swapped.flip(0), batch, rtol=1e-5, atol=1e-5)
    deterministic = run(process, tiny, noise, labels, gen.build("sampler", "ddim"))
    assert (batch - deterministic).abs().max() > 1e-3  # noise was added along the way


@pytest.mark.parametrize("name", ["ddpm", "ddim"])
def test_clip_denoised_ends_in_the_data_range(process, tiny, name):
    # The last step returns x̂_0 (its posterior mean at t = 0 is x̂_0), clipped to [-1, 1].
    noise, labels = start()
    out = run(process, tiny, noise, labels, gen.build("sampler", name, clip_denoised=True))
    assert out.abs().max() <= 1.0
    assert run(process, tiny, noise, labels, gen.build("sampler", name)).abs().max() > 1.0


def test_full_ancestral_chain_on_a_short_process(tiny):
    process = gen.build("process", "ddpm", num_timesteps=20, beta_schedule="cosine")
    noise, labels = start()
    out = run(process, tiny, noise, labels, gen.build("sampler", "ddpm"), steps=20)
    assert out.shape == noise.shape and torch.isfinite(out).all()


def test_ddim_spacing_that_cannot_take_the_steps(process, tiny):
    noise, labels = start(1)
    with pytest.raises(gen.GenError, match=r"\[sample\] steps = 300"):
        run(process, tiny, noise, labels, gen.build("sampler", "ddim"), steps=300)


def test_guidance_interval_in_time():
    # tau = 1 - (t + 1) / T: 0 at the noise end (t = 999), 0.999 at t = 0.
    assert guidance_scale_at(999, 1000, 4.0, (0.0, 1.0)) == 4.0
    assert guidance_scale_at(0, 1000, 4.0, (0.0, 1.0)) == 4.0
    assert guidance_scale_at(999, 1000, 4.0, (0.5, 1.0)) == 1.0
    assert guidance_scale_at(0, 1000, 4.0, (0.5, 1.0)) == 4.0
    assert guidance_scale_at(999, 1000, 4.0, (0.0, 0.5)) == 4.0
    assert guidance_scale_at(0, 1000, 4.0, (0.0, 0.5)) == 1.0


class Recorder(torch.nn.Module):
    """A fake backbone: output channel c holds (c + 1) * (label + 1); records its batch sizes."""

    def __init__(self, out_channels=8):
        super().__init__()
        self.out_channels, self.batches = out_channels, []

    def forward(self, z, t, y):
        self.batches.append(z.shape[0])
        scale = torch.arange(1, self.out_channels + 1, dtype=z.dtype).view(1, -1, 1, 1)
        return scale * (y.to(z.dtype) + 1).view(-1, 1, 1, 1) * torch.ones(z.shape[0], 1, *z.shape[2:])


@pytest.mark.parametrize(("cfg_channels", "guided"), [(3, 3), (0, 4)])
def test_guidance_on_the_first_eps_channels(cfg_channels, guided):
    net, labels, x = Recorder(), torch.tensor([1, 0]), torch.zeros(2, 4, 2, 2)
    fn = guided_output(
        net,
        labels,
        cfg=3.0,
        cfg_interval=(0.0, 1.0),
        num_classes=3,
        num_timesteps=1000,
        cfg_channels=cfg_channels,
    )
    out = fn(x, 500)
    assert net.batches == [4]  # conditional and null label as one forward
    cond = (torch.arange(1, 9.0).view(1, -1) * (labels + 1).view(-1, 1)).view(2, 8, 1, 1)
    uncond = (torch.arange(1, 9.0) * 4).view(1, 8, 1, 1)  # the null label 3
    expected = cond.clone()
    expected[:, :guided] = uncond[:, :guided] + 3.0 * (cond[:, :guided] - uncond[:, :guided])
    torch.testing.assert_close(out, expected.expand(2, 8, 2, 2))


def test_no_unconditional_pass_without_guidance():
    net, labels, x = Recorder(), torch.tensor([1, 0]), torch.zeros(2, 4, 2, 2)
    guided_output(net, labels, cfg=1.0, cfg_interval=(0.0, 1.0), num_classes=3, num_timesteps=1000)(x, 10)
    guided_output(net, labels, cfg=4.0, cfg_interval=(0.0, 1.0), num_classes=0, num_timesteps=1000)(x, 10)
    guided_output(net, labels, cfg=4.0, cfg_interval=(0.0, 0.5), num_classes=3, num_timesteps=1000)(x, 10)
    assert net.batches == [2, 2, 2]
