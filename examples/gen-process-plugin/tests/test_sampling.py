"""vp_ddim against the exact solution for Gaussian data, and the process's guidance."""

from __future__ import annotations

import math
from itertools import pairwise

import gen
import pytest
import torch

from gen_vp.ddim import VPDDIM, VPDDIMConfig
from gen_vp.path import alpha_sigma

S = 0.5  # the data: x ~ N(0, S^2 I)


def process(prediction: str = "eps", **options):
    objective = gen.ObjectiveConfig(
        prediction=prediction,
        loss=prediction,
        process=gen.ComponentSpec(
            kind="process",
            name="vp_cosine",
            config=gen.resolve_config("process", "vp_cosine", **options),
        ),
    )
    return objective.build_process()


def settings(**keys):
    """A [sample] section with the vp_ddim sampler."""
    return gen.SampleConfig(**{"sampler": "vp_ddim", **keys})


def oracle(prediction: str):
    """The optimal network for x ~ N(0, S^2 I): E[eps | z] = sigma z / m^2 and
    E[x | z] = alpha S^2 z / m^2, m^2 = alpha^2 S^2 + sigma^2 (the std of z_t)."""

    def net(z, t, y):
        alpha, sigma = alpha_sigma(t.reshape(-1, *[1] * (z.ndim - 1)).to(z.dtype))
        m2 = alpha**2 * S**2 + sigma**2
        eps, x = sigma * z / m2, alpha * S**2 * z / m2
        return eps if prediction == "eps" else alpha * eps - sigma * x

    return net


def unconditional(n: int):
    return gen.ClassLabels.null(n, num_classes=0)


def run(prediction: str, steps: int, noise: torch.Tensor, **options) -> torch.Tensor:
    vp = process(prediction, **options)
    return vp.sample(
        oracle(prediction), noise, unconditional(len(noise)), settings(steps=steps)
    )


def exact_ddim(times: torch.Tensor) -> float:
    """What DDIM does to z for Gaussian data: z' = (a' a S^2 + s' s) / m^2 z a step
    (x_hat = a S^2 z / m^2, eps_hat = s z / m^2), a product of cosines times the ODE's
    m' / m: the same map as the probability-flow ODE, shrunk a little at each step."""
    factor = 1.0
    for t, t_next in pairwise(times.tolist()):
        (a, s), (a2, s2) = alpha_sigma(t), alpha_sigma(t_next)
        factor *= (a2 * a * S**2 + s2 * s) / (a**2 * S**2 + s**2)
    return factor


