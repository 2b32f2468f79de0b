"""The registered predictions x, eps, v: each agrees with the truth in every space."""

from __future__ import annotations

import pytest
import torch

import gen

T_EPS = 0.05


@pytest.mark.parametrize("name", ["x", "eps", "v"])
def test_prediction_maps_its_target_to_the_truth(name):
    prediction = gen.build("prediction", name)
    assert isinstance(prediction, gen.Prediction)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)  # vectors work as well as images
    eps = torch.randn(4, 6, generator=g, dtype=torch.float64)
    t = torch.tensor([0.1, 0.3, 0.6, 0.9], dtype=torch.float64).view(-1, 1)
    z = t * x + (1 - t) * eps
    out = prediction.target(x, eps)
    torch.testing.assert_close(out, {"x": x, "eps": eps, "v": x - eps}[name], rtol=0, atol=0)
    torch.testing.assert_close(prediction.to_x(out, z, t, t_eps=T_EPS), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(prediction.to_eps(out, z, t, t_eps=T_EPS), eps, rtol=0, atol=1e-12)
    torch.testing.assert_close(prediction.to_v(out, z, t, t_eps=T_EPS), x - eps, rtol=0, atol=1e-12)


def test_x_prediction_velocity_is_jits():
    x_hat, z = torch.tensor([[0.3]]), torch.tensor([[-0.2]])
    v = gen.build("prediction", "x").to_v(x_hat, z, torch.tensor([[0.98]]), t_eps=T_EPS)
    assert v.item() == pytest.approx((0.3 + 0.2) / T_EPS)


def test_registered_names():
    registry = gen.get_registry("prediction")
    for name in ("x", "eps", "v"):
        assert registry.get(name).plugin == "gen_flow"
