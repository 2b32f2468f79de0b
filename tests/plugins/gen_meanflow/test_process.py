"""The meanflow process against closed forms and hand computations: the identity, the variants' losses,
draws and guidance targets, one- and few-step sampling, and the recipe checks."""

from __future__ import annotations

import math

import pytest
import torch

import gen
from gen.components import validate_component
from gen.objective import Objective, ObjectiveConfig
from gen.sampling.config import SampleConfig
from gen_meanflow.process import MeanFlowProcess, draw_guidance_scale


def objective(prediction: str = "v", **process) -> ObjectiveConfig:
    spec = validate_component(
        "process", {"name": "meanflow", **process}, section="objective.process", file=None
    )
    return ObjectiveConfig(prediction=prediction, loss="v", process=spec)


# -- Gaussian data: the flow map and the average velocity in closed form -------------------------------


class Gaussian:
    """Data N(mu, s² I), noise N(0, sigma² I): z_t = t x + (1 - t) eps is N(t mu, var_t I) with
    std_t = sqrt(t² s² + (1 - t)² sigma²), and the probability-flow map is the affine
    z_e = e mu + (std_e / std_t) (z_t - t mu)."""

    def __init__(self, mu: torch.Tensor, s: float, sigma: float = 1.0):
        self.mu, self.s, self.sigma = mu, s, sigma

    def std(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(t**2 * self.s**2 + (1 - t) ** 2 * self.sigma**2)

    def flow_map(self, z: torch.Tensor, t: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        t, e = t[:, None], e[:, None]
        return e * self.mu + self.std(e) / self.std(t) * (z - t * self.mu)

    def velocity(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v(z, t) = d/dt of the flow map: mu + std_t'/std_t (z - t mu)."""
        tb = t[:, None]
        dstd = (tb * self.s**2 - (1 - tb) * self.sigma**2) / self.std(tb)
        return self.mu + dstd / self.std(tb) * (z - tb * self.mu)

    def average_velocity(self, z: torch.Tensor, t: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """U(z, t, e) = (flow_map(z, t, e) - z) / (e - t); the velocity where e = t."""
        gap = (e - t)[:, None]
        jump = (self.flow_map(z, t, e) - z) / torch.where(gap == 0, 1.0, gap)
        return torch.where(gap == 0, self.velocity(z, t), jump)

    def net(self, prediction: str = "v"):
        """A "network" ``net(z, t, y, h)`` giving the exact U (prediction v) or x̂ = z + (1 - t) U (x)."""

        def net(z, t, y, h, **_):
            u = self.average_velocity(z, t, t + h)
            return u if prediction == "v" else z + (1 - t)[:, None] * u

        return net


def test_the_identity_holds_for_the_exact_average_velocity():
    # U = v + (t_end - t) dU/dt with the JVP along the marginal velocity: float64, to rounding.
    torch.manual_seed(0)
    g = Gaussian(torch.randn(6, dtype=torch.float64), s=0.7, sigma=1.3)
    process = objective().build_process()
    z = torch.randn(5, 6, dtype=torch.float64)
    t = torch.tensor([0.0, 0.1, 0.3, 0.5, 0.8], dtype=torch.float64)
    e = torch.tensor([0.0, 0.9, 0.3, 1.0, 0.95], dtype=torch.float64)
    u = process.average_velocity(g.net(), None)
    value, dudt = process.jvp(u, z, t, e, g.velocity(z, t))
    torch.testing.assert_close(value, g.average_velocity(z, t, e), rtol=1e-12, atol=1e-12)
    residual = value - (g.velocity(z, t) + (e - t)[:, None] * dudt)
    assert residual.abs().max() < 1e-10


@pytest.mark.parametrize(
    "prediction, variant", [("v", "mf"), ("v", "imf"), ("x", "pmf"), ("x", "mf")], ids=str
)
def test_the_exact_average_velocity_has_zero_loss(prediction, variant):
    # With a point mass as data (s = 0) the conditional velocity x - eps is the marginal one, so the
    # exact U meets every variant's target: the loss is 0 to rounding (times kept below 1 - t_eps, where
    # x-prediction's clamp would change U).
    torch.manual_seed(1)
    g = Gaussian(torch.randn(8, dtype=torch.float64), s=0.0)
    obj = Objective(objective(prediction, variant=variant, guidance="none"), num_classes=0)
    x = g.mu.expand(6, 8).clone()
    eps = torch.randn(6, 8, dtype=torch.float64)
    t = torch.tensor([0.05, 0.2, 0.4, 0.4, 0.7, 0.9], dtype=torch.float64)
    # (not t_end = 1: there std_e = 0 and the JVP of sqrt at 0 is 0 * inf in this closed form)
    draws = {"t": t, "t_end": torch.tensor([0.05, 0.9, 0.4, 0.99, 0.95, 0.9], dtype=torch.float64)}
    loss, stats = obj.loss_at(g.net(prediction), x, torch.zeros(6, dtype=torch.long), draws, eps)
    assert stats["loss"].abs().max() < 1e-20 and loss.abs() < 1e-16


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_exact_average_velocity_samples_exactly_in_any_number_of_steps(steps):
    torch.manual_seed(2)
    g = Gaussian(torch.randn(4, dtype=torch.float64), s=0.5, sigma=1.0)
    config = objective()
    noise = torch.randn(3, 4, dtype=torch.float64)
    out = gen.sample(
        g.net(), noise, None, SampleConfig(sampler="meanflow", steps=steps), config, num_classes=0
    )
    want = g.flow_map(noise, torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)  # mu + (s / sigma) z0


# -- the losses by hand -----------------------------------------------------------------------------

A, B, C = 0.7, -0.3, 0.45


def toy_net(z, t, y, h, **_):
    """U(z, t, e) = A t z + B e + C (e - t)² elementwise (e = t + h): dU/dt along (w, 1) is
    A t w + A z - 2 C (e - t)."""
    tb, hb = t[:, None], h[:, None]
    return A * tb * z + B * (tb + hb) + C * hb**2


@pytest.mark.parametrize("form", ["u", "v"])
def test_each_loss_form_is_its_papers_formula_by_hand(form):
    torch.manual_seed(3)
    obj = Objective(
        objective("v", variant="mf", guidance="none", loss_form=form, adaptive_p=0.5), num_classes=0
    )
    x, eps = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    t = torch.tensor([0.2, 0.5, 0.5, 0.9], dtype=torch.float64)
    e = torch.tensor([0.6, 0.5, 1.0, 0.95], dtype=torch.float64)
    loss, stats = obj.loss_at(toy_net, x, torch.zeros(4, dtype=torch.long), {"t": t, "t_end": e}, eps)
    tb, eb = t[:, None], e[:, None]
    z = tb * x + (1 - tb) * eps
    v = x - eps
    u = A * tb * z + B * eb + C * (eb - tb) ** 2
    if form == "u":  # MF: U against v + (e - t) dU/dt, the JVP along v
        err = u - (v + (eb - tb) * (A * tb * v + A * z - 2 * C * (eb - tb)))
    else:  # iMF: U + (e - t) dU/dt against v, the JVP along the model's own U(z, t, t) = A t z + B t
        own = A * tb * z + B * tb
        err = u + (eb - tb) * (A * tb * own + A * z - 2 * C * (eb - tb)) - v
    sq = (err**2).sum(1)
    want = (sq / (sq + 0.01) ** 0.5).mean()
    torch.testing.assert_close(loss, want, rtol=1e-12, atol=0)
    torch.testing.assert_close(stats["loss"], sq / 5, rtol=1e-12, atol=0)


def labelled_net(z, t, y, h, cfg=None, **_):
    """A velocity that depends on the label and on iMF's scale input: ``(y + 1) + 10 cfg``."""
    out = (y.to(z.dtype) + 1)[:, None] + 0 * z
    return out if cfg is None else out + 10 * cfg[:, None]


def test_mf_trained_guidance_is_its_formula_inside_its_interval_and_plain_outside():
    process = objective(
        "v", variant="mf", cfg_scale=1.5, cfg_mix=0.25, cfg_interval=(0.3, 0.8)
    ).build_process()
    z, v = torch.zeros(4, 2), torch.full((4, 2), 5.0)
    t = torch.tensor([0.1, 0.5, 0.5, 0.9])
    condition = gen.ClassLabels(torch.tensor([1, 1, 3, 2]), num_classes=3)  # row 2 has the null label
    v_g, _ = process.guided_velocity(labelled_net, z, t, v, condition, {})
    u_null, u_cond = 3 + 1, torch.tensor([2.0, 2.0, 4.0, 3.0])
    inside = 1.5 * 5 + (1 - 1.5 - 0.25) * u_null + 0.25 * u_cond
    want = torch.stack([torch.tensor(5.0), inside[1], torch.tensor(5.0), torch.tensor(5.0)])
    torch.testing.assert_close(v_g[:, 0], want)


def test_imf_conditioned_guidance_and_its_tangent():
    process = objective("v", variant="imf").build_process()
    z, v = torch.zeros(3, 2), torch.full((3, 2), 5.0)
    t = torch.tensor([0.2, 0.6, 0.6])
    draws = {
        "cfg": torch.tensor([4.0, 4.0, 2.0]),
        "cfg_low": torch.tensor([0.3, 0.3, 0.0]),
        "cfg_high": torch.tensor([0.7, 0.7, 1.0]),
    }
    condition = gen.ClassLabels(torch.tensor([0, 1, 2]), num_classes=5)
    v_g, own = process.guided_velocity(labelled_net, z, t, v, condition, draws)
    # inside (rows 1, 2): own = (y + 1) + 10 (1 - 1/ω), v_null = 5 + 1 + 0; outside (row 0): ω' = 1
    own_want = torch.tensor([1.0, 2 + 10 * 0.75, 3 + 10 * 0.5])
    torch.testing.assert_close(own[:, 0], own_want)
    v_g_want = torch.tensor([5.0, 5 + 0.75 * (own_want[1] - 6), 5 + 0.5 * (own_want[2] - 6)])
    torch.testing.assert_close(v_g[:, 0], v_g_want)


# -- draws ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["mf", "pmf"])
def test_draws_order_the_times_and_give_the_first_rows_t_end_equal_t(variant):
    process = objective("x" if variant == "pmf" else "v", variant=variant).build_process()
    draws = process.draw(1000, torch.Generator().manual_seed(0))
    again = process.draw(1000, torch.Generator().manual_seed(0))
    assert all(torch.equal(draws[k], again[k]) for k in draws)  # keyed
    t, e = draws["t"], draws["t_end"]
    k = int(1000 * process.instant_fraction)
    assert torch.equal(t[:k], e[:k]) and bool((e[k:] > t[k:]).all())
    first = process.schedule.sample(1000, generator=torch.Generator().manual_seed(0))
    if variant == "pmf":  # the r = t rows keep the first draw
        assert torch.equal(t[:k], first[:k])
    else:  # the pair's noisier time
        assert bool((t[:k] <= first[:k]).all()) and not torch.equal(t[:k], first[:k])


def test_guidance_scale_draws_follow_the_power_law():
    u = (torch.arange(200_000, dtype=torch.float64) + 0.5) / 200_000  # quantiles
    s = draw_guidance_scale(u, cfg_max=7.0, beta=1.0)
    assert float(s.min()) >= 1.0 and float(s.max()) <= 8.0
    assert float(s.mean()) == pytest.approx(7.0 / math.log(8.0), rel=1e-6)  # E[s] of density ∝ 1/s on [1, 8]
    s2 = draw_guidance_scale(u, cfg_max=7.0, beta=2.0)
    assert float(s2.mean()) == pytest.approx(math.log(8.0) / (1 - 1 / 8), rel=1e-6)  # density ∝ s^-2


def test_dropped_labels_are_the_batchs_first_rows():
    process = objective().build_process()
    drop = torch.tensor([False, True, False, True, True, False, False, False])
    assert process.arrange_drops(drop).tolist() == [True, True, True, False, False, False, False, False]


# -- sampling and recipes ------------------------------------------------------------------------------


def test_sampling_refuses_what_does_not_apply():
    config = objective("v", variant="mf")
    for sample, message in [
        (SampleConfig(sampler="meanflow", cfg=2.0), "has its guidance trained in"),
        (SampleConfig(sampler="meanflow", split_interval=True), "split_interval"),
        (
            SampleConfig(sampler="heun"),
            "sampler 'heun': a MeanFlow model samples with a sampler of the meanflow",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            config.build_process().check_sample(sample)
    imf = objective("v", variant="imf")
    with pytest.raises(ValueError, match=r"takes guidance scales >= 1 \(trained in \[1, 8\]"):
        imf.build_process().check_sample(SampleConfig(sampler="meanflow", cfg=0.5))
    imf.build_process().check_sample(SampleConfig(sampler="meanflow", cfg=8.5))  # pMF-B/16's, extrapolated


def test_wrong_objective_keys_are_refused_by_name():
    with pytest.raises(ValueError, match="objective.prediction = 'eps'"):
        objective("eps")
    spec = validate_component("process", {"name": "meanflow"}, section="objective.process", file=None)
    with pytest.raises(ValueError, match="objective.loss = 'x'"):
        ObjectiveConfig(prediction="v", loss="x", process=spec)


def test_backbone_takes_the_interval_and_imfs_guidance_inputs():
    spec = gen.DataSpec(shape=(3, 16, 16), num_classes=4)
    assert objective(variant="mf").build_process().backbone_fields(spec) == {"scalar_inputs": ("h",)}
    fields = objective(variant="imf").build_process().backbone_fields(spec)
    assert fields == {"scalar_inputs": ("h", "cfg", "cfg_low", "cfg_high")}
    unconditional = gen.DataSpec(shape=(3, 16, 16), num_classes=0)
    assert objective(variant="imf").build_process().backbone_fields(unconditional) == {
        "scalar_inputs": ("h",)
    }


def test_a_process_repr_names_its_variant():
    process = objective("x", variant="pmf").build_process()
    assert isinstance(process, MeanFlowProcess) and "variant='pmf'" in repr(process)
