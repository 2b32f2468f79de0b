"""The contract of a denoising process (a registered ``process``) and of the condition it receives.

A process owns a model's training loss and its sampling: the linear flow (`gen_flow`), DDPM
(`gen_ddpm`), a third party's. The core's engine and sampling driver talk to it only through
`Process`, and hand it the condition of a batch only through `Condition`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from gen.protocols import DataSpec


@runtime_checkable
class Condition(Protocol):
    """What a batch of samples is conditioned on, as a process hands it to the backbone
    (``net(z, t, condition.y)``), with the null condition of classifier-free guidance.

    Class labels (`gen.ClassLabels`) are the one kind today; a process that only uses these members
    works unchanged with any other (text, say).
    """

    @property
    def y(self) -> Any:
        """What the backbone takes as its third argument, for the B samples."""
        ...

    @property
    def guidable(self) -> bool:
        """Whether the model has a null condition to guide against (False: unconditional)."""
        ...

    @property
    def is_null(self) -> Tensor:
        """(B,) bool: which samples have the null condition (dropped for CFG training, or unconditional)."""
        ...

    def with_null(self) -> Any:
        """The backbone's input for 2B samples: these B conditions, then B null ones (one batched CFG
        forward)."""
        ...


@runtime_checkable
class Process(Protocol):
    """A denoising process: it owns its training loss and its sampling (a registered ``process``).

    ``flow`` (the linear path of JiT and SiT, `gen_flow`) and ``ddpm`` (DiT's discrete diffusion,
    `gen_ddpm`) are two; the core holds no process's math. The registered factory builds the process
    from its own table (``[objective.process]``); `with_objective` then sets it up for the whole
    ``[objective]`` section, whose shared keys (``prediction``, ``loss``, ``noise_scale``...) a process
    may read or refuse.

    Randomness stays keyed (exact resume, any batch split): the engine calls `draw` once for the whole
    global batch with a generator seeded by the step, gives each sample the draws of its position, and
    draws the noise ``eps`` of each position from its own key.

    Attributes:
        noise_scale: The std of the start noise of sampling and of the training noise ``eps``.
    """

    noise_scale: float

    def with_objective(self, objective: Any) -> Process:
        """This process set up for ``[objective]`` (a `gen.ObjectiveConfig`); ``ValueError`` naming the
        key it cannot honour."""
        ...

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise `gen.GenError` when it cannot train on samples of ``shape`` (C, H, W) or (D,)."""
        ...

    def check_sample(self, sample: Any) -> None:
        """Raise ``ValueError`` naming the ``[sample]`` key (a `gen.SampleConfig`) this process cannot
        honour: a solver that is not its own, steps it cannot take, guidance it does not do."""
        ...

    def backbone_fields(self, spec: DataSpec) -> dict[str, Any]:
        """Backbone config fields the process needs (``out_channels = 2 C`` for a learned variance)."""
        ...

    def draw(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        """The training draws of ``n`` positions other than the noise, each (n, ...) on the CPU: at least
        ``t`` (the flow's time; DDPM's integer step); a MeanFlow adds the end of its interval, ``t_end``.
        All from ``generator``.

        A process may also define ``check_training(train, backbone)``, raising ``ValueError`` naming the
        ``[train]`` key (a `gen.TrainConfig`) or backbone option it cannot train with (the recipe's
        validation calls it), and ``arrange_drops(drop) -> drop``: given the (n,) bool positions whose
        condition the engine drops for CFG (drawn after `draw`), the positions it drops instead (a
        MeanFlow drops the batch's first ones, as published); without it the engine's stand. And
        ``invert(net, x, condition, sample, *, guide, on_step, fixed_point) -> noise``: the start noise
        from which `sample` with the same ``[sample]`` draws ``x`` back (the flow runs its ODE backwards;
        ``gen invert`` says in one line that a process without it cannot invert)."""
        ...

    def loss(
        self,
        net: Any,
        x: Tensor,
        condition: Condition,
        draws: dict[str, Tensor],
        eps: Tensor,
        *,
        view: dict[str, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Per-sample losses (B,) with grad, and stats: ``loss`` (B,) detached, ``t`` (B,) in [0, 1] with
        0 = noise, 1 = data (the engine's loss-by-t bins), and any terms to report (``mse``, ``vb``).

        Args:
            net: The backbone ``net(z, t, y)``.
            x: (B, ...) clean samples; condition: their (already dropped) conditions.
            draws: This batch's rows of `draw`; eps: (B, ...) noise of std ``noise_scale``.
            view: Optional: a process that takes it can be trained with loss terms (``[[loss_terms]]``,
                `gen.LossTerm`). When the engine passes a dict, the process fills ``x_hat`` (B, ...),
                its prediction of ``x`` with grad, ``z`` (B, ...), the backbone's input, and ``t`` (B,),
                in [0, 1] as ``stats["t"]``. A recipe with terms on a process without it is refused at load.
        """
        ...

    def sample(
        self,
        net: Any,
        noise: Tensor,
        condition: Condition,
        sample: Any,
        *,
        guide: Any = None,
        on_step: Callable[[int, int], None] | None = None,
    ) -> Tensor:
        """Samples (B, ...) in the data's range from start noise (B, ...) of std ``noise_scale``.

        Args:
            net: The backbone, in eval mode.
            condition: What each sample is drawn for.
            sample: The validated ``[sample]`` section (`gen.SampleConfig`): solver, steps, grid,
                guidance and its interval, split, compile (precision is the caller's autocast).
            guide: Autoguidance's guiding model (a `gen.Guide`) when ``sample.guidance = "auto"``.
            on_step: ``on_step(k, total)`` for k = 1..total, in order, as the solver does its steps
                (`gen.StepCounter`); the samples are the same with it or without.
        """
        ...


__all__ = ["Condition", "Process"]
