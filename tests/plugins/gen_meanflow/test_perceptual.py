"""pMF's perceptual terms: the paired crop, LPIPS and ConvNeXt-V2 against float64 hand computations, the
upstream parameter names through files, one-line errors, and gradients that reach x̂ only."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import gen
from gen_meanflow.perceptual import (
    GRN,
    LPIPS,
    ConvNeXtV2,
    PerceptualLoss,
    load_convnext,
    load_lpips,
    paired_random_resized_crop,
    random_resized_crop_boxes,
)

VGG_WIDTHS = (4, 6, 8, 8, 8)
CNX = dict(depths=(1, 2, 1, 1), hidden_sizes=(8, 12, 16, 16), num_labels=7)
VGG_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # torchvision's vgg16().features indices


def randomised(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter redrawn (GRN starts at zero, LayerNorm at one: they could hide a mistake); LPIPS'
    heads non-negative, as the published ones (a distance)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (0.5 if p.dim() == 1 else 0.0))
            if name.startswith("lin"):
                p.abs_()
    return net


def images(n: int = 2, size: int = 32, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def one_line_error(call, *fragments: str) -> str:
    with pytest.raises(gen.GenError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and all(f in message for f in fragments), message
    return message


# -- the crop -------------------------------------------------------------------------------------------------


def hand_boxes(seed: int, n: int, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """torchvision's RandomResizedCrop rule, written out, on the documented draws."""
    g = torch.Generator().manual_seed(seed)
    u, p = torch.rand(n, 10, 2, generator=g), torch.rand(n, 2, generator=g)
    boxes = []
    for i in range(n):
        for k in range(10):
            area = height * width * (0.08 + 0.92 * u[i, k, 0].item())
            log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[i, k, 1].item()
            w, h = round(math.sqrt(area * math.exp(log_r))), round(math.sqrt(area / math.exp(log_r)))
            if 1 <= w <= width and 1 <= h <= height:
                top = math.floor(p[i, 0].item() * (height - h + 1))
                left = math.floor(p[i, 1].item() * (width - w + 1))
                boxes.append((top, left, h, w))
                break
        else:
            raise AssertionError("no attempt fit; pick another seed")
    return boxes


def test_crop_is_the_hand_computed_crop_and_the_same_for_both_images():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 3, 20, 28, generator=g)
    b = 3 * a + 1  # resizing is affine-invariant: b's crop is 3 a' + 1 exactly when the boxes agree
    boxes = hand_boxes(7, 5, 20, 28)
    assert len(set(boxes)) == 5 and any(h != w for _, _, h, w in boxes)
    out_a, out_b = paired_random_resized_crop(a, b, torch.Generator().manual_seed(7), size=16)
    assert out_a.shape == out_b.shape == (5, 3, 16, 16)
    for i, (top, left, h, w) in enumerate(boxes):
        crop = a[i : i + 1, :, top : top + h, left : left + w]
        want = F.interpolate(crop, size=(16, 16), mode="bicubic", antialias=True, align_corners=False)
        torch.testing.assert_close(out_a[i : i + 1], want, rtol=0, atol=1e-6)
    torch.testing.assert_close(out_b, 3 * out_a + 1, rtol=0, atol=1e-5)


def test_crop_boxes_fall_back_to_torchvisions_centre_crop():
    g = torch.Generator().manual_seed(0)
    # an area above the image's: all 10 attempts fail; W / H = 2 > 4/3 -> h = H, w = round(H * 4/3) = 27
    assert random_resized_crop_boxes(2, 20, 40, g, scale=(1.5, 2.0)) == [(0, 6, 20, 27)] * 2
    assert random_resized_crop_boxes(1, 40, 20, g, scale=(1.5, 2.0)) == [
        (6, 0, 27, 20)
    ]  # h = round(20 / (3/4)), top = 13 // 2
    assert random_resized_crop_boxes(1, 30, 30, g, scale=(1.5, 2.0)) == [(0, 0, 30, 30)]


def test_crop_boxes_stay_inside_and_use_a_fixed_number_of_draws():
    g = torch.Generator().manual_seed(3)
    for top, left, h, w in random_resized_crop_boxes(200, 24, 32, g):
        assert 0 <= top <= 24 - h and 0 <= left <= 32 - w and h >= 1 and w >= 1
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    random_resized_crop_boxes(3, 8, 8, g1)
    random_resized_crop_boxes(3, 64, 64, g2, scale=(1.5, 2.0))
    assert torch.equal(g1.get_state(), g2.get_state())  # the stream does not depend on the images


