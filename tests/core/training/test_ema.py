"""Exponential moving averages of the weights (gen.training.ema.EMA), checked against closed forms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gen.training.ema import EMA

DTYPE = torch.float64


class Net(nn.Module):
    """Trainable parameters, a frozen one between them, and a buffer."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=DTYPE))
        self.frozen = nn.Parameter(torch.tensor([10.0, 20.0], dtype=DTYPE), requires_grad=False)
        self.lin = nn.Linear(2, 3, dtype=DTYPE)
        self.register_buffer("running", torch.tensor([0.0, 1.0], dtype=DTYPE))
        with torch.no_grad():
            self.lin.weight.copy_(torch.arange(6, dtype=DTYPE).reshape(3, 2) / 7)
            self.lin.bias.copy_(torch.tensor([0.3, -0.1, 2.0], dtype=DTYPE))


TRAINABLE = ["a", "lin.weight", "lin.bias"]


def params_at(step: int) -> dict[str, torch.Tensor]:
    """Deterministic, step-dependent parameter values (step 0 = the initial values)."""
    net = Net()
    out = {}
    for i, (name, p) in enumerate(net.named_parameters()):
        if name in TRAINABLE:
            out[name] = (
                p.detach() + step * (i + 1) * 0.37 - (step**2) * 0.011 * torch.arange(p.numel()).view_as(p)
            )
    return out


