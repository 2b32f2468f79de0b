"""Fully sharded training (``train.parallel = "fsdp"``) and the full-state gathering it needs.

With FSDP every rank holds only 1/N of each parameter, gradient, optimizer moment and EMA, so a model
that does not fit on one device trains on several. We use torch's ``fully_shard`` (FSDP2): parameters
become ``DTensor`` shards, which AdamW, gradient clipping and the EMA's foreach kernels handle as they
are. Each block in a ``nn.ModuleList`` (the transformer blocks of every backbone) is one sharding unit,
so only one block's full parameters are gathered at a time, and the model itself is the last unit.

Checkpoints stay *full*: safetensors of whole tensors and an optimizer state keyed by parameter name.
Saving gathers shard by shard (a collective: every rank calls it) and only rank 0 keeps the result, on
the CPU; loading gives each rank its shard back. So a run trained with FSDP on N ranks resumes with
DDP or on one process, and ``gen sample`` reads its weights like those of any other run.

Every function here also takes an ordinary (unsharded) model, and then does no communication.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor

from gen.errors import GenError


def gradient_sync(model: nn.Module, wrapped: nn.Module, *, fsdp: bool, last: bool) -> AbstractContextManager:
    """Reduce gradients over ranks on the last micro-batch of a step only (``last``): FSDP is told so,
    DDP's ``no_sync`` skips the all-reduce of the others. ``wrapped``: the module that runs forward (the
    DDP wrapper whenever ``last`` is false without FSDP: one process passes ``last`` true always)."""
    if fsdp:
        model.set_requires_gradient_sync(last)
        return nullcontext()
    return nullcontext() if last else wrapped.no_sync()


def shard_model(model: nn.Module, device: torch.device, world_size: int) -> nn.Module:
    """Shard ``model`` in place over all ranks: each block of every ``nn.ModuleList``, then the root.

    Needs an initialised process group; every rank must hold the same initial weights.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (world_size,))
    for module in list(model.modules()):
        if isinstance(module, nn.ModuleList):
            for block in module:
                fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def is_sharded(model: nn.Module) -> bool:
    return any(isinstance(p, DTensor) for p in model.parameters())


def whole(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor on its device (a collective for a shard: every rank calls it); no host copy."""
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def gather(tensor: torch.Tensor, keep: bool = True) -> torch.Tensor | None:
    """The whole tensor on the CPU (a collective for a shard: every rank calls it); None if not ``keep``."""
    tensor = whole(tensor)
    return tensor.detach().cpu() if keep else None


def gather_state(tensors: dict[str, torch.Tensor], keep: bool = True) -> dict[str, torch.Tensor]:
    """`gather` over a state dict, one tensor at a time (peak device memory: one whole tensor)."""
    out = {}
    for name, tensor in tensors.items():
        full = gather(tensor, keep)
        if keep:
            out[name] = full
    return out


def shard_like(full: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``full`` laid out as ``reference``: this rank's shard of it when ``reference`` is a shard."""
    full = full.to(device=reference.device, dtype=reference.dtype)
    if isinstance(reference, DTensor):
        return distribute_tensor(full, reference.device_mesh, reference.placements)
    return full


@torch.no_grad()
def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy a full state dict into ``model`` (sharded or not); ``source`` names the file in errors."""
    own = model.state_dict()
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    if missing or unexpected:
        raise GenError(
            f"{source} does not match the recipe's backbone (missing: {missing[:5]}, unexpected: "
            f"{unexpected[:5]}); resume with the recipe the run was trained with"
        )
    for name, tensor in own.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise GenError(
                f"{source}: {name} has shape {tuple(state[name].shape)}, the model {tuple(tensor.shape)}; "
                "resume with the recipe the run was trained with"
            )
        tensor.copy_(shard_like(state[name], tensor))


def _param_names(model: nn.Module) -> dict[int, str]:
    return {id(p): name for name, p in model.named_parameters()}


def optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, keep: bool = True) -> dict[str, Any]:
    """The optimizer's state with whole tensors, keyed by parameter name (a collective under FSDP).

    Returns ``{"state": {name: {key: value}}, "param_groups": [{..., "params": [names]}]}``; empty on
    ranks that do not ``keep``.
    """
    names = _param_names(model)
    state: dict[str, dict[str, Any]] = {}
    groups = []
    for group in optimizer.param_groups:
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": []})
        for p in group["params"]:
            name = names[id(p)]
            groups[-1]["params"].append(name)
            entry = {}
            for key, value in optimizer.state.get(p, {}).items():
                entry[key] = gather(value, keep) if isinstance(value, torch.Tensor) else value
            if entry:
                state[name] = entry
    return {"state": state, "param_groups": groups} if keep else {}


def load_optimizer_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, saved: dict[str, Any], source: str
) -> None:
    """Load `optimizer_state`'s output into ``optimizer`` (each rank takes its shard)."""
    names = _param_names(model)
    own = [[names[id(p)] for p in g["params"]] for g in optimizer.param_groups]
    theirs = [list(g["params"]) for g in saved["param_groups"]]
    if own != theirs:
        raise GenError(
            f"{source}: the optimizer's parameter groups differ from the recipe's model; resume with the "
            "recipe the run was trained with"
        )
    params = {names[id(p)]: p for g in optimizer.param_groups for p in g["params"]}
    state, index = {}, 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            entry = saved["state"].get(names[id(p)])
            if entry is not None:
                state[index] = {
                    # AdamW's step counter stays a plain scalar tensor; moments take the parameter's layout.
                    k: shard_like(v, params[names[id(p)]]) if isinstance(v, torch.Tensor) and v.ndim else v
                    for k, v in entry.items()
                }
            index += 1
    groups = []
    start = 0
    for g in saved["param_groups"]:
        groups.append({**g, "params": list(range(start, start + len(g["params"])))})
        start += len(g["params"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


__all__ = [
    "gradient_sync",
    "gather",
    "gather_state",
    "is_sharded",
    "load_model_state",
    "load_optimizer_state",
    "optimizer_state",
    "shard_like",
    "shard_model",
    "whole",
]