# -- LPIPS ----------------------------------------------------------------------------------------------------


def hand_lpips(state: dict[str, torch.Tensor], x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """LPIPS v0.1 in float64 from the state dict: scaling, VGG16 relu1_2 ... relu5_3, unit norm, heads."""
    s = {k: v.double() for k, v in state.items()}
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)

    def relus(x):
        x, out, convs = (x.double() - shift) / scale, [], iter(VGG_CONVS)
        for block, depth in enumerate((2, 2, 3, 3, 3)):
            x = F.max_pool2d(x, 2) if block else x
            for _ in range(depth):
                i = next(convs)
                x = F.relu(F.conv2d(x, s[f"net.features.{i}.weight"], s[f"net.features.{i}.bias"], padding=1))
            out.append(x)
        return out

    total = torch.zeros(len(x0), dtype=torch.float64)
    for layer, (f0, f1) in enumerate(zip(relus(x0), relus(x1), strict=True)):
        n0 = f0 / (f0.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        n1 = f1 / (f1.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = s[f"lin{layer}.model.1.weight"]  # (1, C, 1, 1)
        total += F.conv2d((n0 - n1) ** 2, w).mean((1, 2, 3))
    return total


def test_lpips_has_lpips_and_torchvision_names():
    names = set(LPIPS(VGG_WIDTHS).state_dict())
    want = {f"net.features.{i}.{p}" for i in VGG_CONVS for p in ("weight", "bias")}
    assert names == want | {f"lin{k}.model.1.weight" for k in range(5)}


def test_lpips_matches_a_float64_hand_computation_and_is_zero_on_equal_images():
    net = randomised(LPIPS(VGG_WIDTHS))
    x0, x1 = images(3, seed=1), images(3, seed=2)
    got = net(x0, x1)
    assert got.shape == (3,) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), hand_lpips(net.state_dict(), x0, x1), rtol=1e-4, atol=1e-6)
    assert torch.equal(net(x0, x0), torch.zeros(3))


# -- ConvNeXt-V2 ----------------------------------------------------------------------------------------------


def test_grn_matches_the_papers_formula_by_hand():
    grn = GRN(4)
    with torch.no_grad():
        grn.weight.copy_(torch.tensor([0.5, -1.0, 2.0, 0.25]).view(1, 1, 1, 4))
        grn.bias.copy_(torch.tensor([0.1, 0.2, -0.3, 0.0]).view(1, 1, 1, 4))
    x = torch.arange(24, dtype=torch.float64).reshape(1, 2, 3, 4).sub(11.5).div(5)  # (B, H, W, C)
    want = torch.empty_like(x)
    gx = [math.sqrt(sum(x[0, h, w, c].item() ** 2 for h in range(2) for w in range(3))) for c in range(4)]
    nx = [g / (sum(gx) / 4 + 1e-6) for g in gx]
    for h in range(2):
        for w in range(3):
            for c in range(4):
                v = x[0, h, w, c].item()
                want[0, h, w, c] = grn.weight[0, 0, 0, c].item() * v * nx[c] + grn.bias[0, 0, 0, c].item() + v
    torch.testing.assert_close(grn.double()(x), want, rtol=1e-12, atol=1e-12)


