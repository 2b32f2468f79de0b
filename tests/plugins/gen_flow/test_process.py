"""The flow process through the engine's `gen.Objective`: the 3 x 3 grid by hand, the clamp, label drop,
multiscale, randomness."""

from __future__ import annotations

import attrs
import pytest
import torch
from torch import nn

import gen
from gen.objective import Objective, ObjectiveConfig

F64 = torch.float64
T_EPS = 0.05


class ToyNet(nn.Module):
    """out = tanh(z) * (1 + t) + 0.1 * y: deterministic, per sample, and it records what it saw."""

    def forward(self, z, t, y):
        self.seen = (z, t, y)
        shape = (-1, *([1] * (z.ndim - 1)))
        return torch.tanh(z) * (1 + t.view(shape)) + 0.1 * y.view(shape).to(z.dtype)


def batch(shape=(3, 4, 4), n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g, dtype=F64)
    eps = torch.randn(n, *shape, generator=g, dtype=F64)
    # Times on both sides of the clamp: t < t_eps and 1 - t < t_eps exercise it.
    t = torch.tensor([0.01, 0.2, 0.5, 0.7, 0.97, 0.999], dtype=F64)[:n]
    y = torch.arange(n) % 3
    return x, eps, t, y


def by_hand(prediction, loss_space, x, eps, t, out):
    """The per-sample loss of the 3 x 3 grid (Table 1 of the JiT paper), written out."""
    tb = t.view(-1, *([1] * (x.ndim - 1)))
    z = tb * x + (1 - tb) * eps
    one_minus_t = (1 - tb).clamp_min(T_EPS)
    t_c = tb.clamp_min(T_EPS)

    def spaces(o):  # network output -> (x, eps, v)
        if prediction == "x":
            return o, (z - tb * o) / one_minus_t, (o - z) / one_minus_t
        if prediction == "eps":
            return (z - (1 - tb) * o) / t_c, o, (z - o) / t_c
        return z + (1 - tb) * o, z - tb * o, o

    truth = {"x": x, "eps": eps, "v": x - eps}[prediction]
    index = {"x": 0, "eps": 1, "v": 2}[loss_space]
    pred, target = spaces(out)[index], spaces(truth)[index]
    return ((pred - target) ** 2).flatten(1).mean(1)


@pytest.mark.parametrize("prediction", ["x", "eps", "v"])
@pytest.mark.parametrize("loss_space", ["x", "eps", "v"])
def test_three_by_three_grid_by_hand(prediction, loss_space):
    x, eps, t, y = batch()
    objective = Objective(ObjectiveConfig(prediction=prediction, loss=loss_space, t_eps=T_EPS), num_classes=3)
    net = ToyNet()
    loss, stats = objective.loss_at(net, x, y, t, eps)
    z = t.view(-1, 1, 1, 1) * x + (1 - t.view(-1, 1, 1, 1)) * eps
    torch.testing.assert_close(net.seen[0], z, rtol=0, atol=1e-15)  # the net saw the point on the path
    out = ToyNet()(z, t, y)
    want = by_hand(prediction, loss_space, x, eps, t, out)
    torch.testing.assert_close(stats["loss"], want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss, want.mean(), rtol=1e-12, atol=1e-12)
    assert torch.equal(stats["t"], t)


@pytest.mark.parametrize("prediction", ["x", "eps", "v"])
@pytest.mark.parametrize("loss_space", ["x", "eps", "v"])
def test_targets_are_the_truth_away_from_the_clamp(prediction, loss_space):
    # Away from the clamp the clamped target is the true x, eps or v: loss = mean((space(out) - truth)^2).
    x, eps, t, y = batch(n=4)
    t = torch.tensor([0.1, 0.4, 0.6, 0.9], dtype=F64)
    objective = Objective(ObjectiveConfig(prediction=prediction, loss=loss_space), num_classes=3)
    _, stats = objective.loss_at(ToyNet(), x, y, t, eps)
    tb = t.view(-1, 1, 1, 1)
    z = tb * x + (1 - tb) * eps
    out = ToyNet()(z, t, y)
    pred = getattr(objective.process.prediction, f"to_{loss_space}")(out, z, tb, t_eps=T_EPS)
    truth = {"x": x, "eps": eps, "v": x - eps}[loss_space]
    torch.testing.assert_close(
        stats["loss"], ((pred - truth) ** 2).flatten(1).mean(1), rtol=1e-10, atol=1e-12
    )


def test_perfect_network_has_zero_loss():
    x, eps, t, y = batch()

    class Oracle(nn.Module):
        def forward(self, z, t, y):
            return x  # the clean sample: a perfect x-predictor

    objective = Objective(ObjectiveConfig(prediction="x", loss="v"), num_classes=3)
    loss, _ = objective.loss_at(Oracle(), x, y, t, eps)
    assert loss.item() == 0.0


def test_vectors_and_weighting():
    x, eps, t, y = batch(shape=(5,))
    config = ObjectiveConfig(prediction="x", loss="v")
    loss, stats = Objective(config, num_classes=3).loss_at(ToyNet(), x, y, t, eps)
    torch.testing.assert_close(
        stats["loss"],
        by_hand("x", "v", x, eps, t, ToyNet()(t.view(-1, 1) * x + (1 - t.view(-1, 1)) * eps, t, y)),
    )
    weighted = Objective(config, num_classes=3, weighting=lambda t: 2 * t)
    w_loss, w_stats = weighted.loss_at(ToyNet(), x, y, t, eps)
    torch.testing.assert_close(w_loss, (2 * t * stats["loss"]).mean())
    torch.testing.assert_close(w_stats["loss"], stats["loss"])  # stats stay unweighted


