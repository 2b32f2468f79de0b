"""The ``flow`` process: the linear path of JiT (Li & He, 2025) and SiT, as a `gen.Process`.

Training draws ``t`` from the schedule and ``eps ~ noise_scale * N(0, I)``, forms the point
``z_t = t * x + (1 - t) * eps`` of the linear path (t = 0 noise, t = 1 data), asks the network for its
output at ``(z_t, t)`` and regresses, in the chosen loss space, the quantity the output implies on the
same quantity the truth implies. Both sides go through the same conversion (and so the same clamp of
``1 - t`` and ``t`` at ``t_eps``), as published JiT does: for x-prediction with the v-loss,
``v = (x - z) / max(1 - t, t_eps)`` and ``v̂ = (x̂ - z) / max(1 - t, t_eps)``. ``multiscale`` adds the
loss of avg-pooled images (Simple Diffusion).

Sampling integrates the guided velocity (`gen_flow.guidance`) from t = 0 to 1 with a registered ODE/SDE
solver over a registered time grid (`gen_flow.sampling`).

Its options are ``[objective]``'s own keys: prediction, loss, schedule, noise_scale, t_eps, multiscale.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

import gen
from gen_flow.guidance import FlowGuide
from gen_flow.sampling import sample_flow

__all__ = ["SPACES", "FlowConfig", "FlowProcess", "broadcast_time", "convert"]

#: The three quantities a prediction can produce, and so the three loss spaces.
SPACES: tuple[str, ...] = ("x", "eps", "v")


@attrs.frozen(kw_only=True)
class FlowConfig:
    """The ``flow`` process has no options of its own: ``[objective]``'s keys configure it."""


def broadcast_time(t: Tensor, like: Tensor) -> Tensor:
    """(B,) -> (B, 1, ..., 1) with as many dims as ``like``."""
    return t.reshape(-1, *([1] * (like.ndim - 1)))