def hand_convnext(s: dict[str, torch.Tensor], x: torch.Tensor, depths) -> torch.Tensor:
    """ConvNextV2ForImageClassification in float64 from HF-named tensors, images in [-1, 1]."""
    s = {k: v.double() for k, v in s.items()}
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)

    def ln_channels(h, key):  # LayerNorm over C of (B, C, H, W), eps 1e-6
        h = h.permute(0, 2, 3, 1)
        return F.layer_norm(h, h.shape[-1:], s[f"{key}.weight"], s[f"{key}.bias"], 1e-6).permute(0, 3, 1, 2)

    p = "convnextv2."
    stem = p + "embeddings.patch_embeddings."
    h = F.conv2d(((x.double() + 1) / 2 - mean) / std, s[stem + "weight"], s[stem + "bias"], stride=4)
    h = ln_channels(h, p + "embeddings.layernorm")
    for i, depth in enumerate(depths):
        st = f"{p}encoder.stages.{i}."
        if i:
            h = ln_channels(h, st + "downsampling_layer.0")
            down = st + "downsampling_layer.1."
            h = F.conv2d(h, s[down + "weight"], s[down + "bias"], stride=2)
        for j in range(depth):
            ly = f"{st}layers.{j}."
            r = F.conv2d(h, s[ly + "dwconv.weight"], s[ly + "dwconv.bias"], padding=3, groups=h.shape[1])
            r = r.permute(0, 2, 3, 1)
            r = F.layer_norm(r, r.shape[-1:], s[ly + "layernorm.weight"], s[ly + "layernorm.bias"], 1e-6)
            r = F.gelu(F.linear(r, s[ly + "pwconv1.weight"], s[ly + "pwconv1.bias"]))
            g = r.pow(2).sum((1, 2), keepdim=True).sqrt()
            r = s[ly + "grn.weight"] * (r * g / (g.mean(-1, keepdim=True) + 1e-6)) + s[ly + "grn.bias"] + r
            r = F.linear(r, s[ly + "pwconv2.weight"], s[ly + "pwconv2.bias"])
            h = h + r.permute(0, 3, 1, 2)
    f = h.mean((2, 3))
    f = F.layer_norm(f, f.shape[-1:], s[p + "layernorm.weight"], s[p + "layernorm.bias"], 1e-12)
    return F.linear(f, s["classifier.weight"], s["classifier.bias"])


def test_convnext_has_hf_names_and_matches_a_float64_hand_computation():
    net = randomised(ConvNeXtV2(**CNX))
    names = set(net.state_dict())
    for key in (
        "convnextv2.embeddings.patch_embeddings.weight",
        "convnextv2.embeddings.layernorm.bias",
        "convnextv2.encoder.stages.1.downsampling_layer.0.weight",
        "convnextv2.encoder.stages.3.downsampling_layer.1.bias",
        "convnextv2.encoder.stages.1.layers.1.dwconv.weight",
        "convnextv2.encoder.stages.2.layers.0.grn.weight",
        "convnextv2.encoder.stages.0.layers.0.pwconv2.bias",
        "convnextv2.layernorm.weight",
        "classifier.weight",
    ):
        assert key in names, key
    assert not any(k.startswith("convnextv2.encoder.stages.0.downsampling_layer") for k in names)
    assert net.state_dict()["convnextv2.encoder.stages.2.layers.0.grn.weight"].shape == (1, 1, 1, 64)
    x = images(2, size=64)
    got = net(x)
    assert got.shape == (2, 7) and got.dtype == torch.float32
    torch.testing.assert_close(
        got.double(), hand_convnext(net.state_dict(), x, CNX["depths"]), rtol=1e-4, atol=1e-5
    )


# -- files ----------------------------------------------------------------------------------------------------


def lpips_files(tmp_path, net: LPIPS) -> tuple:
    """torchvision's layout (features.* plus a classifier) as safetensors, lpips' heads as a torch file."""
    state = net.state_dict()
    vgg = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    vgg["classifier.0.weight"] = torch.zeros(3, 2)
    save_file(vgg, tmp_path / "vgg16.safetensors")
    torch.save({k: v for k, v in state.items() if k.startswith("lin")}, tmp_path / "vgg.pth")
    return tmp_path / "vgg16.safetensors", tmp_path / "vgg.pth"


def test_lpips_and_convnext_round_trip_through_upstream_named_files(tmp_path):
    lp, cn = randomised(LPIPS(VGG_WIDTHS), 1), randomised(ConvNeXtV2(**CNX), 2)
    vgg_path, heads_path = lpips_files(tmp_path, lp)
    save_file(cn.state_dict(), tmp_path / "model.safetensors")
    torch.save(cn.state_dict(), tmp_path / "pytorch_model.bin")
    lp2 = load_lpips(vgg_path, heads_path, widths=VGG_WIDTHS)
    x0, x1 = images(2, seed=3), images(2, seed=4)
    assert torch.equal(lp2(x0, x1), lp(x0, x1))
    assert not any(p.requires_grad for p in lp2.parameters()) and not lp2.training
    for name in ("model.safetensors", "pytorch_model.bin"):
        cn2 = load_convnext(tmp_path / name, **CNX)
        assert torch.equal(cn2(x0), cn(x0))
        assert not any(p.requires_grad for p in cn2.parameters()) and not cn2.training


