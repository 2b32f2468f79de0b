"""The flow's guided velocity: classifier-free guidance and autoguidance, on an interval of t.

Classifier-free guidance, as the published JiT code does it: ``v = v_u + s * (v_c - v_u)`` with
``s = cfg`` when ``t < high and (low == 0 or t > low)`` and ``s = 1`` otherwise (``low, high =
cfg_interval``). The conditional and the unconditional pass run as one batched forward; where ``s == 1``
(outside the interval, ``cfg == 1``, or an unconditional model) the unconditional pass is skipped.

Autoguidance (Karras et al., 2024, "Guiding a Diffusion Model with a Bad Version of Itself"): ``v = v_g
+ s * (v - v_g)``, where a weaker model of the same data — an earlier checkpoint, a shorter EMA, a
smaller run — gives ``v_g``, both passes with the label. The same scale and interval rule apply, ``s = 1``
is no guidance, and where ``s == 1`` the guide is not run. The guiding model comes as a `gen.Guide`
whose process is a flow (its own prediction and ``t_eps``).

Both mixes are `gen.extrapolate`, and the interval rule is `gen.guidance_scale`: the core's, shared with
every process.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch
from torch import Tensor, nn

import gen


@attrs.frozen
class FlowGuide:
    """Autoguidance's guiding model as the flow uses it: a backbone and how its output becomes a velocity.

    Attributes:
        net: The guiding backbone ``net(z, t, y)`` (in eval mode, on the device of sampling).
        prediction: What it predicts (its own recipe's; it may differ from the main model's).
        t_eps: Its clamp of ``1 - t`` in the conversion to a velocity.
    """

    net: nn.Module = attrs.field(eq=False)
    prediction: gen.Prediction | str
    t_eps: float = 0.05


def guided_velocity(
    net: nn.Module,
    labels: Tensor | gen.Condition,
    *,
    prediction: gen.Prediction | str,
    cfg: float = 1.0,
    cfg_interval: tuple[float, float] = (0.0, 1.0),
    t_eps: float = 0.05,
    num_classes: int | None = None,
    guide: FlowGuide | None = None,
    compile: str | None = None,
) -> GuidedVelocity:
    """The guided velocity field of ``net`` for the given labels.

    Args:
        net: The backbone ``net(z, t, y)``; run it in eval mode.
        labels: What the samples are conditioned on: a `gen.Condition`, or (B,) int64 class ids with
            ``num_classes`` the null label (all 0 when unconditional).
        prediction: What the network predicts (a `gen.Prediction` or a registered name).
        cfg: Guidance scale; 1 disables guidance.
        cfg_interval: (low, high): guidance applies where ``t < high and (low == 0 or t > low)``.
        t_eps: Clamp of ``1 - t`` (and ``t``) in the conversion to a velocity.
        num_classes: With class ids: classes of the model; 0 = unconditional (no classifier-free
            guidance possible).
        guide: Autoguidance's guiding model: ``v = v_g + s * (v - v_g)``, both passes with the labels,
            in place of classifier-free guidance (same scale and interval rule). None: classifier-free.
        compile: A ``torch.compile`` backend (``"inductor"``) for the conditional and the guided
            evaluation, each one graph (``fullgraph``: a graph break is an error); None: eager. The
            guidance decision stays in Python, on the CPU time of the grid: no host synchronisation.

    Returns:
        A `GuidedVelocity` ``velocity_fn(z, t) -> v``: z (B, ...), t a float or a 0-dim tensor, v (B,
        ...). Its attribute ``t_eps`` is where the data-end clamp begins
        (`gen.DataClampedVelocity`; 0 when the prediction has none).
    """
    if isinstance(prediction, str):
        prediction = gen.build("prediction", prediction)
    condition = labels if isinstance(labels, gen.Condition) else gen.ClassLabels(labels, num_classes)
    if guide is not None:
        return _autoguided(net, condition, prediction, guide, cfg, cfg_interval, t_eps, compile)
    y, y_with_null = condition.y, condition.with_null() if condition.guidable else None  # (B,), (2B,)
    clamped = isinstance(prediction, gen.ClampsAtDataEnd) and prediction.clamps_at_data_end

    # Tensor code only, no Python decision on a value: what torch.compile turns into one graph each.
    def conditional(z: Tensor, t: Tensor) -> Tensor:
        out = net(z, t.repeat(z.shape[0]), y).to(z.dtype)  # (B, ...)
        return prediction.to_v(out, z, t, t_eps=t_eps)

    def guided(z: Tensor, t: Tensor, s: float) -> Tensor:
        z_in = torch.cat([z, z])  # (2B, ...) conditional and unconditional as one batch
        out = net(z_in, t.repeat(z_in.shape[0]), y_with_null).to(z.dtype)
        v_cond, v_uncond = prediction.to_v(out, z_in, t, t_eps=t_eps).chunk(2)  # (B, ...) each
        return gen.extrapolate(v_uncond, v_cond, s)

    if compile is not None:
        conditional = torch.compile(conditional, backend=compile, fullgraph=True, dynamic=False)
        guided = torch.compile(guided, backend=compile, fullgraph=True, dynamic=False)

    def evaluate(z: Tensor, t: Tensor, s: float) -> Tensor:
        t = t.to(z.device)  # decided on the CPU (the grid's time); moved only now: no sync
        if s == 1.0 or not condition.guidable:
            return conditional(z, t)  # v_u + 1 * (v_c - v_u) is v_c: no unconditional pass
        return guided(z, t, s)

    return GuidedVelocity(evaluate, cfg, cfg_interval, t_eps if clamped else 0.0)


def _autoguided(
    net: nn.Module,
    condition: gen.Condition,
    prediction: gen.Prediction,
    guide: FlowGuide,
    cfg: float,
    cfg_interval: tuple[float, float],
    t_eps: float,
    compile: str | None = None,
) -> GuidedVelocity:
    """Autoguidance (Karras et al., 2024): ``v = v_g + s * (v - v_g)``; both models see the labels, each
    converts its own output to a velocity. Where ``s == 1`` the guide is not run."""
    main = guided_velocity(net, condition, prediction=prediction, t_eps=t_eps, compile=compile)
    weak = guided_velocity(
        guide.net, condition, prediction=guide.prediction, t_eps=guide.t_eps, compile=compile
    )

    def evaluate(z: Tensor, t: Tensor, s: float) -> Tensor:
        v = main(z, t)  # (B, ...)
        if s == 1.0:
            return v
        v_guide = weak(z, t)  # (B, ...)
        return gen.extrapolate(v_guide, v, s)

    return GuidedVelocity(evaluate, cfg, cfg_interval, main.t_eps)


class GuidedVelocity:
    """A guided velocity field ``v(z, t)``: the guidance scale at t is `gen.guidance_scale` of (t, cfg,
    cfg_interval), or one scale at every t (`with_scale`).

    Attributes:
        cfg, cfg_interval: The guidance scale and where it applies.
        t_eps: Where the data-end clamp begins (a `gen.DataClampedVelocity`; 0 without clamp).
        scale: The scale at every t, or None for the interval rule.
    """

    def __init__(
        self,
        evaluate: Callable[[Tensor, Tensor, float], Tensor],
        cfg: float,
        cfg_interval: tuple[float, float],
        t_eps: float,
        scale: float | None = None,
    ):
        self.evaluate = evaluate  # (z, t as a 0-dim CPU tensor, scale) -> v
        self.cfg, self.cfg_interval, self.t_eps, self.scale = cfg, cfg_interval, t_eps, scale

    def __call__(self, z: Tensor, t: Tensor | float) -> Tensor:
        """v (B, ...) at z (B, ...) and t (a float or a 0-dim tensor on the CPU: the grid's)."""
        t = torch.as_tensor(t, dtype=z.dtype)  # 0-dim; on the CPU, so deciding costs no sync
        s = self.scale if self.scale is not None else gen.guidance_scale(t, self.cfg, self.cfg_interval)
        return self.evaluate(z, t, s)

    def with_scale(self, scale: float) -> GuidedVelocity:
        """The same field guided at ``scale`` at every t, the ends of the interval included: one piece of
        an integration cut where guidance switches (`interval_pieces`)."""
        return GuidedVelocity(self.evaluate, self.cfg, self.cfg_interval, self.t_eps, scale)


def interval_pieces(
    times: Tensor, cfg: float, cfg_interval: tuple[float, float]
) -> list[tuple[Tensor, float]]:
    """The grid cut where guidance switches on or off, each piece with its constant guidance scale.

    The guided field jumps at the ends of the interval. A step across a jump mixes two fields as if
    they were one smooth field: an error of the order of the step, whatever the solver's order. So each
    end inside (0, 1) becomes a grid point — the nearest interior point that can move onto it does, so
    the number of steps stays; where none can, the end is inserted — and a solver integrates each piece
    from its own start at its own scale: the exact solution of the discontinuous field, to the solver's
    order.

    Args:
        times: (N + 1,) increasing grid from 0 to 1.
        cfg, cfg_interval: The guidance scale and interval (see `gen.guidance_scale`).

    Returns:
        ``[(times_k, scale_k)]`` in order, each (n_k + 1,) in the dtype of ``times``; a piece starts where
        the one before ends. One piece where guidance does not switch inside (0, 1).
    """
    grid = times.clone()
    cuts = {0, len(grid) - 1}
    for edge in (e for e in cfg_interval if 0.0 < e < 1.0 and cfg != 1.0):
        at = torch.tensor(edge, dtype=grid.dtype)  # compared in the grid's dtype, as gen.guidance_scale does
        if bool((grid == at).any()):
            cuts.add(int((grid == at).nonzero()[0]))
            continue
        movable = [j for j in range(1, len(grid) - 1) if j not in cuts and grid[j - 1] < at < grid[j + 1]]
        if movable:
            j = min(movable, key=lambda j: abs(float(grid[j]) - edge))
            grid[j] = at
        else:  # every point near the end is already a cut: one more step
            j = int((grid < at).sum())
            grid = torch.cat([grid[:j], at[None], grid[j:]])  # one point more
            cuts = {c + (c >= j) for c in cuts}
        cuts.add(j)
    ends = sorted(cuts)
    pieces = []
    for a, b in zip(ends[:-1], ends[1:], strict=False):
        middle = (grid[a].double() + grid[b].double()) / 2  # strictly inside or outside the interval
        pieces.append((grid[a : b + 1], gen.guidance_scale(middle, cfg, cfg_interval)))
    return pieces


def solve_pieces(
    solver: gen.Solver,
    velocity_fn: gen.VelocityFn,
    z: Tensor,
    pieces: list[tuple[Tensor, float | None]],
    wrap: Callable[[gen.VelocityFn], gen.VelocityFn] | None = None,
) -> Tensor:
    """``z`` (B, ...) carried by ``solver`` across each piece of a grid in turn (`interval_pieces`), with
    ``velocity_fn`` guided at the piece's scale (`GuidedVelocity.with_scale`), or as it is where the scale
    is None. ``wrap`` is applied to each piece's field (the progress counter)."""
    for times, scale in pieces:  # (n_k + 1,) times at one guidance scale
        fn = velocity_fn if scale is None else velocity_fn.with_scale(scale)
        z = solver(fn if wrap is None else wrap(fn), z, times)
    return z


__all__ = [
    "FlowGuide",
    "GuidedVelocity",
    "guided_velocity",
    "interval_pieces",
    "solve_pieces",
]
