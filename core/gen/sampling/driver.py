"""The sampling driver: a model's process, its ``[sample]`` section checked, then the process samples.

The driver holds no process's math: it builds the process of the ``[objective]`` the model was trained
with, checks that ``[sample]`` names a solver of that process (`check_sampler`), wraps the labels into
the condition object every process receives (`gen.ClassLabels`) and hands over. The flow integrates its
guided velocity over a time grid (`gen_flow`); DDPM runs its ancestral or DDIM chain (`gen_ddpm`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gen.components import ComponentSpec
from gen.condition import ClassLabels
from gen.errors import GenError
from gen.objective import ObjectiveConfig
from gen.plugins import get_registry
from gen.process import Process
from gen.sampling.config import SampleConfig
from gen.sampling.guidance import Guide
from gen.sampling.step_counter import StepCallback


def check_sampler(objective: ObjectiveConfig, config: SampleConfig) -> None:
    """Raise ``ValueError`` when ``[sample]`` cannot sample the process of ``[objective]``: a solver
    registered for another process (one line naming both), or what the process itself refuses
    (`gen.Process.check_sample`: its solvers' steps, guidance it does not do)."""
    process = objective.build_process()
    ours = objective.process.name if isinstance(objective.process, ComponentSpec) else str(objective.process)
    if isinstance(config.sampler, ComponentSpec):
        serves = get_registry("sampler").get(config.sampler.name).process
        if serves is not None and serves != ours:
            own = [c.name for c in get_registry("sampler") if c.process in (ours, None)]
            raise ValueError(
                f"sampler {config.sampler.name!r} samples the {serves} process, not the {ours} process of "
                f"this model; choose one of {', '.join(own)}"
            )
    process.check_sample(config)


@torch.no_grad()
def sample(
    net: nn.Module,
    noise: Tensor,
    labels: Tensor | None,
    config: SampleConfig,
    objective: ObjectiveConfig,
    *,
    num_classes: int,
    guide: Guide | None = None,
    on_step: StepCallback | None = None,
    process: Process | None = None,
) -> Tensor:
    """Samples of ``net`` with the ``[sample]`` section ``config``, by the process of ``objective``.

    Args:
        net: The backbone, in eval mode (the driver does not change its mode).
        noise: (B, ...) start noise of std ``noise_scale`` (`gen.sample_noise`).
        labels: (B,) int64 class ids, or None for the null label everywhere (unconditional).
        config: Solver, steps, grid and guidance (a validated `gen.SampleConfig`).
        objective: The ``[objective]`` the model was trained with.
        num_classes: Classes of the model; 0 = unconditional.
        guide: The guiding model that ``guidance = "auto"`` needs (`gen.ModelSampler` loads it from
            the ``guide_*`` keys).
        on_step: ``on_step(k, total)`` as the solver does its steps (the samples do not change).
        process: ``objective``'s process when the caller has built it already (`gen.ModelSampler`
            samples batch after batch with one); None builds it.

    Returns:
        (B, ...) the samples, in the data's range (images in [-1, 1], not clipped).
    """
    if config.guidance == "auto" and guide is None:
        raise GenError(
            "[sample] guidance = 'auto' needs its guiding model; sample through gen.ModelSampler (gen sample, "
            "gen eval), which loads it from guide_step, guide_ema and guide_run"
        )
    if labels is None:
        condition = ClassLabels.null(noise.shape[0], num_classes, device=noise.device)
    else:
        condition = ClassLabels(labels, num_classes)
    process = process if process is not None else objective.build_process()
    return process.sample(net, noise, condition, config, guide=guide, on_step=on_step)


@torch.no_grad()
def invert(
    net: nn.Module,
    x: Tensor,
    labels: Tensor | None,
    config: SampleConfig,
    objective: ObjectiveConfig,
    *,
    num_classes: int,
    guide: Guide | None = None,
    fixed_point: int = 1,
    on_step: StepCallback | None = None,
    process: Process | None = None,
) -> Tensor:
    """The start noise (B, ...) from which `sample` with ``config`` draws ``x`` (B, ...) back, by the
    process's optional ``invert`` (the flow's: its ODE run backwards, `gen_flow.inversion`).

    Args:
        x: (B, ...) samples in the model's space and the data's range.
        labels: (B,) int64 class ids, or None: the null label (the unconditional field).
        fixed_point: Fixed-point iterations per solver step (0: the explicit reverse step alone).
        Others: as `sample`.
    """
    if config.guidance == "auto" and guide is None:
        raise GenError("[sample] guidance = 'auto' needs its guiding model; invert through gen.ModelSampler")
    process = process if process is not None else objective.build_process()
    inverse = getattr(process, "invert", None)  # an optional member of gen.Process
    if inverse is None:
        raise GenError(
            f"the model's process {process!r} has no inversion; gen invert runs the flow's ODE backwards "
            "(a model trained with objective.process = 'flow')"
        )
    if labels is None:
        condition = ClassLabels.null(x.shape[0], num_classes, device=x.device)
    else:
        condition = ClassLabels(labels, num_classes)
    return inverse(net, x, condition, config, guide=guide, on_step=on_step, fixed_point=fixed_point)


__all__ = ["check_sampler", "invert", "sample"]
