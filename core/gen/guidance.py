"""Guidance of the sampling driver: classifier-free guidance and autoguidance, on an interval of t.

Classifier-free guidance, as the published JiT code does it: ``v = v_u + s * (v_c - v_u)`` with
``s = cfg`` when ``t < high and (low == 0 or t > low)`` and ``s = 1`` otherwise (``low, high =
cfg_interval``). The conditional and the unconditional pass run as one batched forward; where ``s == 1``
(outside the interval, ``cfg == 1``, or an unconditional model) the unconditional pass is skipped.

Autoguidance (Karras et al., 2024, "Guiding a Diffusion Model with a Bad Version of Itself"): ``v = v_g
+ s * (v - v_g)``, where a weaker model of the same data — an earlier checkpoint, a shorter EMA, a
smaller run — gives ``v_g``, both passes with the label. The same scale and interval rule apply, ``s = 1``
is no guidance, and where ``s == 1`` the guide is not run. The guiding model comes as a `Guide`.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor, nn

from gen.components import build_component
from gen.protocols import ClampsAtDataEnd, Prediction, VelocityFn


@attrs.frozen
class Guidance:
    """The guiding model of autoguidance, as ``[sample]`` names it (see `SampleConfig`)."""

    step: int | None = None
    ema: str = "default"
    run: str | None = None

    def describe(self) -> str:
        """``step 1000, ema 0.995``, ``runs/small step 2000, ema default``, ``this checkpoint, ema 0.99``."""
        where = (
            f"step {self.step}"
            if self.step is not None
            else "this checkpoint"
            if self.run is None
            else "latest"
        )
        return f"{self.run + ' ' if self.run else ''}{where}, ema {self.ema}"


@attrs.frozen
class Guide:
    """A guiding model for autoguidance: a backbone and how its output becomes a velocity.

    Attributes:
        net: The guiding backbone ``net(z, t, y)`` (in eval mode, on the device of sampling).
        prediction: What it predicts (its own recipe's; it may differ from the main model's).
        t_eps: Its clamp of ``1 - t`` in the conversion to a velocity.
    """

    net: nn.Module = attrs.field(eq=False)
    prediction: Prediction | str
    t_eps: float = 0.05


def guidance_scale(t: Tensor | float, cfg: float, cfg_interval: tuple[float, float]) -> float:
    """The guidance scale at time t: ``cfg`` when ``t < high and (low == 0 or t > low)``, else 1.

    A tensor ``t`` is compared in its own dtype, exactly as the reference code compares its float32 grid.
    """
    low, high = cfg_interval
    t = torch.as_tensor(t)
    inside = bool((t < high) & ((low == 0) | (t > low)))
    return float(cfg) if inside else 1.0


def guided_velocity(
    net: nn.Module,
    labels: Tensor,
    *,
    prediction: Prediction | str,
    cfg: float = 1.0,
    cfg_interval: tuple[float, float] = (0.0, 1.0),
    t_eps: float = 0.05,
    num_classes: int,
    guide: Guide | None = None,
    compile: str | None = None,
) -> VelocityFn:
    """The guided velocity field of ``net`` for the given labels.

    Args:
        net: The backbone ``net(z, t, y)``; run it in eval mode.
        labels: (B,) int64 class ids; ``num_classes`` is the null label (all 0 when unconditional).
        prediction: What the network predicts (a [`gen.Prediction`][] or a registered name).
        cfg: Guidance scale; 1 disables guidance.
        cfg_interval: (low, high): guidance applies where ``t < high and (low == 0 or t > low)``.
        t_eps: Clamp of ``1 - t`` (and ``t``) in the conversion to a velocity.
        num_classes: Classes of the model; 0 = unconditional (no classifier-free guidance possible).
        guide: Autoguidance's guiding model: ``v = v_g + s * (v - v_g)``, both passes with the labels,
            in place of classifier-free guidance (same scale and interval rule). None: classifier-free.
        compile: A ``torch.compile`` backend (``"inductor"``) for the conditional and the guided
            evaluation, each one graph (``fullgraph``: a graph break is an error); None: eager. The
            guidance decision stays in Python, on the CPU time of the grid: no host synchronisation.

    Returns:
        ``velocity_fn(z, t) -> v``: z (B, ...), t a float or a 0-dim tensor, v (B, ...). Its attribute
        ``t_eps`` is where the data-end clamp begins ([`gen.DataClampedVelocity`][]; 0 when the
        prediction has none).
    """
    if isinstance(prediction, str):
        prediction = build_component("prediction", prediction)
    if guide is not None:
        return _autoguided(net, labels, prediction, guide, cfg, cfg_interval, t_eps, num_classes, compile)
    null = torch.full_like(labels, num_classes)  # (B,)
    clamped = isinstance(prediction, ClampsAtDataEnd) and prediction.clamps_at_data_end

    # Tensor code only, no Python decision on a value: what torch.compile turns into one graph each.
    def conditional(z: Tensor, t: Tensor) -> Tensor:
        out = net(z, t.repeat(z.shape[0]), labels).to(z.dtype)  # (B, ...)
        return prediction.to_v(out, z, t, t_eps=t_eps)

    def guided(z: Tensor, t: Tensor, s: float) -> Tensor:
        z_in = torch.cat([z, z])  # (2B, ...) conditional and unconditional as one batch
        out = net(z_in, t.repeat(z_in.shape[0]), torch.cat([labels, null])).to(z.dtype)
        v_cond, v_uncond = prediction.to_v(out, z_in, t, t_eps=t_eps).chunk(2)  # (B, ...) each
        return v_uncond + s * (v_cond - v_uncond)

    if compile is not None:
        conditional = torch.compile(conditional, backend=compile, fullgraph=True, dynamic=False)
        guided = torch.compile(guided, backend=compile, fullgraph=True, dynamic=False)

    def velocity_fn(z: Tensor, t: Tensor | float) -> Tensor:
        t = torch.as_tensor(t, dtype=z.dtype)  # 0-dim; on the CPU (the grid's), so deciding costs no sync
        s = guidance_scale(t, cfg, cfg_interval)
        t = t.to(z.device)
        if s == 1.0 or num_classes == 0:
            return conditional(z, t)  # v_u + 1 * (v_c - v_u) is v_c: no unconditional pass
        return guided(z, t, s)

    velocity_fn.t_eps = t_eps if clamped else 0.0  # type: ignore[attr-defined]
    return velocity_fn


def _autoguided(
    net: nn.Module,
    labels: Tensor,
    prediction: Prediction,
    guide: Guide,
    cfg: float,
    cfg_interval: tuple[float, float],
    t_eps: float,
    num_classes: int,
    compile: str | None = None,
) -> VelocityFn:
    """Autoguidance (Karras et al., 2024): ``v = v_g + s * (v - v_g)``; both models see the labels, each
    converts its own output to a velocity. Where ``s == 1`` the guide is not run."""
    main = guided_velocity(
        net, labels, prediction=prediction, t_eps=t_eps, num_classes=num_classes, compile=compile
    )
    weak = guided_velocity(
        guide.net,
        labels,
        prediction=guide.prediction,
        t_eps=guide.t_eps,
        num_classes=num_classes,
        compile=compile,
    )

    def velocity_fn(z: Tensor, t: Tensor | float) -> Tensor:
        s = guidance_scale(torch.as_tensor(t, dtype=z.dtype), cfg, cfg_interval)
        v = main(z, t)  # (B, ...)
        if s == 1.0:
            return v
        v_guide = weak(z, t)  # (B, ...)
        return v_guide + s * (v - v_guide)

    velocity_fn.t_eps = main.t_eps  # type: ignore[attr-defined]
    return velocity_fn


__all__ = ["Guidance", "Guide", "guidance_scale", "guided_velocity"]