def test_missing_and_wrong_files_are_one_line_errors_naming_path_and_key(tmp_path):
    lp, cn = randomised(LPIPS(VGG_WIDTHS)), randomised(ConvNeXtV2(**CNX))
    vgg_path, heads_path = lpips_files(tmp_path, lp)
    missing = tmp_path / "nope.safetensors"
    one_line_error(
        lambda: load_lpips(missing, heads_path, widths=VGG_WIDTHS), str(missing), "missing", "download"
    )
    one_line_error(lambda: load_convnext(tmp_path / "nope.bin", **CNX), "nope.bin", "missing", "download")

    heads = torch.load(heads_path, weights_only=True)
    del heads["lin3.model.1.weight"]
    torch.save(heads, tmp_path / "heads.pth")
    one_line_error(
        lambda: load_lpips(vgg_path, tmp_path / "heads.pth", widths=VGG_WIDTHS),
        str(tmp_path / "heads.pth"),
        "lacks lin3.model.1.weight",
    )
    one_line_error(lambda: load_lpips(vgg_path, heads_path), str(vgg_path), "features.0.weight", "shape")

    state = cn.state_dict()
    state["classifier.weight"] = torch.zeros(5, 16)
    save_file(state, tmp_path / "wrong.safetensors")
    one_line_error(
        lambda: load_convnext(tmp_path / "wrong.safetensors", **CNX),
        "wrong.safetensors",
        "classifier.weight",
        "(5, 16)",
    )
    state = {k.replace("layernorm", "norm"): v for k, v in cn.state_dict().items()}
    save_file(state, tmp_path / "renamed.safetensors")
    one_line_error(
        lambda: load_convnext(tmp_path / "renamed.safetensors", **CNX),
        "renamed.safetensors",
        "lacks convnextv2.embeddings.layernorm.weight",
    )
    (tmp_path / "junk.safetensors").write_bytes(b"not a tensor file")
    one_line_error(
        lambda: load_convnext(tmp_path / "junk.safetensors", **CNX), "junk.safetensors", "download"
    )


# -- the loss -------------------------------------------------------------------------------------------------


def test_gradients_reach_pred_x_and_not_the_frozen_weights():
    lp, cn = randomised(LPIPS(VGG_WIDTHS)), randomised(ConvNeXtV2(**CNX))
    loss = PerceptualLoss(lp, cn, crop_size=32)
    loss.train()
    assert not loss.training and not lp.training and not any(p.requires_grad for p in loss.parameters())
    x = images(2, size=40, seed=5)
    pred = (x + 0.3 * images(2, size=40, seed=6)).requires_grad_(True)
    out = loss(pred, x, torch.Generator().manual_seed(0))
    assert set(out) == {"lpips", "convnext"} and all(v.shape == (2,) for v in out.values())
    assert all((v > 0).all() for v in out.values())
    (out["lpips"].sum() + out["convnext"].sum()).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0 and pred.grad.isfinite().all()
    assert all(p.grad is None for p in loss.parameters())
    same = loss(x, x, torch.Generator().manual_seed(0))
    assert torch.equal(same["lpips"], torch.zeros(2)) and torch.equal(same["convnext"], torch.zeros(2))


def test_terms_are_the_networks_on_the_paired_crops_and_only_the_enabled_ones():
    cn = randomised(ConvNeXtV2(**CNX))
    x, pred = images(3, size=36, seed=7), images(3, size=36, seed=8)
    for output, f in (("logits", cn), ("features", cn.features)):
        loss = PerceptualLoss(convnext=cn, crop_size=32, convnext_output=output)
        out = loss(pred, x, torch.Generator().manual_seed(9))
        a, b = paired_random_resized_crop(pred, x, torch.Generator().manual_seed(9), size=32)
        assert set(out) == {"convnext"} and loss.weights == {"convnext": 0.1}
        torch.testing.assert_close(out["convnext"], (f(a) - f(b)).pow(2).sum(-1))
    with pytest.raises(ValueError):
        PerceptualLoss()


def test_autocast_bf16_runs_and_returns_float32():
    loss = PerceptualLoss(randomised(LPIPS(VGG_WIDTHS)), randomised(ConvNeXtV2(**CNX)), crop_size=32)
    x, pred = images(2, size=32, seed=10), images(2, size=32, seed=11)
    full = loss(pred, x, torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = loss(pred, x, torch.Generator().manual_seed(1))
    for k in full:
        assert half[k].dtype == torch.float32
        torch.testing.assert_close(half[k], full[k], rtol=0.1, atol=1e-2)