class FlowProcess:
    """The linear flow (see the module docstring), set up for an ``[objective]`` section.

    Args:
        config: Its (empty) `FlowConfig`.
        objective: The ``[objective]`` section (a `gen.ObjectiveConfig`); None until `with_objective`.
    """

    def __init__(self, config: FlowConfig | None = None, objective: Any = None):
        self.config = config or FlowConfig()
        self.objective = objective
        if objective is not None:
            self.prediction: gen.Prediction = gen.build("prediction", objective.prediction)
            self.schedule: gen.Schedule = _build(objective.schedule, "schedule")
            self.loss_space: str = objective.loss
            self.noise_scale: float = objective.noise_scale
            self.t_eps: float = objective.t_eps
            self.multiscale: tuple[int, ...] = tuple(objective.multiscale)

    def with_objective(self, objective: Any) -> FlowProcess:
        """The flow configured by ``[objective]``'s prediction, loss, schedule, noise_scale, t_eps and
        multiscale (every value the section validates is one the flow takes)."""
        return FlowProcess(self.config, objective)

    def __repr__(self) -> str:
        if self.objective is None:
            return "FlowProcess()"
        return (
            f"FlowProcess(prediction={self.objective.prediction!r}, loss={self.loss_space!r}, "
            f"schedule={self.schedule!r}, noise_scale={self.noise_scale}, t_eps={self.t_eps}, "
            f"multiscale={self.multiscale})"
        )

    # -- checks --------------------------------------------------------------------------------------
    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise `gen.GenError` when ``multiscale`` cannot pool samples of ``shape``."""
        factors = self.multiscale
        if not factors:
            return
        if len(shape) != 3:
            raise gen.GenError(
                f"objective.multiscale = {list(factors)} needs image samples (C, H, W), got shape "
                f"{tuple(shape)}; set objective.multiscale = []"
            )
        _, h, w = shape
        bad = [f for f in factors if h % f or w % f]
        if bad:
            raise gen.GenError(
                f"objective.multiscale factors {bad} do not divide the image size {h}x{w}; "
                "use factors that divide it"
            )

    def check_sample(self, sample: Any) -> None:
        """Raise ``ValueError`` unless ``[sample]``'s solver integrates a velocity field (a callable
        ``(velocity_fn, z0, times) -> z1``); every grid, guidance and split is the flow's."""
        solver = _build(sample.sampler, "sampler")
        if not callable(solver):
            name = sample.sampler.name if isinstance(sample.sampler, gen.ComponentSpec) else repr(solver)
            raise ValueError(
                f"sampler {name!r} does not integrate the flow's velocity; choose a flow solver (heun, euler, "
                "dpmpp_3m, deis_pc, euler_maruyama...)"
            )

    def backbone_fields(self, spec: gen.DataSpec) -> dict[str, Any]:
        """Nothing: the backbone's output is shaped like its input."""
        return {}

    # -- training ------------------------------------------------------------------------------------
    def draw(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``t`` (n,) from the schedule."""
        return {"t": self.schedule.sample(n, generator=generator)}

    def loss(
        self,
        net: Any,
        x: Tensor,
        condition: gen.Condition,
        draws: dict[str, Tensor],
        eps: Tensor,
        *,
        view: dict[str, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Per-sample loss (B,) in the loss space at times ``draws["t"]`` (B,), noise eps (B, ...).

        ``view``: filled for the loss terms (`gen.Process.loss`): ``x_hat``, the prediction converted to
        x with the same ``t_eps`` clamp as the loss, ``z`` and ``t``."""
        t = draws["t"]  # (B,)
        tb = broadcast_time(t, x)  # (B, 1, ..., 1)
        z = tb * x + (1 - tb) * eps  # (B, ...) the point on the path
        out = net(z, t, condition.y).to(z.dtype)  # (B, ...) in the prediction's space
        if view is not None:
            view.update(x_hat=convert(self.prediction, "x", out, z, tb, t_eps=self.t_eps), z=z, t=t)
        pred = convert(self.prediction, self.loss_space, out, z, tb, t_eps=self.t_eps)  # loss space
        # The truth goes through the same conversion (and clamp) as the prediction, as in published JiT.
        true_out = self.prediction.target(x, eps)
        target = convert(self.prediction, self.loss_space, true_out, z, tb, t_eps=self.t_eps)
        per_sample = self.per_sample_loss(pred, target)  # (B,)
        return per_sample, {"loss": per_sample.detach(), "t": t.detach()}

    def per_sample_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        """Mean squared error over all but the batch dim, averaged with the pooled versions. -> (B,)."""
        mse = ((pred - target) ** 2).flatten(1).mean(1)  # (B,)
        if not self.multiscale:
            return mse
        terms = [mse]
        for f in self.multiscale:
            pooled = (F.avg_pool2d(pred, f) - F.avg_pool2d(target, f)) ** 2  # (B, C, H/f, W/f)
            terms.append(pooled.flatten(1).mean(1))
        return torch.stack(terms).mean(0)  # (B,)

    # -- sampling ------------------------------------------------------------------------------------
    def sample(
        self,
        net: Any,
        noise: Tensor,
        condition: gen.Condition,
        sample: Any,
        *,
        guide: gen.Guide | None = None,
        on_step: Any = None,
    ) -> Tensor:
        """Integrate the guided velocity from ``noise`` (B, ...) at t = 0 to t = 1 (`sample_flow`) with
        ``[sample]``'s solver, steps, grid, guidance (classifier-free, or autoguidance by ``guide``, a
        flow model) and split."""
        compiled = "inductor" if sample.compile else None
        return sample_flow(
            net, noise, condition, **self._field(sample, guide), compile=compiled, on_step=on_step
        )

    def invert(
        self,
        net: Any,
        x: Tensor,
        condition: gen.Condition,
        sample: Any,
        *,
        guide: gen.Guide | None = None,
        on_step: Any = None,
        fixed_point: int = 1,
    ) -> Tensor:
        """The noise (B, ...) from which `sample` with the same ``[sample]`` regenerates ``x`` (B, ...):
        the probability-flow ODE run back from t = 1 to 0, each step of the solver inverted by
        ``fixed_point`` iterations (`gen_flow.inversion.invert_flow`)."""
        from gen_flow.inversion import invert_flow

        return invert_flow(
            net, x, condition, **self._field(sample, guide), fixed_point=fixed_point, on_step=on_step
        )

    def _field(self, sample: Any, guide: gen.Guide | None) -> dict[str, Any]:
        """What sampling and its inversion share: the guided velocity field of ``[sample]`` (its
        prediction, clamp, guidance and interval) and the solver's grid, so that the two are inverses."""
        return dict(
            prediction=self.prediction,
            sampler=sample.sampler,
            steps=sample.steps,
            grid=sample.grid,
            cfg=sample.cfg,
            cfg_interval=sample.cfg_interval,
            t_eps=self.t_eps,
            guide=self._flow_guide(guide, sample),
            split_interval=sample.split_interval,
        )

    def _flow_guide(self, guide: gen.Guide | None, sample: Any) -> FlowGuide | None:
        """Autoguidance's guiding model as the flow's velocity needs it (None under CFG)."""
        if sample.guidance != "auto":
            return None
        if not isinstance(guide.process, FlowProcess):
            raise gen.GenError(
                f"the guiding model samples with {guide.process!r}, not the flow; autoguidance guides "
                "the flow with a flow model"
            )
        return FlowGuide(guide.net, prediction=guide.process.prediction, t_eps=guide.process.t_eps)


def convert(
    prediction: gen.Prediction, space: str, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float
) -> Tensor:
    """``prediction.to_<space>(out, z, t, t_eps=t_eps)`` for ``space`` in x, eps, v."""
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}; expected one of {', '.join(SPACES)}")
    return getattr(prediction, f"to_{space}")(out, z, t, t_eps=t_eps)


def _build(value: Any, kind: str) -> Any:
    """A component given as a name or a validated `gen.ComponentSpec`."""
    if isinstance(value, gen.ComponentSpec):
        return value.build()
    return gen.build(kind, value)