def flow_map(t0: float) -> float:
    """The probability-flow ODE from t0 to 1 scales z by m(1) / m(t0)."""
    a, s = alpha_sigma(t0)
    return S / math.sqrt(a**2 * S**2 + s**2)


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("steps", [1, 3, 20])
def test_ddim_is_the_closed_form_for_gaussian_data(prediction, steps):
    noise = torch.randn(
        6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    vp = process(prediction)
    times = vp.chain_times(gen.grid_times("linear", steps))
    assert times[0] == 0.02 and times[-1] == 1.0 and len(times) == steps + 1
    out = run(prediction, steps, noise)
    torch.testing.assert_close(out, exact_ddim(times) * noise, rtol=1e-12, atol=0)


def test_v_prediction_starts_at_pure_noise():
    # alpha(0) = 0: x_hat = alpha z - sigma v divides by nothing (eps divides by 0).
    noise = torch.randn(3, 2, dtype=torch.float64)
    out = run("v", 8, noise, t_min=0.0)
    times = process("v", t_min=0.0).chain_times(gen.grid_times("linear", 8))
    assert times[0] == 0.0
    torch.testing.assert_close(out, exact_ddim(times) * noise, rtol=1e-12, atol=0)


def test_ddim_converges_to_the_flow_ode_at_first_order():
    noise = torch.ones(1, 1, dtype=torch.float64)
    exact = flow_map(0.02)
    # DDIM shrinks z a little at each step (each factor is a cosine): errors > 0.
    errors = [
        (exact - float(run("eps", n, noise, t_max=1.0))) / exact
        for n in (10, 20, 40, 80)
    ]
    orders = [math.log2(e0 / e1) for e0, e1 in pairwise(errors)]
    assert all(e > 0 for e in errors)
    assert all(0.9 < order < 1.1 for order in orders), orders  # 0.95, 0.98, 0.99
    assert errors[-1] < 0.02
    # t_max < 1 stops the network short of the data: a last step of at least 1 - t_max.
    clamped = (exact - float(run("eps", 80, noise))) / exact
    assert errors[-1] < clamped < 0.03


def ancestral_std(times: torch.Tensor) -> float:
    """The std of eta = 1 samples for Gaussian data: z' = c z + r xi a step, so
    var' = c^2 var + r^2, with c = (a' a S^2 + sqrt(s'^2 - r^2) s) / m^2."""
    var = 1.0
    for t, t_next in pairwise(times.tolist()):
        (a, s), (a2, s2) = alpha_sigma(t), alpha_sigma(t_next)
        m2 = a**2 * S**2 + s**2
        if t_next == 1.0:
            c, r = a * S**2 / m2, 0.0
        else:
            r = (s2 / s) * math.sqrt(1 - a**2 / a2**2)
            c = (a2 * a * S**2 + math.sqrt(s2**2 - r**2) * s) / m2
        var = c**2 * var + r**2
    return math.sqrt(var)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_samples_have_the_std_of_the_chain(eta):
    noise = torch.randn(1000, 8, generator=torch.Generator().manual_seed(1))
    vp = process()
    sampler = gen.ComponentSpec(
        kind="sampler", name="vp_ddim", config=VPDDIMConfig(eta=eta)
    )
    config = settings(steps=50, sampler=sampler)
    out = vp.sample(oracle("eps"), noise, unconditional(1000), config)
    times = vp.chain_times(gen.grid_times("linear", 50))
    # eta = 0: 0.499 (the data's 0.5 up to DDIM's shrinking); eta = 1: 0.468, the
    # ancestral chain's first-order error at 50 steps (0.482 at 100, 0.490 at 200).
    expected = exact_ddim(times) if eta == 0 else ancestral_std(times)
    assert abs(float(out.std()) / expected - 1) < 0.025
    if eta > 0:  # keyed by the start noise: a sample does not depend on its batch
        again = vp.sample(oracle("eps"), noise[500:], unconditional(500), config)
        torch.testing.assert_close(again, out[500:])
        deterministic = run("eps", 50, noise)
        assert float((out - deterministic).abs().mean()) > 0.1 * S


def test_eta_one_is_ancestral_sampling():
    # One step from t to t' with eta = 1 draws z' ~ N(a' x_hat + c eps_hat, r^2):
    # r^2 = (s'/s)^2 (1 - a^2/a'^2), the posterior variance of DDPM.
    sampler = VPDDIM(VPDDIMConfig(eta=1.0))
    x_hat, eps_hat = torch.zeros(4000, 1), torch.zeros(4000, 1)
    noise = torch.randn(4000, 1, generator=torch.Generator().manual_seed(2))
    times = torch.tensor([0.3, 0.6], dtype=torch.float64)
    out = sampler.run(lambda z, t: (x_hat, eps_hat), noise, times)
    (a, s), (a2, s2) = alpha_sigma(0.3), alpha_sigma(0.6)
    r = (s2 / s) * math.sqrt(1 - a**2 / a2**2)
    assert abs(float(out.std()) / r - 1) < 0.05


def test_steps_are_reported_in_order():
    heard = []
    process().sample(
        oracle("eps"),
        torch.randn(2, 3),
        unconditional(2),
        settings(steps=5),
        on_step=lambda k, total: heard.append((k, total)),
    )
    assert heard == [(k, 5) for k in range(1, 6)]


def test_compile_wraps_the_net(monkeypatch):
    compiled = []

    def fake_compile(net):
        compiled.append(net)
        return net

    monkeypatch.setattr(torch, "compile", fake_compile)
    net = oracle("eps")
    process().sample(net, torch.randn(2, 3), unconditional(2), settings(compile=True))
    assert compiled == [net]


# -- classifier-free guidance ------------------------------------------------------

COND, UNCOND = 0.3, -0.2  # the eps the net predicts with a label and with the null one


class LabelNet:
    """eps_hat = COND for a label, UNCOND for the null label; records each call."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.calls: list[tuple[float, int, list[int]]] = []

    def __call__(self, z, t, y):
        self.calls.append((float(t[0]), len(z), y.tolist()))
        null = (y == self.num_classes).reshape(-1, *[1] * (z.ndim - 1))
        return torch.where(null, torch.full_like(z, UNCOND), torch.full_like(z, COND))


def by_hand(noise: torch.Tensor, times: torch.Tensor, scales: list[float]):
    """DDIM with the guided eps UNCOND + s (COND - UNCOND), s the scale of each step."""

    def denoise(z, t):
        s = scales[times.tolist().index(t)]
        eps = torch.full_like(z, UNCOND + s * (COND - UNCOND))
        a, sigma = alpha_sigma(t)
        return (z - sigma * eps) / a, eps

    return VPDDIM(VPDDIMConfig()).run(denoise, noise, times)


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_guidance_on_an_interval(cfg):
    interval = (0.3, 0.7)
    net, labels = LabelNet(10), gen.ClassLabels(torch.tensor([1, 4]), 10)
    noise = torch.randn(
        2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    )
    vp = process()
    config = settings(steps=10, cfg=cfg, cfg_interval=interval)
    out = vp.sample(net, noise, labels, config)
    times = vp.chain_times(gen.grid_times("linear", 10))
    scales = [gen.guidance_scale(t, cfg, interval) for t in times[:-1]]
    assert [t for t, _, _ in net.calls] == pytest.approx(times[:-1].tolist())
    for (_, batch, y), s in zip(net.calls, scales, strict=True):
        # One batched forward for both passes where guided; else the conditional.
        assert (batch, y) == ((2, [1, 4]) if s == 1.0 else (4, [1, 4, 10, 10]))
    if cfg == 1.0:
        assert set(scales) == {1.0}
    else:
        assert 1.0 in scales and cfg in scales
    torch.testing.assert_close(out, by_hand(noise, times, scales), rtol=1e-12, atol=0)


def test_an_unconditional_model_is_never_guided():
    net = LabelNet(0)
    process().sample(net, torch.randn(2, 3), unconditional(2), settings(cfg=4.0))
    assert {batch for _, batch, _ in net.calls} == {2}
