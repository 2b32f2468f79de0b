"""The vp_cosine path and loss against values computed by hand, and its keyed draws."""

from __future__ import annotations

import math

import gen
import pytest
import torch

from gen_vp.path import alpha_sigma, to_x_eps


def process(prediction: str = "eps", **options):
    """The process as a recipe builds it: its table, then set up for [objective]."""
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


class Recorder:
    """A net that returns a known tensor and remembers what it was given."""

    def __init__(self, out: torch.Tensor):
        self.out = out

    def __call__(self, z, t, y):
        self.z, self.t, self.y = z, t, y
        return self.out


def unconditional():
    return gen.ClassLabels.null(2, num_classes=0)


X = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=torch.float64)
EPS = torch.tensor([[0.5, -1.0], [2.0, 0.0]], dtype=torch.float64)
OUT = torch.tensor([[0.25, 0.0], [1.0, 1.0]], dtype=torch.float64)
T = torch.tensor([1 / 3, 1 / 2], dtype=torch.float64)
# alpha = sin(pi t / 2), sigma = cos(pi t / 2): t = 1/3 -> (1/2, sqrt(3)/2), t = 1/2 ->
# (sqrt(2)/2, sqrt(2)/2).
R3, R2 = math.sqrt(3) / 2, math.sqrt(2) / 2
Z = torch.tensor(
    [[0.5 + R3 * 0.5, 1.0 - R3], [R2 * (-1.0 + 2.0), R2 * 0.5]], dtype=torch.float64
)


def test_alpha_and_sigma_at_the_ends_and_in_between():
    assert alpha_sigma(0.0) == (0.0, 1.0)
    assert alpha_sigma(1.0)[0] == 1.0 and abs(alpha_sigma(1.0)[1]) < 1e-15
    a, s = alpha_sigma(T)
    torch.testing.assert_close(a, torch.tensor([0.5, R2], dtype=torch.float64))
    torch.testing.assert_close(s, torch.tensor([R3, R2], dtype=torch.float64))
    torch.testing.assert_close(a**2 + s**2, torch.ones(2, dtype=torch.float64))


def test_eps_loss_by_hand():
    net = Recorder(OUT)
    labels = gen.ClassLabels(torch.tensor([3, 10]), num_classes=10)
    per_sample, stats = process("eps").loss(net, X, labels, {"t": T}, EPS)
    torch.testing.assert_close(net.z, Z)  # the point on the path
    assert net.t is T and net.y is labels.y
    # mean over the 2 values of (out - eps)^2
    expected = torch.tensor(
        [(0.25**2 + 1.0**2) / 2, (1.0**2 + 1.0**2) / 2], dtype=torch.float64
    )
    torch.testing.assert_close(per_sample, expected)
    torch.testing.assert_close(stats["loss"], expected)
    torch.testing.assert_close(stats["t"], T)


def test_v_loss_by_hand():
    per_sample, _ = process("v").loss(Recorder(OUT), X, unconditional(), {"t": T}, EPS)
    # v = alpha eps - sigma x
    v0 = [0.5 * 0.5 - R3 * 1.0, 0.5 * -1.0 - R3 * 2.0]
    v1 = [R2 * 2.0 - R2 * -1.0, R2 * 0.0 - R2 * 0.5]
    expected = torch.tensor(
        [
            ((0.25 - v0[0]) ** 2 + (0.0 - v0[1]) ** 2) / 2,
            ((1.0 - v1[0]) ** 2 + (1.0 - v1[1]) ** 2) / 2,
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(per_sample, expected)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_a_perfect_output_recovers_x_and_eps(prediction):
    alpha, sigma = alpha_sigma(T[:, None])
    z = alpha * X + sigma * EPS
    out = EPS if prediction == "eps" else alpha * EPS - sigma * X
    x_hat, eps_hat = to_x_eps(prediction, out, z, alpha, sigma)
    torch.testing.assert_close(x_hat, X)
    torch.testing.assert_close(eps_hat, EPS)
    assert (
        process(prediction)
        .loss(Recorder(out), X, unconditional(), {"t": T}, EPS)[0]
        .abs()
        .max()
        < 1e-28
    )


def test_draws_are_keyed_uniform_times_in_the_clamps():
    vp = process(t_min=0.1, t_max=0.6)
    draws = vp.draw(4000, torch.Generator().manual_seed(5))
    again = vp.draw(4000, torch.Generator().manual_seed(5))
    assert set(draws) == {"t"} and torch.equal(draws["t"], again["t"])
    t = draws["t"]
    assert t.dtype == torch.float32 and t.device.type == "cpu" and t.shape == (4000,)
    assert 0.1 <= float(t.min()) < 0.11 and 0.59 < float(t.max()) < 0.6
    assert abs(float(t.mean()) - 0.35) < 0.01
    other = vp.draw(4000, torch.Generator().manual_seed(6))["t"]
    assert not torch.equal(t, other)


def test_the_process_is_a_gen_process():
    vp = process()
    assert isinstance(vp, gen.Process)
    assert vp.noise_scale == 1.0
    assert vp.backbone_fields(gen.DataSpec(shape=(3, 8, 8), num_classes=10)) == {}
    vp.check_shape((3, 8, 8))
    vp.check_shape((5,))
