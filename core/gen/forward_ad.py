"""Forward-mode AD through any backbone: the context a MeanFlow's Jacobian-vector product runs in.

``F.scaled_dot_product_attention`` has no forward-mode rule for its fused kernels (pytorch issue
128971: "Trying to use forward AD with _scaled_dot_product_flash_attention_for_cpu that does not
support it"), so ``torch.func.jvp`` and ``torch.autograd.forward_ad`` fail through every transformer.
Inside `forward_mode` attention is computed from plain operations (`math_attention`), which all have
one. The context is a ``TorchFunctionMode``: the backbones keep calling
``F.scaled_dot_product_attention`` as published, so their forward outside it is bit for bit what it
was, and a third party's backbone becomes differentiable forward-mode without a change.

(Measured and left: ``F.linear``'s forward-mode rule also multiplies the weight's zero tangent, so a
linear layer's JVP costs about three forwards instead of two; a rule without it paid off only in a
pass without gradients, which with the extra forward it needs was slower than one pass with them.)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

__all__ = ["forward_mode", "math_attention"]


def math_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``F.scaled_dot_product_attention`` from operations forward-mode AD can differentiate: scores and
    softmax in float32 (float64 for float64 inputs), the same arguments.

    Args:
        q: (..., H, N, Dh) queries; k, v: (..., H_kv, M, Dh) keys and values.
        attn_mask: Boolean (True = attend) or additive mask broadcastable to (..., H, N, M).
        dropout_p, is_causal, scale, enable_gqa: As ``F.scaled_dot_product_attention``.

    Returns:
        (..., H, N, Dh).
    """
    if enable_gqa and k.shape[-3] != q.shape[-3]:
        repeat = q.shape[-3] // k.shape[-3]
        k, v = k.repeat_interleave(repeat, dim=-3), v.repeat_interleave(repeat, dim=-3)
    wide = torch.promote_types(q.dtype, torch.float32)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q.to(wide) @ k.to(wide).transpose(-2, -1)) * scale  # (..., H, N, M)
    if is_causal:
        n, m = scores.shape[-2:]
        scores = scores.masked_fill(~torch.ones(n, m, dtype=torch.bool, device=q.device).tril(), -math.inf)
    if attn_mask is not None:
        scores = (
            scores.masked_fill(~attn_mask, -math.inf) if attn_mask.dtype == torch.bool else scores + attn_mask
        )
    weights = F.dropout(scores.softmax(-1), p=dropout_p).to(v.dtype)  # (..., H, N, M)
    return weights @ v  # (..., H, N, Dh)


class _ForwardMode(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            return math_attention(*args, **kwargs)
        return func(*args, **kwargs)


@contextlib.contextmanager
def forward_mode() -> Iterator[None]:
    """Within: ``F.scaled_dot_product_attention`` on its math path (`math_attention`), which forward-mode
    AD can differentiate (see the module docstring).

    Example:
        >>> with torch.no_grad(), gen.forward_mode():
        ...     _, dudt = torch.func.jvp(lambda z, t: net(z, t, y, h=h), (z, t), (v, torch.ones_like(t)))
    """
    with _ForwardMode():
        yield