def set_params(model: nn.Module, values: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in values:
                p.copy_(values[name])


def closed_form(decay: float, k: int) -> dict[str, torch.Tensor]:
    """ema_k = d^k p_0 + (1 - d) * sum_{j=1..k} d^(k-j) p_j, summed in float64."""
    out = {}
    for name in TRAINABLE:
        total = decay**k * params_at(0)[name]
        for j in range(1, k + 1):
            total = total + (1 - decay) * decay ** (k - j) * params_at(j)[name]
        out[name] = total
    return out


def shadows_by_name(ema: EMA, index: int) -> dict[str, torch.Tensor]:
    return dict(zip(ema.names, ema.shadows[index], strict=True))


def run_updates(decays, k: int) -> tuple[Net, EMA]:
    model = Net()
    ema = EMA(model, decays)
    for j in range(1, k + 1):
        set_params(model, params_at(j))
        ema.update(model)
    return model, ema


def test_tracks_only_trainable_parameters():
    model = Net()
    ema = EMA(model, (0.9, 0.5))
    assert ema.names == TRAINABLE
    assert ema.decays == (0.9, 0.5)
    assert len(ema.shadows) == 2
    for shadow in ema.shadows:
        assert len(shadow) == 3
        for s, (name, p) in zip(
            shadow, [(n, p) for n, p in model.named_parameters() if p.requires_grad], strict=True
        ):
            assert torch.equal(s, p.detach()), name
            assert s.dtype == DTYPE
            assert s.data_ptr() != p.data_ptr()  # a copy, not a view of the parameter
            assert not s.requires_grad


def test_decays_are_floats():
    ema = EMA(Net(), [1, 0])
    assert ema.decays == (1.0, 0.0)
    assert all(type(d) is float for d in ema.decays)


@pytest.mark.parametrize("k", [1, 2, 5, 13])
def test_matches_the_closed_form(k):
    decays = (0.9999, 0.99, 0.9, 0.5, 0.1)
    _, ema = run_updates(decays, k)
    for i, d in enumerate(decays):
        expected = closed_form(d, k)
        got = shadows_by_name(ema, i)
        for name in TRAINABLE:
            torch.testing.assert_close(got[name], expected[name], rtol=1e-12, atol=1e-12, msg=f"{d} {name}")


def test_constant_parameters():
    # With p fixed after the start: ema_k = d^k p_0 + (1 - d^k) p.
    model = Net()
    p0 = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    ema = EMA(model, (0.8,))
    target = params_at(3)
    set_params(model, target)
    for _ in range(7):
        ema.update(model)
    for name, s in shadows_by_name(ema, 0).items():
        expected = 0.8**7 * p0[name] + (1 - 0.8**7) * target[name]
        torch.testing.assert_close(s, expected, rtol=1e-13, atol=1e-13)


def test_decay_zero_copies_and_decay_one_keeps():
    model, ema = run_updates((0.0, 1.0), 4)
    for name in TRAINABLE:
        assert torch.equal(shadows_by_name(ema, 0)[name], params_at(4)[name]), name
        assert torch.equal(shadows_by_name(ema, 1)[name], params_at(0)[name]), name


def test_decays_are_independent():
    # Averaging several decays at once gives what each would give alone.
    _, together = run_updates((0.9, 0.5), 6)
    _, alone = run_updates((0.5,), 6)
    for a, b in zip(together.shadows[1], alone.shadows[0], strict=True):
        assert torch.equal(a, b)


def test_shadows_do_not_follow_the_model_between_updates():
    model = Net()
    ema = EMA(model, (0.5,))
    before = [s.clone() for s in ema.shadows[0]]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(100.0)
    for s, b in zip(ema.shadows[0], before, strict=True):
        assert torch.equal(s, b)


def test_frozen_parameters_and_buffers_come_from_the_model():
    model, ema = run_updates((0.9, 0.5), 3)
    with torch.no_grad():
        model.frozen.copy_(torch.tensor([-1.0, -3.0], dtype=DTYPE))
        model.running.copy_(torch.tensor([4.0, 5.0], dtype=DTYPE))
    for index, d in enumerate((0.9, 0.5)):
        state = ema.state_dict(index, model)
        assert list(state) == list(model.state_dict())  # every key, in the model's order
        assert torch.equal(state["frozen"], torch.tensor([-1.0, -3.0], dtype=DTYPE))
        assert torch.equal(state["running"], torch.tensor([4.0, 5.0], dtype=DTYPE))
        expected = closed_form(d, 3)
        for name in TRAINABLE:
            torch.testing.assert_close(state[name], expected[name], rtol=1e-12, atol=1e-12)
            assert not torch.equal(state[name], model.state_dict()[name])
        assert all(t.device.type == "cpu" for t in state.values())


def test_state_dict_on_a_rank_that_does_not_keep():
    model, ema = run_updates((0.9,), 1)
    assert ema.state_dict(0, model, keep=False) == {}


def test_load_round_trip():
    model, ema = run_updates((0.9, 0.5), 4)
    saved = [{k: v.clone() for k, v in ema.state_dict(i, model).items()} for i in range(2)]

    fresh_model = Net()
    fresh = EMA(fresh_model, (0.9, 0.5))
    initial = [s.clone() for s in fresh.shadows[1]]
    fresh.load(0, saved[0])
    for name in TRAINABLE:
        assert torch.equal(shadows_by_name(fresh, 0)[name], saved[0][name])
    # Only the EMA that was loaded changes.
    for s, b in zip(fresh.shadows[1], initial, strict=True):
        assert torch.equal(s, b)
    fresh.load(1, saved[1])
    for i in range(2):
        for a, b in zip(fresh.shadows[i], ema.shadows[i], strict=True):
            assert torch.equal(a, b)

    # Loading copies: changing the state dict afterwards leaves the EMA alone.
    saved[0]["a"].fill_(123.0)
    assert not torch.equal(shadows_by_name(fresh, 0)["a"], saved[0]["a"])

    # After loading, updates continue exactly as in the original.
    set_params(model, params_at(5))
    set_params(fresh_model, params_at(5))
    ema.update(model)
    fresh.update(fresh_model)
    for i in range(2):
        for a, b in zip(fresh.shadows[i], ema.shadows[i], strict=True):
            assert torch.equal(a, b)


def test_load_takes_the_shadow_dtype():
    model = Net()
    ema = EMA(model, (0.9,))
    state = {k: v.to(torch.float32) + 1 for k, v in model.state_dict().items()}
    ema.load(0, state)
    for name, s in shadows_by_name(ema, 0).items():
        assert s.dtype == DTYPE
        assert torch.equal(s, state[name].to(DTYPE))


def test_update_does_not_touch_the_model_or_its_grads():
    model = Net()
    ema = EMA(model, (0.5,))
    set_params(model, params_at(1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ema.update(model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.grad is None for p in model.parameters())