def test_multiscale_by_hand():
    x, eps, t, y = batch(shape=(2, 4, 4))
    config = ObjectiveConfig(prediction="x", loss="x", multiscale=(2, 4))
    _, stats = Objective(config, num_classes=3).loss_at(ToyNet(), x, y, t, eps)
    tb = t.view(-1, 1, 1, 1)
    diff = ToyNet()(tb * x + (1 - tb) * eps, t, y) - x  # (B, 2, 4, 4) x-pred, x-loss

    def pool(a, f):  # average over f x f blocks, written without avg_pool2d
        b, c, h, w = a.shape
        return a.reshape(b, c, h // f, f, w // f, f).mean(dim=(3, 5))

    full = (diff**2).mean(dim=(1, 2, 3))
    by2 = (pool(diff, 2) ** 2).mean(dim=(1, 2, 3))
    by4 = (pool(diff, 4) ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(stats["loss"], (full + by2 + by4) / 3, rtol=1e-12, atol=1e-14)


def test_multiscale_errors():
    with pytest.raises(ValueError, match="integers >= 2"):
        ObjectiveConfig(multiscale=(1,))
    objective = Objective(ObjectiveConfig(multiscale=(3,)), num_classes=0)
    with pytest.raises(gen.GenError, match="do not divide"):
        objective.check_shape((3, 8, 8))
    with pytest.raises(gen.GenError, match="image samples"):
        objective.check_shape((8,))
    x = torch.zeros(2, 8)
    with pytest.raises(gen.GenError):
        objective.loss(ToyNet(), x, torch.zeros(2, dtype=torch.long))


def test_label_drop():
    objective = Objective(ObjectiveConfig(label_drop=0.3), num_classes=10)
    y = torch.arange(20_000) % 10
    dropped = objective.drop_labels(y, torch.Generator().manual_seed(0))
    is_null = dropped == 10
    assert is_null.float().mean().item() == pytest.approx(0.3, abs=0.015)
    assert torch.equal(dropped[~is_null], y[~is_null])  # the others are untouched
    again = objective.drop_labels(y, torch.Generator().manual_seed(0))
    assert torch.equal(dropped, again)
    assert torch.equal(Objective(ObjectiveConfig(label_drop=0.0), 10).drop_labels(y), y)
    assert (Objective(ObjectiveConfig(label_drop=1.0), 10).drop_labels(y) == 10).all()


def test_loss_draws_labels_times_then_noise_from_the_generator():
    x, _, _, y = batch(n=6)
    objective = Objective(ObjectiveConfig(label_drop=0.5, noise_scale=2.0), num_classes=3)
    net = ToyNet()
    loss, stats = objective.loss(net, x, y, generator=torch.Generator().manual_seed(7))

    g = torch.Generator().manual_seed(7)
    drop = torch.rand(6, generator=g) < 0.5
    y_dropped = torch.where(drop, torch.full_like(y, 3), y)
    t = torch.sigmoid(torch.randn(6, generator=g) * 0.8 - 0.8).to(F64)
    eps = torch.randn(x.shape, generator=g, dtype=F64) * 2.0
    want, want_stats = objective.loss_at(ToyNet(), x, y_dropped, t, eps)
    torch.testing.assert_close(loss, want, rtol=0, atol=0)
    torch.testing.assert_close(stats["t"], t, rtol=0, atol=0)
    assert torch.equal(net.seen[2], y_dropped)

    again, _ = objective.loss(ToyNet(), x, y, generator=torch.Generator().manual_seed(7))
    other, _ = objective.loss(ToyNet(), x, y, generator=torch.Generator().manual_seed(8))
    assert again.item() == loss.item() and other.item() != loss.item()


def test_noise_scale():
    objective = Objective(ObjectiveConfig(noise_scale=2.0), num_classes=0)
    eps = objective.sample_noise(torch.zeros(100_000, 4), torch.Generator().manual_seed(0))
    assert eps.std().item() == pytest.approx(2.0, rel=0.01)


def test_unconditional_objective():
    objective = Objective(ObjectiveConfig(label_drop=0.1), num_classes=0)
    assert objective.null_label == 0
    x = torch.randn(4, 3, 8, 8)
    y = torch.zeros(4, dtype=torch.long)
    net = ToyNet()
    loss, stats = objective.loss(net, x, y, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and stats["loss"].shape == (4,)
    assert torch.equal(net.seen[2], y)  # every label is (and stays) the null label 0


def test_schedule_as_name_or_component_spec():
    assert type(Objective(ObjectiveConfig(schedule="uniform"), 0).process.schedule).__name__ == "Uniform"
    spec = gen.ComponentSpec(
        kind="schedule", name="logit_normal", config=gen.resolve_config("schedule", "logit_normal", mean=0.3)
    )
    schedule = Objective(ObjectiveConfig(schedule=spec), 0).process.schedule
    assert (schedule.mean, schedule.std) == (0.3, 0.8)
    assert isinstance(schedule, gen.Schedule)
    assert isinstance(Objective(ObjectiveConfig(), 0).process.prediction, gen.Prediction)
    assert isinstance(Objective(ObjectiveConfig(), 0).process, gen.Process)


def test_unknown_prediction_names_the_known_ones():
    # The config refuses it (so a recipe does, at load and in `gen recipe check`), before any Objective.
    with pytest.raises(ValueError, match="did you mean 'eps'"):
        ObjectiveConfig(prediction="epsilon")
    with pytest.raises(gen.GenError, match="did you mean 'uniform'"):
        ObjectiveConfig(schedule="unifrom")


def test_config_is_frozen_and_has_the_jit_defaults():
    config = ObjectiveConfig()
    assert (config.prediction, config.loss, config.t_eps, config.noise_scale, config.label_drop) == (
        "x",
        "v",
        0.05,
        1.0,
        0.1,
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.loss = "x"
