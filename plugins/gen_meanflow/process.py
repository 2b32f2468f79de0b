"""The ``meanflow`` process: MeanFlow, improved MeanFlow and pixel MeanFlow as one `gen.Process`.

A MeanFlow network gives the *average* velocity of the flow over an interval, so one evaluation jumps
from any time to any later one. In gen's time (0 = noise, 1 = data; ``z_t = t x + (1 - t) eps``) the
average velocity from ``t`` to ``t_end >= t`` is

    U(z_t, t, t_end) = (z_{t_end} - z_t) / (t_end - t) = 1 / (t_end - t) ∫_t^{t_end} v(z_s, s) ds,

and differentiating ``(t_end - t) U = ∫ v`` in ``t`` gives the MeanFlow identity (Geng et al., 2025,
eq. 6, in gen's time)

    U(z_t, t, t_end) = v(z_t, t) + (t_end - t) dU/dt,    dU/dt = v ∂_z U + ∂_t U,

whose total derivative is one Jacobian-vector product of the network with tangent (v, 1) in (z, t)
(t_end held: the network's second time input ``h = t_end - t`` moves by -1). The network sees
``(z, t, y, h)`` — plus the guidance scale and interval when iMF's guidance is a condition — and its
output is ``U`` itself (``objective.prediction = "v"``: MF, iMF) or the clean image x̂ with
``U = (x̂ - z) / max(1 - t, t_eps)`` (``"x"``: pixel MeanFlow, JiT's conversion).

Training (`MeanFlowProcess.loss`), per ``[objective.process]`` (`gen_meanflow.config`):

- ``loss_form = "u"`` (MF, Alg. 1): ``‖U - sg(v_g + (t_end - t) dU/dt)‖²`` with the JVP along the
  (guided) true velocity ``v_g``;
- ``loss_form = "v"`` (iMF, Alg. 1): ``‖U + (t_end - t) sg(dU/dt) - sg(v_g)‖²``, the JVP along the
  network's own instantaneous velocity ``U(z, t, t)``;
- each sample's squared error (summed over its elements, as published) weighted by
  ``1 / sg(err + adaptive_eps)^adaptive_p``; pMF adds LPIPS and ConvNeXt terms on x̂ = z + (1 - t) U
  (`gen_meanflow.perceptual`) where ``t > perceptual_min_t``.

Sampling (`MeanFlowProcess.sample`) is the papers' multi-step rule on a registered time grid:
``z <- z + (t_{i+1} - t_i) U(z, t_i, t_{i+1})``; one step is ``z_1 = z_0 + U(z_0, 0, 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor

import gen
from gen_meanflow.config import MeanFlowConfig

__all__ = ["MeanFlowProcess", "draw_guidance_scale", "guidance_inputs"]

#: An average velocity ``U(z, t, t_end)``: z (B, ...), t and t_end (B,) -> (B, ...).
AverageVelocityFn = Callable[[Tensor, Tensor, Tensor], Tensor]


def broadcast_time(t: Tensor, like: Tensor) -> Tensor:
    """(B,) -> (B, 1, ..., 1) with as many dims as ``like``."""
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def draw_guidance_scale(u: Tensor, cfg_max: float, beta: float) -> Tensor:
    """iMF's guidance scales from uniforms ``u`` (n,): density ∝ s^-beta on [1, 1 + cfg_max], by the
    inverse CDF (``imf.py``, ``sample_cfg_scale``)."""
    top = math.log1p(cfg_max)
    if beta == 1.0:
        return torch.exp(u * top)
    return torch.exp(torch.log1p(u * math.expm1((1.0 - beta) * top)) / (1.0 - beta))


def guidance_inputs(scale: Tensor, low: Tensor, high: Tensor) -> dict[str, Tensor]:
    """iMF's guidance conditions as the backbone takes them (each (B,)): ``cfg = 1 - 1 / scale`` (the
    embedder's input in ``pmfDiT._build_sequence``), and the interval ``cfg_low``, ``cfg_high`` (gen's
    time: a paper's ``[t_min, t_max]`` is ``[1 - t_max, 1 - t_min]`` here)."""
    return {"cfg": 1.0 - 1.0 / scale, "cfg_low": low, "cfg_high": high}


