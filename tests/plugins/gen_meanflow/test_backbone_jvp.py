"""JVP-safe backbones: the Jacobian-vector products of JiT (every switch) and DiT (every conditioning)
in `gen.forward_mode` equal central finite differences and agree between ``torch.func.jvp`` and
``torch.autograd.forward_ad``; outside the context the published forward is untouched."""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F

import gen

BASE = dict(input_size=16, in_channels=3, num_classes=3, patch_size=4, hidden_size=32, depth=2, num_heads=2)
JIT_SWITCHES = [
    {},
    {"bottleneck_dim": 0},
    {"in_context_len": 2, "in_context_start": 1},
    {"rope": False},
    {"qk_norm": False},
    {"mlp": "gelu"},
    {"norm": "layer"},
]
DIT_CONDITIONINGS = ["adaln_zero", "adaln", "cross_attention", "in_context"]
CASES = [("jit", {"bottleneck_dim": 8, "in_context_len": 0, **s}) for s in JIT_SWITCHES] + [
    ("dit", {"out_channels": 3, "conditioning": c}) for c in DIT_CONDITIONINGS
]


def network(name: str, fields: dict, dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)
    net = gen.build("backbone", name, **BASE, scalar_inputs=("h",), **fields).to(dtype).eval()
    with torch.no_grad():  # away from adaLN-Zero's zero init, where most of the network is invisible
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def jvps(net, dtype, eps):
    g = torch.Generator().manual_seed(1)
    z, dz = (torch.randn(2, 3, 16, 16, generator=g, dtype=dtype) for _ in range(2))
    t, h = torch.tensor([0.3, 0.7], dtype=dtype), torch.tensor([0.5, 0.2], dtype=dtype)
    dt, dh = torch.tensor([1.0, 1.0], dtype=dtype), torch.tensor([-1.0, -1.0], dtype=dtype)
    y = torch.tensor([0, 3])  # 3 is the null label

    def f(z, t, h):
        return net(z, t, y, h=h)

    with gen.forward_mode():
        _, by_func = torch.func.jvp(f, (z, t, h), (dz, dt, dh))
        with fwAD.dual_level():
            out = f(fwAD.make_dual(z, dz), fwAD.make_dual(t, dt), fwAD.make_dual(h, dh))
            by_forward_ad = fwAD.unpack_dual(out).tangent
        central = (
            f(z + eps * dz, t + eps * dt, h + eps * dh) - f(z - eps * dz, t - eps * dt, h - eps * dh)
        ) / (2 * eps)
    return by_func, by_forward_ad, central


def relative(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize(
    ("name", "fields"), CASES, ids=[f"{n}-{'-'.join(map(str, f.values()))}" for n, f in CASES]
)
def test_jvp_equals_central_differences_in_float64_and_float32(name, fields):
    by_func, by_forward_ad, central = jvps(network(name, fields, torch.float64), torch.float64, 1e-5)
    assert relative(by_func, central) < 1e-6 and relative(by_forward_ad, central) < 1e-6
    assert relative(by_func, by_forward_ad) < 1e-12
    by_func, by_forward_ad, central = jvps(network(name, fields, torch.float32), torch.float32, 1e-2)
    assert relative(by_func, central) < 1e-3 and relative(by_forward_ad, by_func) < 1e-5


def test_the_fused_kernels_have_no_forward_mode_rule_and_forward_mode_does():
    # Why `gen.forward_mode` exists (pytorch issue 128971): outside it a JVP through attention fails.
    q, k, v = (torch.randn(1, 2, 5, 4) for _ in range(3))
    with pytest.raises(NotImplementedError, match="forward AD"):
        torch.func.jvp(F.scaled_dot_product_attention, (q, k, v), (q, k, v))
    with gen.forward_mode():
        torch.func.jvp(F.scaled_dot_product_attention, (q, k, v), (q, k, v))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("options", [{}, {"is_causal": True}, {"scale": 0.3}, {"mask": True}], ids=str)
def test_the_math_path_is_sdpa(dtype, options):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8, generator=g, dtype=dtype) for _ in range(3))
    kwargs = dict(options)
    if kwargs.pop("mask", False):
        kwargs["attn_mask"] = torch.rand(7, 7, generator=g) > 0.3
        kwargs["attn_mask"].fill_diagonal_(True)  # every query attends to something
    with gen.forward_mode():
        math = F.scaled_dot_product_attention(q, k, v, **kwargs)
    fused = F.scaled_dot_product_attention(q, k, v, **kwargs)
    torch.testing.assert_close(math, fused, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-6)


def test_a_backbone_without_scalar_inputs_is_the_published_one():
    plain = gen.build("backbone", "jit", **BASE, bottleneck_dim=8, in_context_len=0)
    assert not any(k.startswith("scalar_embedders") for k in plain.state_dict())
    with pytest.raises(ValueError, match=r"takes the scalar inputs none besides \(z, t, y\), got \['h'\]"):
        plain(torch.zeros(1, 3, 16, 16), torch.zeros(1), torch.zeros(1, dtype=torch.long), h=torch.zeros(1))
