"""The toy backbone ``mlp``: shapes, parameter count, a hand-computed forward, gradients, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gen
from gen_toy.mlp import MLP, MLPConfig

REPO = Path(__file__).resolve().parents[3]


def test_registered_and_built_through_gen_build():
    net = gen.build("backbone", "mlp", input_dim=16)
    assert isinstance(net, MLP)
    z, t, y = torch.randn(5, 16), torch.rand(5), torch.zeros(5, dtype=torch.long)
    assert net(z, t, y).shape == (5, 16)


def test_paper_network_size():
    # 5 linear layers of width 256 on D = 512: (513 -> 256), 3 x (256 -> 256), (256 -> 512), with biases.
    net = gen.build("backbone", "mlp", input_dim=512)
    expected = (513 * 256 + 256) + 3 * (256 * 256 + 256) + (256 * 512 + 512)
    assert sum(p.numel() for p in net.parameters()) == expected == 460_544
    assert [layer.out_features for layer in net.layers] == [256, 256, 256, 256, 512]


def test_forward_matches_hand_computation():
    torch.manual_seed(0)
    net = MLP(MLPConfig(input_dim=2, hidden=3, depth=3)).double()
    z = torch.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=torch.float64)
    t = torch.tensor([0.1, 0.9], dtype=torch.float64)
    (w1, b1), (w2, b2), (w3, b3) = [(m.weight, m.bias) for m in net.layers]
    expected = []
    for i in range(2):
        h = torch.relu(w1 @ torch.cat([z[i], t[i : i + 1]]) + b1)  # t is the last input feature
        h = torch.relu(w2 @ h + b2)
        expected.append(w3 @ h + b3)
    torch.testing.assert_close(net(z, t, None), torch.stack(expected), rtol=1e-12, atol=1e-12)


def test_time_changes_the_output_and_a_scalar_time_broadcasts():
    torch.manual_seed(0)
    net = MLP(MLPConfig(input_dim=4))
    z = torch.randn(3, 4)
    out_a = net(z, torch.full((3,), 0.2), None)
    out_b = net(z, torch.full((3,), 0.8), None)
    assert not torch.allclose(out_a, out_b)
    torch.testing.assert_close(net(z, torch.tensor(0.2), None), out_a)


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    net = MLP(MLPConfig(input_dim=8, hidden=32))
    loss = net(torch.randn(16, 8), torch.rand(16), None).pow(2).mean()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_wrong_input_shape_is_a_clear_error():
    net = MLP(MLPConfig(input_dim=8))
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        net(torch.randn(2, 7), torch.rand(2), None)


def test_bad_config_is_a_recipe_error():
    with pytest.raises(gen.RecipeError, match="depth"):
        gen.build("backbone", "mlp", depth=1)
    with pytest.raises(gen.RecipeError, match="hidden"):
        gen.build("backbone", "mlp", hiden=8)


def test_base_recipe_loads_with_cell_overrides():
    recipe = gen.load_recipe(
        REPO / "recipes" / "toy" / "manifold.toml", ["objective.prediction='eps'", "data.dim=16"]
    )
    assert recipe.backbone.name == "mlp" and recipe.data.name == "manifold"
    assert recipe.objective.prediction == "eps" and recipe.objective.loss == "v"
    assert recipe.data.config.dim == 16
    # The recipe leaves input_dim to the data, so that data.dim alone chooses D.
    assert "input_dim" not in (REPO / "recipes" / "toy" / "manifold.toml").read_text()
