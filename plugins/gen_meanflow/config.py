"""The options of the ``meanflow`` process (``[objective.process]``), with the variants' published values.

``variant`` picks the family member whose published defaults fill every option left unset:

| option | ``mf`` (MeanFlow) | ``imf`` (improved MeanFlow) | ``pmf`` (pixel MeanFlow) |
| --- | --- | --- | --- |
| ``loss_form`` | ``u``: ``‖u - sg(u_tgt)‖²`` | ``v``: ``‖u + (t_end - t) sg(du/dt) - v‖²`` | ``v`` |
| ``instant_fraction`` (rows with t_end = t) | 0.75 | 0.5 | 0.5 |
| ``guidance`` | ``fixed`` (ω 1.0, κ 0.5) | ``conditioned`` (ω ≤ 1 + 7) | ``conditioned`` |
| times of the r = t rows | the pair's noisier | the pair's noisier | the first draw |

Sources: MeanFlow, Geng et al. 2025 (arXiv 2505.13447) and its code (Gsunshine/meanflow,
``meanflow.py``, ``configs/default.py``); improved MeanFlow, arXiv 2512.02012 (Lyy-iiis/imeanflow,
``imf.py``); pixel MeanFlow, arXiv 2601.22158 (Lyy-iiis/pMF, ``pmf.py``, ``configs/pMF_*_config.yml``).
Times here are gen's (0 = noise, 1 = data): a paper's τ is ``1 - t``, see docs/one_step.md.
"""

from __future__ import annotations

from typing import Literal

import attrs
from attrs import validators as v

import gen

VARIANTS: dict[str, dict[str, object]] = {
    "mf": {"loss_form": "u", "instant_fraction": 0.75, "guidance": "fixed"},
    "imf": {"loss_form": "v", "instant_fraction": 0.5, "guidance": "conditioned"},
    "pmf": {"loss_form": "v", "instant_fraction": 0.5, "guidance": "conditioned"},
}


def _interval(instance, attribute, value):  # noqa: ANN001, ARG001
    low, high = value
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"must satisfy 0 <= low <= high <= 1, got {list(value)}")


_opt_fraction = v.optional(v.and_(v.ge(0.0), v.le(1.0)))


@attrs.frozen(kw_only=True)
class MeanFlowConfig:
    """``[objective.process]`` of ``name = "meanflow"``: the MeanFlow family."""

    variant: Literal["mf", "imf", "pmf"] = gen.field(
        "mf",
        doc="Whose published defaults fill the options left unset: mf (MeanFlow), imf (improved MeanFlow), "
        "pmf (pixel MeanFlow; with objective.prediction = 'x').",
    )
    loss_form: Literal["u", "v"] | None = gen.field(
        None,
        doc="u: regress u on the MeanFlow identity's target u_tgt = v + (t_end - t) du/dt (MF); v: regress "
        "the compound u + (t_end - t) sg(du/dt) on v, the JVP along the model's own v (iMF). None: the variant's.",
    )
    instant_fraction: float | None = gen.field(
        None,
        doc="Fraction of each batch (its first rows) with t_end = t: plain flow matching. MF 0.75, iMF/pMF 0.5; "
        "None: the variant's.",
        validator=_opt_fraction,
    )
    guidance: Literal["none", "fixed", "conditioned"] | None = gen.field(
        None,
        doc="CFG in training: none; fixed (MF: cfg_scale and cfg_mix trained into the model, one step needs "
        "no guidance at sampling); conditioned (iMF: scale and interval drawn per sample and given to the "
        "network, chosen at sampling by [sample] cfg and cfg_interval). None: the variant's.",
    )
    cfg_scale: float = gen.field(
        1.0,
        doc="guidance = fixed: MF's omega (with cfg_mix, the effective scale is omega / (1 - kappa)).",
        validator=v.ge(0.0),
    )
    cfg_mix: float = gen.field(
        0.5,
        doc="guidance = fixed: MF's kappa, the share of the model's own conditional velocity.",
        validator=v.and_(v.ge(0.0), v.lt(1.0)),
    )
    cfg_interval: tuple[float, float] = gen.field(
        (0.0, 1.0),
        doc="guidance = fixed: the times (gen's) where the trained-in guidance applies.",
        validator=_interval,
    )
    cfg_max: float = gen.field(
        7.0,
        doc="guidance = conditioned: scales are drawn in [1, 1 + cfg_max] (iMF's s_max; pMF's cfg_max).",
        validator=v.gt(0.0),
    )
    cfg_beta: float = gen.field(
        1.0,
        doc="guidance = conditioned: the scale's density is proportional to s^-cfg_beta (iMF's power law).",
        validator=v.ge(0.0),
    )
    adaptive_p: float = gen.field(
        1.0,
        doc="Adaptive loss weight 1 / sg(loss + adaptive_eps)^p (MF's norm_p; 0 = plain squared error).",
        validator=v.ge(0.0),
    )
    adaptive_eps: float = gen.field(
        0.01, doc="MF's norm_eps (c) of the adaptive weight.", validator=v.gt(0.0)
    )
    lpips_weight: float = gen.field(
        0.0,
        doc="pMF: weight of the LPIPS term on the predicted image (0 = off; pMF 0.4).",
        validator=v.ge(0.0),
    )
    convnext_weight: float = gen.field(
        0.0, doc="pMF: weight of the ConvNeXt-V2 logit term (0 = off; pMF 0.1).", validator=v.ge(0.0)
    )
    perceptual_min_t: float = gen.field(
        0.2,
        doc="pMF: the perceptual terms apply where t > this (gen's time; pMF's perceptual_max_t = 1 - it: 0.8).",
        validator=v.and_(v.ge(0.0), v.le(1.0)),
    )
    lpips_vgg: str | None = gen.field(
        None, doc="LPIPS: the VGG16 weights file (torchvision's names; .pth or .safetensors)."
    )
    lpips_heads: str | None = gen.field(
        None, doc="LPIPS: the linear heads file (the lpips package's vgg.pth)."
    )
    convnext_weights: str | None = gen.field(
        None, doc="The ConvNeXt-V2 classifier weights (facebook/convnextv2-base-22k-224's model.safetensors)."
    )

    def __attrs_post_init__(self):
        if self.lpips_weight > 0 and (self.lpips_vgg is None or self.lpips_heads is None):
            raise ValueError("lpips_weight > 0 needs lpips_vgg and lpips_heads (local weights files)")
        if self.convnext_weight > 0 and self.convnext_weights is None:
            raise ValueError("convnext_weight > 0 needs convnext_weights (a local weights file)")

    def resolved(self, key: str) -> object:
        """The value of ``key`` (loss_form, instant_fraction, guidance): as set, else the variant's."""
        value = getattr(self, key)
        return VARIANTS[self.variant][key] if value is None else value
