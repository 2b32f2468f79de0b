"""The recipe's loss terms as the engine runs them (``[[loss_terms]]``, `gen.LossTerm`).

`LossTerms` builds the terms once, before training: each term's `gen.LossTerm.setup` sees the backbone
and returns its trainable parts (REPA's projector), which are gathered into one ``nn.ModuleDict`` by
term name — trained by the backbone's optimizer (`gen.training.optim.TrainedParameters`), saved as
``loss_terms.safetensors`` in each checkpoint and resumed exactly (`gen.training.checkpointing`), but
in no EMA and no weights file that sampling or export reads. Hooks on the backbone's submodules are
registered only for the layers a term names (`gen.hidden_states`).

At each training forward (`add_to`, called by `gen.Objective.loss_at`) the process fills a view of its
prediction, each term computes its value per sample, and ``weight × value`` is added to the process's
per-sample loss where ``t`` lies in the term's ``t_range``; the term's unweighted value over the whole
micro-batch is reported under its name (``loss_<name>`` in ``metrics.jsonl``).

Under DDP the backbone's gradients are reduced by its wrapper; the terms' trainable parts are not
wrapped (their forward is the term's, not the model's), so `reduce_gradients` averages their gradients
over the ranks once per step, after the last micro-batch. FSDP refuses terms with trainable parts.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor, nn

from gen.distributed import DistInfo
from gen.errors import GenError
from gen.hidden_states import HiddenStates
from gen.loss_term import LossTerm, TermSetup, TermView
from gen.plugins import get_registry
from gen.protocols import DataSpec
from gen.training.optim import TrainedParameters


class LossTerms:
    """The built terms of a run, their trainable parts and the hooks they need.

    Args:
        specs: The recipe's ``loss_terms`` (`gen.term_specs.LossTermSpec`).
        terms: The built term of each spec.
        module: Their trainable parts by term name, or None when none has any.
        hidden: The hooks recording the layers the terms read, or None when none reads one.
    """

    def __init__(
        self,
        specs: tuple[Any, ...] = (),
        terms: tuple[LossTerm, ...] = (),
        module: nn.ModuleDict | None = None,
        hidden: HiddenStates | None = None,
    ):
        self.specs, self.terms, self.module, self.hidden = specs, terms, module, hidden

    @classmethod
    def build(
        cls, recipe: Any, backbone: nn.Module, spec: DataSpec, device: torch.device, fsdp: bool
    ) -> LossTerms:
        """Build and set up ``recipe.loss_terms`` (`gen.term_specs.LossTermSpec`) for ``backbone`` (data of
        ``spec``, in the model's space) on ``device``; ``fsdp``: whether the backbone is sharded. Draws
        the trainable parts' initial weights from torch's global generator (call it where the backbone
        was built, after it). No terms: an empty object that changes nothing."""
        specs = tuple(recipe.loss_terms)
        if not specs:
            return cls()
        terms, parts = [], {}
        for i, term_spec in enumerate(specs):
            term = get_registry("loss_term").get(term_spec.name).factory(term_spec.config)
            where = TermSetup(
                backbone=backbone, shape=tuple(spec.shape), device=torch.device(device), key=f"loss_terms.{i}"
            )
            part = term.setup(where)
            if part is not None:
                if any(not p.requires_grad for p in part.parameters()):
                    raise GenError(
                        f"loss term {term_spec.name!r}: its trainable parts hold frozen parameters"
                    )
                parts[term_spec.name] = part
            terms.append(term)
        if parts and fsdp:
            raise GenError(
                f"loss term(s) {', '.join(parts)} have trainable parts, which train.parallel = 'fsdp' does not "
                "shard yet; train with DDP (train.parallel = 'ddp'), or leave these terms out"
            )
        layers = sorted({layer for term in terms for layer in term.layers})
        module = nn.ModuleDict(parts).to(device) if parts else None
        return cls(tuple(specs), tuple(terms), module, HiddenStates(backbone, layers) if layers else None)

    @property
    def active(self) -> LossTerms | None:
        """This object when the run has terms, else None (the objective's loss alone)."""
        return self if self.specs else None

    def trained(self, backbone: nn.Module) -> nn.Module | TrainedParameters:
        """What the optimizer trains: the backbone, with the terms' trainable parts when there are any."""
        return backbone if self.module is None else TrainedParameters(backbone, self.module)

    def add_to(
        self, process: Any, net: Any, x: Tensor, condition: Any, draws: dict[str, Tensor], eps: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The process's per-sample loss (B,) with each term's ``weight × value`` added where ``t`` lies in
        its range, and the stats with each term's value (B,) under its name."""
        view: dict[str, Tensor] = {}
        with self.hidden.recording() if self.hidden is not None else contextlib.nullcontext():
            per_sample, stats = process.loss(net, x, condition, draws, eps, view=view)
        lacking = [k for k in ("x_hat", "z", "t") if k not in view]
        if lacking:
            raise GenError(f"the process {process!r} filled no {', '.join(lacking)} of the loss terms' view")
        hidden = self.hidden.take() if self.hidden is not None else {}
        seen = TermView(
            x=x, z=view["z"], t=view["t"], x_hat=view["x_hat"], condition=condition, hidden=hidden
        )
        stats = dict(stats)
        for spec, term in zip(self.specs, self.terms, strict=True):
            if spec.name in stats:
                raise GenError(
                    f"loss term {spec.name!r}: the process reports a stat of that name already; leave one out"
                )
            value = term(seen).float()  # (B,)
            low, high = spec.t_range
            on = (seen.t >= low) & (seen.t <= high)  # (B,)
            # where, not a product: a term's value outside its range (even inf) must not reach the loss
            per_sample = per_sample + torch.where(on, spec.weight * value, torch.zeros_like(value))
            stats[spec.name] = value.detach()
        return per_sample, stats

    def clip_gradients(self, trained: Any, max_norm: float, dist: DistInfo) -> Tensor:
        """Clip the gradients of everything trained (``trained``: the backbone, or `TrainedParameters`)
        to ``max_norm`` (inf: none) and return their norm, the terms' parts averaged over the ranks first
        (`reduce_gradients`): the DDP wrapper reduced the backbone's."""
        self.reduce_gradients(dist)
        return torch.nn.utils.clip_grad_norm_(trained.parameters(), max_norm)

    def reduce_gradients(self, dist: DistInfo) -> None:
        """Average the trainable parts' gradients over the ranks (DDP reduces the backbone's): one
        all-reduce of them all, flattened. Nothing to do in one process or without trainable parts."""
        if self.module is None or not dist.enabled:
            return
        grads = [p.grad for p in self.module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= dist.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


__all__ = ["LossTerms"]