class MeanFlowProcess:
    """The MeanFlow family (see the module docstring), set up for an ``[objective]`` section.

    Args:
        config: ``[objective.process]`` (`MeanFlowConfig`).
        objective: The ``[objective]`` section (a `gen.ObjectiveConfig`); None until `with_objective`.
    """

    def __init__(self, config: MeanFlowConfig | None = None, objective: Any = None):
        self.config = c = config or MeanFlowConfig()
        self.loss_form: str = c.resolved("loss_form")
        self.instant_fraction: float = c.resolved("instant_fraction")
        self.guidance: str = c.resolved("guidance")
        self.objective = objective
        self.noise_scale: float = 1.0
        self._perceptual: Any = None
        if objective is not None:
            self.prediction: gen.Prediction = gen.build("prediction", objective.prediction)
            schedule = objective.schedule
            self.schedule = (
                schedule.build()
                if isinstance(schedule, gen.ComponentSpec)
                else gen.build("schedule", schedule)
            )
            self.noise_scale = objective.noise_scale
            self.t_eps: float = objective.t_eps

    def with_objective(self, objective: Any) -> MeanFlowProcess:
        """This process for ``[objective]``: prediction x (pMF) or v (the network's output is U: MF, iMF),
        loss v, no multiscale; the schedule draws both times, noise_scale and t_eps as the flow's."""
        if objective.prediction not in ("x", "v"):
            raise ValueError(
                f"objective.prediction = {objective.prediction!r}: a MeanFlow network predicts the average "
                "velocity (prediction = 'v': MF, iMF) or the clean image (prediction = 'x': pMF)"
            )
        if objective.loss != "v":
            raise ValueError(
                f"objective.loss = {objective.loss!r}: the MeanFlow losses are on velocities; set objective.loss = 'v'"
            )
        if objective.multiscale:
            raise ValueError("objective.multiscale: the meanflow process has no pooled losses; set it to []")
        return MeanFlowProcess(self.config, objective)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"MeanFlowProcess(variant={c.variant!r}, loss_form={self.loss_form!r}, "
            f"instant_fraction={self.instant_fraction}, guidance={self.guidance!r}, "
            f"noise_scale={self.noise_scale})"
        )

    @property
    def conditioned(self) -> bool:
        """Whether guidance scale and interval are inputs of the network (iMF's guidance)."""
        return self.guidance == "conditioned"

    @property
    def perceptual_weights(self) -> dict[str, float]:
        """The pMF perceptual terms that are on, by name."""
        c = self.config
        return {k: w for k, w in (("lpips", c.lpips_weight), ("convnext", c.convnext_weight)) if w > 0}

    # -- checks --------------------------------------------------------------------------------------
    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise `gen.GenError` when the perceptual terms are on and the samples are not RGB images, or
        their weights files are missing (checked here, before training, not where sampling reads the
        recipe: sampling needs no perceptual network)."""
        if not self.perceptual_weights:
            return
        if len(shape) != 3 or shape[0] != 3:
            raise gen.GenError(
                f"objective.process: the perceptual terms ({', '.join(self.perceptual_weights)}) need RGB "
                f"images (3, H, W), got samples of shape {tuple(shape)}; set their weights to 0"
            )
        if self._perceptual is not None:
            return  # loaded: the files were there (the engine checks every batch; no I/O per step)
        c = self.config
        files = {"lpips_vgg": c.lpips_vgg, "lpips_heads": c.lpips_heads} if c.lpips_weight > 0 else {}
        files |= {"convnext_weights": c.convnext_weights} if c.convnext_weight > 0 else {}
        for key, path in files.items():
            if not Path(path).is_file():
                raise gen.GenError(
                    f"[objective.process] {key} = {path!r}: no such file; download the weights "
                    "(docs/one_step.md, 'Perceptual terms') or set the term's weight to 0"
                )

    def check_sample(self, sample: Any) -> None:
        """Raise ``ValueError`` naming the ``[sample]`` key this process cannot honour: a solver other
        than ``meanflow``, autoguidance, split_interval, or a guidance scale the model was not trained for."""
        name = sample.sampler.name if isinstance(sample.sampler, gen.ComponentSpec) else sample.sampler
        if gen.get_registry("sampler").get(name).process != "meanflow":  # what it says at registration
            raise ValueError(
                f"sampler {name!r}: a MeanFlow model samples with a sampler of the meanflow process "
                "(meanflow: its multi-step rule)"
            )
        if sample.guidance == "auto":
            raise ValueError(
                "guidance = 'auto': autoguidance guides a flow model; a MeanFlow model takes guidance = 'cfg'"
            )
        if sample.split_interval:
            raise ValueError(
                "split_interval: a MeanFlow step decides its guidance once; set split_interval = false"
            )
        if self.guidance == "fixed" and sample.cfg != 1.0:
            raise ValueError(
                f"cfg = {sample.cfg}: this MeanFlow model has its guidance trained in (objective.process.guidance "
                "= 'fixed'); set cfg = 1"
            )
        # Scales above the trained [1, 1 + cfg_max] extrapolate the condition (pMF-B/16 samples at 8.5 after
        # training up to 8); below 1 the input 1 - 1/cfg turns negative, which no training draw reaches.
        if self.conditioned and sample.cfg < 1.0:
            raise ValueError(
                f"cfg = {sample.cfg}: this MeanFlow model takes guidance scales >= 1 (trained in "
                f"[1, {1.0 + self.config.cfg_max:g}], objective.process.cfg_max); 1 = no guidance"
            )

    def check_training(self, train: Any, backbone: Any) -> None:
        """Raise ``ValueError`` for ``train.compile`` or a compiled backbone: the loss takes a forward-mode
        JVP through the network, which a torch.compile'd module cannot give ("You must implement the jvp
        function for custom autograd.Function"; torch 2.13). ``[sample] compile`` works: sampling is a
        plain forward."""
        if train.compile:
            raise ValueError(
                "compile = true: the MeanFlow loss differentiates the backbone forward-mode (a JVP), which "
                "torch.compile cannot; set train.compile = false ([sample] compile still applies)"
            )
        if getattr(backbone, "compile", False):
            raise ValueError(
                "backbone.compile = true: the MeanFlow loss differentiates the backbone forward-mode (a JVP), "
                "which compiled blocks cannot; set backbone.compile = false ([sample] compile still applies)"
            )

    def backbone_fields(self, spec: gen.DataSpec) -> dict[str, Any]:
        """``scalar_inputs``: the interval ``h = t_end - t``, and iMF's guidance conditions when the model
        has classes to guide."""
        names = ["h"]
        if self.conditioned and spec.num_classes > 0:
            names += list(guidance_inputs(*[torch.ones(1)] * 3))
        return {"scalar_inputs": tuple(names)}

    # -- training draws ------------------------------------------------------------------------------
    def draw(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``t`` <= ``t_end`` (n,) from two draws of the schedule; the first ``instant_fraction * n`` rows
        have ``t_end = t`` (MF's ``sample_tr``: the pair's noisier time; pMF: the first draw). With
        conditioned guidance also ``cfg`` (the scale), ``cfg_low`` ~ U(0, 1/2), ``cfg_high`` ~ U(1/2, 1)
        (0 and 1 on the r = t rows), as iMF draws them."""
        a = self.schedule.sample(n, generator=generator)  # (n,)
        b = self.schedule.sample(n, generator=generator)  # (n,)
        t, t_end = torch.minimum(a, b), torch.maximum(a, b)  # gen's time: the noisier is the smaller
        instant = torch.arange(n) < int(n * self.instant_fraction)  # (n,) the flow-matching rows
        if self.config.variant == "pmf":
            t = torch.where(instant, a, t)  # pMF sets r = t before ordering: those rows keep the first draw
        draws = {"t": t, "t_end": torch.where(instant, t, t_end)}
        if self.conditioned:
            scale = draw_guidance_scale(
                torch.rand(n, generator=generator), self.config.cfg_max, self.config.cfg_beta
            )
            low = torch.rand(n, generator=generator) * 0.5
            high = 0.5 + torch.rand(n, generator=generator) * 0.5
            draws |= {
                "cfg": scale,
                "cfg_low": torch.where(instant, 0.0, low),
                "cfg_high": torch.where(instant, 1.0, high),
            }
        if self.perceptual_weights:
            draws["crop_seed"] = torch.randint(0, 2**62, (n,), generator=generator)
        return draws

    def arrange_drops(self, drop: Tensor) -> Tensor:
        """As published (``cond_drop``): as many dropped labels as drawn, on the batch's first rows (which
        are also its t_end = t rows: the null label trains the instantaneous velocity)."""
        return torch.arange(drop.shape[0], device=drop.device) < drop.sum()

    # -- the network as an average velocity ----------------------------------------------------------
    def average_velocity(
        self, net: Any, y: Any, scalars: dict[str, Tensor] | None = None
    ) -> AverageVelocityFn:
        """``U(z, t, t_end)`` of the network for conditions ``y`` and the extra ``scalars`` (guidance):
        the output itself (prediction v) or ``(x̂ - z) / max(1 - t, t_eps)`` (prediction x)."""
        scalars = scalars or {}

        def u(z: Tensor, t: Tensor, t_end: Tensor) -> Tensor:
            out = net(z, t, y, h=t_end - t, **scalars).to(z.dtype)  # (B, ...)
            return self.prediction.to_v(out, z, broadcast_time(t, z), t_eps=self.t_eps)

        return u

    def jvp(
        self, u: AverageVelocityFn, z: Tensor, t: Tensor, t_end: Tensor, tangent: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``U(z, t, t_end)`` (with its graph) and ``dU/dt = tangent ∂_z U + ∂_t U`` (detached), in one
        forward-mode pass (`torch.autograd.forward_ad` in `gen.forward_mode`: attention on its math path).

        One pass with gradients measured faster than a JVP without gradients plus a plain forward
        (2.04x against 2.2x a flow step, JiT of width 384, depth 6, batch 32, one CPU thread), and its U
        and dU/dt share one dropout mask.
        """
        with gen.forward_mode(), fwAD.dual_level():
            out = u(fwAD.make_dual(z, tangent), fwAD.make_dual(t, torch.ones_like(t)), t_end)
            value, derivative = fwAD.unpack_dual(out)
        return value, derivative.detach()

    def adaptive(self, err: Tensor) -> Tensor:
        """MF's adaptive weighting ``err / sg(err + eps)^p`` of per-sample errors (B,)."""
        p = self.config.adaptive_p
        return err if p == 0 else err / (err.detach() + self.config.adaptive_eps) ** p

    # -- training ------------------------------------------------------------------------------------
    @torch.no_grad()
    def guided_velocity(
        self, net: Any, z: Tensor, t: Tensor, v: Tensor, condition: gen.Condition, draws: dict[str, Tensor]
    ) -> tuple[Tensor, Tensor | None]:
        """The regression's velocity ``v_g`` and, for the v-form, the JVP's tangent (the model's own
        instantaneous velocity), both (B, ...), without gradients.

        guidance = fixed (MF's ``guidance_fn``): ``v_g = ω v + (1 - ω - κ) U(z,t,t | ∅) + κ U(z,t,t | y)``
        where ``cfg_interval`` holds t (κ = 0: ``U_∅ + ω (v - U_∅)``). guidance = conditioned (iMF's):
        ``v_g = v + (1 - 1/ω') (U(z,t,t | y, ω') - U(z,t,t | ∅, 1))`` with ω' = ω inside the drawn interval,
        1 outside. Rows with the null label keep ``v``.
        """
        c, y, guide = self.config, condition.y, condition.guidable
        if self.conditioned and guide:
            scale, low, high = draws["cfg"], draws["cfg_low"], draws["cfg_high"]
            inside = (t >= low) & (t <= high)  # (B,)
            ones, zeros = torch.ones_like(t), torch.zeros_like(t)
            null = condition.with_null()[len(t) :]
            # One 3B pass at t_end = t over the whole interval: (y, ω), (∅, 1), (y, 1).
            u3 = self.average_velocity(
                net,
                torch.cat([y, null, y]),
                guidance_inputs(torch.cat([scale, ones, ones]), zeros.repeat(3), ones.repeat(3)),
            )
            z3, t3 = z.repeat(3, *[1] * (z.ndim - 1)), t.repeat(3)
            v_scaled, v_null, v_plain = u3(z3, t3, t3).chunk(3)
            own = torch.where(broadcast_time(inside, z), v_scaled, v_plain)  # U(z, t, t | y, ω')
            w = torch.where(inside, scale, ones)  # ω'
            v_g = v + broadcast_time(1 - 1 / w, z) * (own - v_null)
        elif self.guidance == "fixed" and guide and (c.cfg_scale != 1.0 or c.cfg_mix != 0.0):
            low, high = c.cfg_interval
            inside = broadcast_time((t >= low) & (t <= high), z)
            omega = torch.where(inside, c.cfg_scale, 1.0)
            kappa = torch.where(inside, c.cfg_mix, 0.0)
            u2 = self.average_velocity(net, condition.with_null())
            z2, t2 = torch.cat([z, z]), torch.cat([t, t])
            v_cond, v_null = u2(z2, t2, t2).chunk(2)
            v_g = omega * v + (1 - omega - kappa) * v_null + kappa * v_cond
            own = v_cond
        else:
            v_g, own = v, None
        v_g = torch.where(broadcast_time(condition.is_null, z), v, v_g)
        if self.loss_form == "v" and own is None:
            scalars = (
                guidance_inputs(torch.ones_like(t), torch.zeros_like(t), torch.ones_like(t))
                if self.conditioned and guide
                else {}
            )
            own = self.average_velocity(net, y, scalars)(z, t, t)
        return v_g, own

    def loss(
        self, net: Any, x: Tensor, condition: gen.Condition, draws: dict[str, Tensor], eps: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Per-sample loss (B,) at times ``draws["t"]`` <= ``draws["t_end"]`` (B,), noise eps (B, ...).

        Stats: ``loss`` (the squared error per element, unweighted), ``weighted`` (the optimised,
        adaptively weighted loss), ``t``, and each perceptual term by name.
        """
        t, t_end = draws["t"], draws["t_end"]  # (B,) each
        tb = broadcast_time(t, x)
        z = tb * x + (1 - tb) * eps  # (B, ...) the point on the path
        # The true velocity, through the same conversion as the network's (JiT's clamp for x-prediction).
        v = self.prediction.to_v(self.prediction.target(x, eps), z, tb, t_eps=self.t_eps)  # (B, ...)
        v_g, own = self.guided_velocity(net, z, t, v, condition, draws)
        scalars = (
            guidance_inputs(draws["cfg"], draws["cfg_low"], draws["cfg_high"])
            if self.conditioned and condition.guidable
            else {}
        )
        u = self.average_velocity(net, condition.y, scalars)
        gap = broadcast_time(t_end - t, x)  # (B, 1, ...)
        if self.loss_form == "u":  # MF: U on the identity's target, the JVP along v_g
            value, dudt = self.jvp(u, z, t, t_end, v_g)
            err = value - (v_g + gap * dudt)
        else:  # iMF: the compound velocity on v_g, the JVP along the model's own velocity
            value, dudt = self.jvp(u, z, t, t_end, own)
            err = value + gap * dudt - v_g
        sq = err.pow(2).flatten(1).sum(1)  # (B,) summed over elements, as published
        per_sample = self.adaptive(sq)
        # ``loss`` is the regression's squared error per element (what the curves show); the adaptive
        # weight makes the optimised value ≈ 1 whatever the error (``weighted``).
        stats = {"t": t.detach(), "loss": sq.detach() / err[0].numel()}
        if self.perceptual_weights:
            x_hat = z + (1 - tb) * value  # (B, ...) the image the jump to t = 1 lands on
            on = t > self.config.perceptual_min_t
            for name, term in self.perceptual(x_hat, x, draws["crop_seed"]).items():
                term = torch.where(on, term, torch.zeros_like(term))  # (B,)
                per_sample = per_sample + self.perceptual_weights[name] * self.adaptive(term)
                stats[name] = term.detach()
        stats["weighted"] = per_sample.detach()
        return per_sample, stats

    def perceptual(self, x_hat: Tensor, x: Tensor, seeds: Tensor) -> dict[str, Tensor]:
        """pMF's perceptual terms (B,) each, on paired random crops keyed by ``seeds`` (B,)."""
        if self._perceptual is None:
            from gen_meanflow.perceptual import PerceptualLoss, load_convnext, load_lpips

            c, on = self.config, self.perceptual_weights
            self._perceptual = PerceptualLoss(
                load_lpips(c.lpips_vgg, c.lpips_heads) if "lpips" in on else None,
                # pMF's released ConvNeXt: pooled features (its head commented out), images as given
                load_convnext(c.convnext_weights, imagenet_norm=False) if "convnext" in on else None,
                lpips_weight=c.lpips_weight,
                convnext_weight=c.convnext_weight,
                convnext_output="features",
            )
        self._perceptual.to(x.device)
        return self._perceptual(x_hat, x, seeds.cpu())

    # -- sampling ------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        net: Any,
        noise: Tensor,
        condition: gen.Condition,
        sample: Any,
        *,
        guide: Any = None,
        on_step: Callable[[int, int], None] | None = None,
    ) -> Tensor:
        """The multi-step rule from ``noise`` (B, ...) at t = 0 to t = 1 on ``[sample]``'s grid and steps:
        one evaluation a step. Guidance: conditioned models take ``cfg`` and ``cfg_interval`` as inputs;
        ``fixed`` ones have it trained in; models trained without guidance extrapolate U between the
        label and the null label (``cfg``, on ``cfg_interval``: two evaluations a step)."""
        self.check_sample(sample)
        spec = sample.sampler
        solver = spec.build() if isinstance(spec, gen.ComponentSpec) else gen.build("sampler", spec)
        times = gen.grid_times(sample.grid, sample.steps).to(noise.dtype)  # (steps + 1,) on the CPU
        u = self.sampling_velocity(net, condition, sample.cfg, tuple(sample.cfg_interval))
        if sample.compile:
            u = torch.compile(u, fullgraph=True, dynamic=False)
        if on_step is not None:
            u = _counted(u, len(times) - 1, on_step)
        return solver(u, noise, times)

    def sampling_velocity(
        self, net: Any, condition: gen.Condition, cfg: float, interval: tuple[float, float]
    ) -> AverageVelocityFn:
        """``U(z, t, t_end)`` as sampling evaluates it, with ``[sample]``'s guidance applied."""
        y = condition.y
        if self.conditioned and condition.guidable:

            def conditioned(z: Tensor, t: Tensor, t_end: Tensor) -> Tensor:
                full = torch.ones_like(t)
                scalars = guidance_inputs(full * cfg, full * interval[0], full * interval[1])
                return self.average_velocity(net, y, scalars)(z, t, t_end)

            return conditioned
        if cfg == 1.0 or not condition.guidable:
            return self.average_velocity(net, y)
        both = self.average_velocity(net, condition.with_null())
        low, high = interval

        def extrapolated(z: Tensor, t: Tensor, t_end: Tensor) -> Tensor:
            u_cond, u_null = both(torch.cat([z, z]), torch.cat([t, t]), torch.cat([t_end, t_end])).chunk(2)
            scale = torch.where((t >= low) & (t <= high), cfg, 1.0)  # (B,) decided at the step's start
            return u_null + broadcast_time(scale, z) * (u_cond - u_null)

        return extrapolated


def _counted(u: AverageVelocityFn, total: int, on_step: Callable[[int, int], None]) -> AverageVelocityFn:
    """``u`` that reports ``on_step(k, total)`` after its k-th evaluation (one evaluation a step)."""
    done = [0]

    def counted(z: Tensor, t: Tensor, t_end: Tensor) -> Tensor:
        out = u(z, t, t_end)
        done[0] += 1
        on_step(min(done[0], total), total)
        return out

    return counted
