"""Loss terms in the engine: weight and t-range arithmetic, hidden states recorded only when asked and
only in the training forward, and zero terms leaving training bit for bit as it was."""

from __future__ import annotations

import json
import types

import pytest
import torch
from torch import nn

import gen
from gen.errors import GenError
from gen.hidden_states import HiddenStates
from gen.recipe import load_recipe
from gen.term_specs import LossTermSpec
from gen.training.engine import train
from gen.training.loss_terms import LossTerms
from gen.training.optim import TrainedParameters


class HalfProcess:
    """A process whose loss is x's mean per sample and whose prediction is x / 2."""

    def loss(self, net, x, condition, draws, eps, *, view=None):
        t = draws["t"]
        if view is not None:
            view.update(x_hat=net(x) / 2, z=x, t=t)
        per_sample = x.flatten(1).mean(1)
        return per_sample, {"loss": per_sample.detach(), "t": t}


class SumTerm:
    """A term whose value is the sum of x̂ per sample (and 1 / 0 where x̂ sums to 0)."""

    layers = ()

    def setup(self, setup):
        return None

    def __call__(self, view):
        return view.x_hat.flatten(1).sum(1)


def spec(name, weight, t_range):
    return LossTermSpec(kind="loss_term", name=name, config=None, weight=weight, t_range=t_range)


def test_each_term_adds_weight_times_value_inside_its_range_only():
    terms = LossTerms((spec("a", 2.0, (0.5, 1.0)), spec("b", 0.25, (0.0, 0.5))), (SumTerm(), SumTerm()))
    x = torch.tensor([[2.0, 2.0], [4.0, 0.0], [-2.0, 6.0]])  # x̂ sums: 2, 2, 2
    t = torch.tensor([0.2, 0.5, 0.9])
    per_sample, stats = terms.add_to(HalfProcess(), nn.Identity(), x, None, {"t": t}, None)
    base = x.mean(1)
    # t = 0.2: b only; t = 0.5: both (the ends are inside); t = 0.9: a only
    torch.testing.assert_close(per_sample, base + torch.tensor([0.25 * 2, 2 * 2 + 0.25 * 2, 2 * 2]))
    torch.testing.assert_close(stats["a"], torch.tensor([2.0, 2.0, 2.0]))  # unweighted, whole batch
    assert set(stats) == {"loss", "t", "a", "b"}


def test_a_value_outside_its_range_never_reaches_the_loss():
    class Inf(SumTerm):
        def __call__(self, view):
            return torch.full((len(view.t),), float("inf"))

    terms = LossTerms((spec("inf", 1.0, (0.9, 1.0)),), (Inf(),))
    per_sample, _ = terms.add_to(
        HalfProcess(), nn.Identity(), torch.ones(2, 2), None, {"t": torch.tensor([0.1, 0.2])}, None
    )
    torch.testing.assert_close(per_sample, torch.ones(2))


def test_a_term_named_like_a_process_stat_is_refused():
    terms = LossTerms((spec("loss", 1.0, (0.0, 1.0)),), (SumTerm(),))
    with pytest.raises(GenError, match="reports a stat of that name"):
        terms.add_to(HalfProcess(), nn.Identity(), torch.ones(2, 2), None, {"t": torch.ones(2)}, None)


def test_hidden_states_are_recorded_only_inside_recording():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    hidden = HiddenStates(net, ["0"])
    net(torch.ones(4, 2))
    with hidden.recording():
        out = net(torch.ones(4, 2))
    net(torch.zeros(4, 2))  # a forward outside (sampling) records nothing
    taken = hidden.take()
    assert taken["0"].shape == (4, 3) and taken["0"].grad_fn is not None and out.shape == (4, 1)
    with pytest.raises(GenError, match="did not run"):
        hidden.take()
    hidden.close()
    assert not net[0]._forward_hooks


def test_a_layer_the_backbone_lacks_is_one_line():
    with pytest.raises(GenError, match="no submodule 'blocks.9'.*it has: 0, 1, 2"):
        HiddenStates(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)), ["blocks.9"])


def test_no_term_no_hook_and_the_backbone_is_what_is_trained():
    net = nn.Linear(2, 2)
    recipe = types.SimpleNamespace(loss_terms=())
    terms = LossTerms.build(recipe, net, gen.DataSpec(shape=(2,)), torch.device("cpu"), False)
    assert terms.active is None and terms.module is None and terms.trained(net) is net
    assert not net._forward_hooks


def test_trained_parameters_name_the_terms_after_the_backbone():
    net, parts = nn.Linear(2, 2), nn.ModuleDict({"repa": nn.Linear(2, 1)})
    names = [n for n, _ in TrainedParameters(net, parts).named_parameters()]
    assert names == ["weight", "bias", "loss_terms.repa.weight", "loss_terms.repa.bias"]


def test_an_empty_loss_terms_trains_bit_for_bit_as_none(train_env, tmp_path):
    train(load_recipe(train_env, ["train.steps=3"]), tmp_path / "none")
    train(load_recipe(train_env, ["train.steps=3", "loss_terms=[]"]), tmp_path / "empty")
    read = lambda run: [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    a, b = read(tmp_path / "none"), read(tmp_path / "empty")
    assert [line["loss"] for line in a] == [line["loss"] for line in b]
    assert [line["grad_norm"] for line in a] == [line["grad_norm"] for line in b]
    from safetensors.torch import load_file

    from gen.runs import checkpoint as ckpt

    wa = load_file(str(ckpt.latest_checkpoint(tmp_path / "none") / "model.safetensors"))
    wb = load_file(str(ckpt.latest_checkpoint(tmp_path / "empty") / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not (ckpt.latest_checkpoint(tmp_path / "empty") / "loss_terms.safetensors").exists()
