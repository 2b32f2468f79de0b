"""Perceptual terms of pixel MeanFlow: LPIPS and a ConvNeXt-V2 distance between x̂ and x, per sample.

pMF (arXiv 2601.22158, code ``Lyy-iiis/pMF``, ``utils/auxloss_util.py``) adds two terms on the predicted
clean image x̂ and the data x, following arXiv 2512.10953: both images of a pair get the same random
resized crop to 224 × 224, then

- ``lpips``: LPIPS v0.1 over VGG16 (Zhang et al. 2018, ``richzhang/PerceptualSimilarity``);
- ``convnext``: ``sum_k (f_k(x̂) - f_k(x))²`` with f ConvNeXt-V2-Base (``facebook/convnextv2-base-22k-224``):
  its logits by default, or its pooled features (``convnext_output="features"``, what pMF's JAX code uses).

Both networks are written out here with their upstream parameter names, so the published files load as
they are, from local paths only (nothing is downloaded):

- VGG16: torchvision's ``vgg16-397923af.pth`` (``features.N.weight`` / ``.bias``; ``classifier.*`` is ignored);
- LPIPS heads: the lpips package's ``lpips/weights/v0.1/vgg.pth`` (``lin0.model.1.weight`` … ``lin4``);
- ConvNeXt-V2: Hugging Face's ``facebook/convnextv2-base-22k-224`` ``model.safetensors`` or
  ``pytorch_model.bin`` (``ConvNextV2ForImageClassification``'s names).

``.safetensors`` files are read as such, anything else with ``torch.load(weights_only=True)``; a missing or
damaged file, or one without the expected tensors, is one `gen.GenError` line naming the file and the key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gen

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
LPIPS_HEADS_URL = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth"
CONVNEXT_URL = "https://huggingface.co/facebook/convnextv2-base-22k-224"
CONVNEXT_FILES = f"model.safetensors or pytorch_model.bin of {CONVNEXT_URL}"
# LPIPS' ScalingLayer: images in [-1, 1] to the statistics the VGG was trained on (lpips/lpips.py).
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_DEPTHS = (2, 2, 3, 3, 3)  # convs per block; relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 end the blocks
# facebook/convnextv2-base-22k-224's config.json. Its head has 1000 classes: the "22k" checkpoints were fine-tuned
# on ImageNet-22k, then on ImageNet-1k (transformers' convert_convnextv2_to_pytorch.py sets num_labels = 1000
# and checks logits of shape (1, 1000) for convnextv2_base_22k_224_ema.pt).
CONVNEXTV2_BASE = {"depths": (3, 3, 27, 3), "hidden_sizes": (128, 256, 512, 1024), "num_labels": 1000}


# -- paired random resized crop ---------------------------------------------------------------------------


def random_resized_crop_boxes(
    n: int,
    height: int,
    width: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> list[tuple[int, int, int, int]]:
    """``n`` crop boxes ``(top, left, h, w)`` by torchvision's ``RandomResizedCrop.get_params`` rule.

    The rule: up to 10 attempts, each drawing an area fraction ``s ~ U(scale)`` and a log aspect ratio
    ``log r ~ U(log ratio)``, ``w = round(sqrt(s * H * W * r))``, ``h = round(sqrt(s * H * W / r))``; the
    first attempt with ``0 < w <= W`` and ``0 < h <= H`` is placed uniformly (``top`` in ``[0, H - h]``,
    ``left`` in ``[0, W - w]``). When all 10 fail, the centre crop of the whole image clipped to the
    aspect ratio range.

    Randomness: all draws of the batch are taken at once, ``u = torch.rand(n, 10, 2)`` (area, ratio of
    each attempt) then ``p = torch.rand(n, 2)`` (``top = floor(p0 * (H - h + 1))``, ``left`` likewise),
    on the generator's device with one transfer to the CPU. The same generator state gives the same boxes
    and always consumes the same draws (unlike torchvision's one-at-a-time draws, which stop early; the
    distribution is the same). pMF's JAX code draws once and clips instead of retrying.

    Args:
        n: Boxes (one per image pair).
        height: Image height H.
        width: Image width W.
        generator: The randomness.
        scale: Range of the crop's area as a fraction of the image's.
        ratio: Range of the crop's aspect ratio w / h.

    Returns:
        ``n`` tuples ``(top, left, h, w)`` of ints.
    """
    u = torch.rand(n, 10, 2, generator=generator, device=generator.device).tolist()
    p = torch.rand(n, 2, generator=generator, device=generator.device).tolist()
    area, lo, hi = height * width, math.log(ratio[0]), math.log(ratio[1])
    boxes = []
    for attempts, (p_top, p_left) in zip(u, p, strict=True):
        for u_area, u_ratio in attempts:
            target = area * (scale[0] + (scale[1] - scale[0]) * u_area)
            aspect = math.exp(lo + (hi - lo) * u_ratio)
            w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                boxes.append((int(p_top * (height - h + 1)), int(p_left * (width - w + 1)), h, w))
                break
        else:  # torchvision's fallback: a centre crop, clipped to the ratio range
            in_ratio = width / height
            if in_ratio < min(ratio):
                w, h = width, int(round(width / min(ratio)))
            elif in_ratio > max(ratio):
                w, h = int(round(height * max(ratio))), height
            else:
                w, h = width, height
            boxes.append(((height - h) // 2, (width - w) // 2, h, w))
    return boxes


def paired_random_resized_crop(
    a: Tensor,
    b: Tensor,
    generator: torch.Generator | Tensor,
    size: int = 224,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[Tensor, Tensor]:
    """The same random resized crop of ``a[i]`` and ``b[i]`` for each pair i (arXiv 2512.10953, pMF).

    Boxes from `random_resized_crop_boxes`; each crop is resized to ``size`` × ``size`` with
    ``F.interpolate(mode="bicubic", antialias=True, align_corners=False)`` (PIL's a = -0.5 cubic, as
    torchvision's tensor resize with antialiasing and pMF's ``jax.image.scale_and_translate(method="cubic",
    antialias=True)``). Differentiable with respect to both inputs.

    Args:
        a: (B, C, H, W).
        b: (B, C, H, W), the same shape.
        generator: The randomness (one box per pair), or (B,) int64 seeds, one per pair.
        size: Output side S.
        scale: Area range, as a fraction of H * W.
        ratio: Aspect ratio (w / h) range.

    Returns:
        (B, C, S, S) crops of ``a`` and of ``b``, in their dtypes.
    """
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(
            f"expected two (B, C, H, W) batches of one shape, not {tuple(a.shape)}, {tuple(b.shape)}"
        )
    n, c, height, width = a.shape
    if isinstance(generator, torch.Generator):
        boxes = random_resized_crop_boxes(n, height, width, generator, scale, ratio)
    else:  # one seed a pair: each pair's box is a function of its own seed (keyed, any batch split)
        seeds = generator.tolist()
        boxes = [
            random_resized_crop_boxes(1, height, width, torch.Generator().manual_seed(s), scale, ratio)[0]
            for s in seeds
        ]
    out_a, out_b = [], []
    for i, (top, left, h, w) in enumerate(boxes):
        # one resize for both images of the pair (stacked on the channels), as they share the box
        pair = torch.cat([a[i], b[i].to(a.dtype)])[None, :, top : top + h, left : left + w]
        pair = F.interpolate(pair, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
        out_a.append(pair[0, :c])
        out_b.append(pair[0, c:])
    return torch.stack(out_a), torch.stack(out_b).to(b.dtype)


# -- LPIPS over VGG16 ----------------------------------------------------------------------------------------


class VGG16Features(nn.Module):
    """torchvision's ``vgg16().features`` up to relu5_3 (index 29), with its indices as parameter names.

    Args:
        widths: Channels of the five blocks (VGG16: 64, 128, 256, 512, 512; tests use fewer).
    """

    def __init__(self, widths: Sequence[int] = VGG16_WIDTHS):
        super().__init__()
        layers: list[nn.Module] = []
        self.taps: list[int] = []  # indices of relu1_2 ... relu5_3, where LPIPS reads the features
        c_in = 3
        for block, (width, depth) in enumerate(zip(widths, VGG16_DEPTHS, strict=True)):
            if block:
                layers.append(nn.MaxPool2d(2, 2))
            for _ in range(depth):
                layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU()]
                c_in = width
            self.taps.append(len(layers) - 1)
        self.features = nn.Sequential(*layers)
        self.widths = tuple(widths)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) scaled images -> the five relu outputs, (B, widths[k], H / 2^k, W / 2^k)."""
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


class NetLin(nn.Module):
    """lpips' ``NetLinLayer``: a 1 × 1 conv to one channel, no bias, at ``model.1`` (``model.0`` is its
    dropout, the identity in eval mode)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, d: Tensor) -> Tensor:
        """(B, C, h, w) float32 squared differences -> (B,) their weighted channel sum, averaged over space.
        Written as a product and a sum so that it stays in float32 under autocast."""
        w = self.model[1].weight.float().view(1, -1, 1, 1)
        return (d * w).sum(1).mean((1, 2))


class LPIPS(nn.Module):
    """LPIPS v0.1 with VGG16 (Zhang et al. 2018; ``lpips.LPIPS(net="vgg")``, ``spatial=False``).

    ``d(x0, x1) = sum_l mean_hw sum_c w_lc (n(f_l(x0)) - n(f_l(x1)))²`` with f_l the five relu outputs of
    VGG16 on LPIPS-scaled images and ``n(f) = f / (||f||_c + 1e-10)`` (lpips' ``normalize_tensor``).

    Args:
        widths: The VGG's block widths (tests build a narrow one).
    """

    def __init__(self, widths: Sequence[int] = VGG16_WIDTHS):
        super().__init__()
        self.net = VGG16Features(widths)
        self.lin0, self.lin1, self.lin2, self.lin3, self.lin4 = (NetLin(w) for w in widths)
        self.requires_grad_(False)
        self.eval()

    def features(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) images in [-1, 1] -> the five unit-normalised relu outputs, float32."""
        shift = torch.tensor(LPIPS_SHIFT, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        scale = torch.tensor(LPIPS_SCALE, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        # float32 from here: the difference of two close unit vectors loses its digits in bf16
        feats = [f.float() for f in self.net((x - shift) / scale)]
        return [f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10) for f in feats]

    def forward(self, x0: Tensor, x1: Tensor) -> Tensor:
        """The LPIPS distance of each pair.

        Args:
            x0: (B, 3, H, W) images in [-1, 1] (H, W >= 16: four poolings).
            x1: (B, 3, H, W) images in [-1, 1].

        Returns:
            (B,) float32.
        """
        lins = (self.lin0, self.lin1, self.lin2, self.lin3, self.lin4)
        pairs = zip(self.features(x0), self.features(x1), lins, strict=True)
        return sum(lin((f0 - f1).pow(2)) for f0, f1, lin in pairs)


# -- ConvNeXt-V2 (Hugging Face's ConvNextV2ForImageClassification) --------------------------------------------


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of (B, C, H, W) (HF's ``ConvNextV2LayerNorm``, ``channels_first``)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class GRN(nn.Module):
    """Global Response Normalisation (ConvNeXt-V2, arXiv 2301.00808, eq. 1-3; HF's ``ConvNextV2GRN``):
    ``Gx = ||x||_2 over (H, W)``, ``Nx = Gx / (mean_c Gx + 1e-6)``, ``out = weight * (x * Nx) + bias + x``."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, 1, 1, dim))  # "gamma" in the paper, (1, 1, 1, C) as HF's
        self.bias = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        gx = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)  # (B, 1, 1, C)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.weight * (x * nx) + self.bias + x


class ConvNeXtV2Layer(nn.Module):
    """A ConvNeXt-V2 block (HF's ``ConvNextV2Layer``): depthwise 7 × 7 conv, LayerNorm, Linear 4C, GELU,
    GRN, Linear C, residual; the pointwise part in channels-last as upstream."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.layernorm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        h = self.layernorm(self.dwconv(x).permute(0, 2, 3, 1))  # (B, H, W, C)
        h = self.pwconv2(self.grn(F.gelu(self.pwconv1(h))))
        return x + h.permute(0, 3, 1, 2)


class ConvNeXtV2Stage(nn.Module):
    """HF's ``ConvNextV2Stage``: a downsampling (LayerNorm, 2 × 2 stride-2 conv; none in stage 0), then blocks."""

    def __init__(self, c_in: int, c_out: int, depth: int, downsample: bool):
        super().__init__()
        down = [LayerNorm2d(c_in, eps=1e-6), nn.Conv2d(c_in, c_out, kernel_size=2, stride=2)]
        self.downsampling_layer = nn.ModuleList(down if downsample else [])
        self.layers = nn.ModuleList(ConvNeXtV2Layer(c_out) for _ in range(depth))

    def forward(self, x: Tensor) -> Tensor:
        for layer in [*self.downsampling_layer, *self.layers]:
            x = layer(x)
        return x


class Embeddings(nn.Module):
    """HF's ``ConvNextV2Embeddings``: the 4 × 4 stride-4 patchify stem and its LayerNorm."""

    def __init__(self, dim: int, patch_size: int = 4):
        super().__init__()
        self.patch_embeddings = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        self.layernorm = LayerNorm2d(dim, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        return self.layernorm(self.patch_embeddings(x))


class Encoder(nn.Module):
    def __init__(self, depths: Sequence[int], hidden_sizes: Sequence[int]):
        super().__init__()
        c_in = [hidden_sizes[0], *hidden_sizes[:-1]]
        self.stages = nn.ModuleList(
            ConvNeXtV2Stage(c_in[i], hidden_sizes[i], depths[i], downsample=i > 0) for i in range(len(depths))
        )


class ConvNeXtV2Model(nn.Module):
    """HF's ``ConvNextV2Model``: stem, stages, global average pool, final LayerNorm (``layer_norm_eps``)."""

    def __init__(self, depths: Sequence[int], hidden_sizes: Sequence[int], layer_norm_eps: float = 1e-12):
        super().__init__()
        self.embeddings = Embeddings(hidden_sizes[0])
        self.encoder = Encoder(depths, hidden_sizes)
        self.layernorm = nn.LayerNorm(hidden_sizes[-1], eps=layer_norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) normalised pixels -> (B, C_last) pooled features (HF's ``pooler_output``)."""
        x = self.embeddings(x)
        for stage in self.encoder.stages:
            x = stage(x)
        return self.layernorm(x.mean((-2, -1)))


class ConvNeXtV2(nn.Module):
    """ConvNeXt-V2 image classifier with HF ``ConvNextV2ForImageClassification``'s parameter names
    (``convnextv2.embeddings.patch_embeddings.weight``, ``convnextv2.encoder.stages.N.layers.M.grn.weight``,
    ``convnextv2.layernorm.weight``, ``classifier.weight``, ...).

    Inputs are images in [-1, 1]; ``imagenet_norm`` maps them to [0, 1] and normalises them with ImageNet's
    mean and std, as HF's ``ConvNextImageProcessor`` does (False: fed as they are, as pMF's JAX code does).

    Args:
        depths: Blocks per stage (base: 3, 3, 27, 3).
        hidden_sizes: Widths of the stages (base: 128, 256, 512, 1024).
        num_labels: Classes of the head (``facebook/convnextv2-base-22k-224``: 1000).
        layer_norm_eps: The final LayerNorm's eps (HF's config: 1e-12; the blocks' are 1e-6).
        imagenet_norm: Normalise the [-1, 1] inputs with ImageNet's statistics.
    """

    def __init__(
        self,
        depths: Sequence[int] = CONVNEXTV2_BASE["depths"],
        hidden_sizes: Sequence[int] = CONVNEXTV2_BASE["hidden_sizes"],
        num_labels: int = CONVNEXTV2_BASE["num_labels"],
        layer_norm_eps: float = 1e-12,
        imagenet_norm: bool = True,
    ):
        super().__init__()
        if len(depths) != len(hidden_sizes):
            raise ValueError(f"depths {tuple(depths)} and hidden_sizes {tuple(hidden_sizes)} differ")
        self.convnextv2 = ConvNeXtV2Model(depths, hidden_sizes, layer_norm_eps)
        self.classifier = nn.Linear(hidden_sizes[-1], num_labels)
        self.imagenet_norm = imagenet_norm
        self.requires_grad_(False)
        self.eval()

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) images in [-1, 1] -> (B, hidden_sizes[-1]) pooled, normalised features."""
        if self.imagenet_norm:
            mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            x = ((x + 1) / 2 - mean) / std
        return self.convnextv2(x)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) images in [-1, 1] -> (B, num_labels) float32 logits."""
        f = self.features(x).float()
        # the head in float32 (autocast off): it is small, and the loss is a difference of close logits
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(f, self.classifier.weight.float(), self.classifier.bias.float())


# -- loading ---------------------------------------------------------------------------------------------------


def _read_state(path: str | Path, what: str, url: str) -> tuple[Path, dict[str, Tensor]]:
    """The tensors of a weights file (safetensors, else a torch file read with ``weights_only=True``)."""
    file = Path(path)
    fix = f"these are not usable {what} weights: download {url}"
    try:
        state = gen.read_safetensors(file) if file.suffix == ".safetensors" else gen.read_torch(file)
    except gen.GenError as e:  # "PATH PROBLEM": missing, truncated, foreign, or Python objects refused
        raise gen.GenError(f"{e}; {fix}") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise gen.GenError(f"{file} does not hold a state dict of tensors; {fix}")
    return file, state


def _assign(
    net: nn.Module,
    file: Path,
    state: dict[str, Tensor],
    url: str,
    keys: Callable[[str], bool] = lambda k: True,
    owns: Callable[[str], bool] = lambda k: True,
) -> None:
    """Assigns ``state``'s tensors to the parameters of ``net`` (built on the meta device) whose names
    satisfy ``keys``; each must be in the file with its shape. Keys of the file that ``owns`` claims but
    ``net`` lacks mean another architecture; the others (torchvision's ``classifier.*``) are ignored."""
    expected = {k: p for k, p in net.state_dict().items() if keys(k)}
    for key, param in expected.items():
        if key not in state:
            raise gen.GenError(
                f"{file} lacks {key} (not these weights, or another architecture); download {url}"
            )
        if tuple(state[key].shape) != tuple(param.shape):
            raise gen.GenError(
                f"{file} has {key} of shape {tuple(state[key].shape)}, not {tuple(param.shape)} "
                f"(another architecture); download {url}"
            )
    extra = [k for k in state if owns(k) and k not in expected]
    if extra:
        raise gen.GenError(f"{file} has {extra[0]}, which this architecture lacks; download {url}")
    net.load_state_dict({k: state[k].float() for k in expected}, strict=False, assign=True)


def load_lpips(vgg_path: str | Path, heads_path: str | Path, **arch: Sequence[int]) -> LPIPS:
    """LPIPS v0.1 (VGG16) from local files, in eval mode with ``requires_grad`` off.

    Args:
        vgg_path: torchvision's ``vgg16-397923af.pth`` (or a ``.safetensors`` copy): ``features.N.weight``
            and ``.bias``; its ``classifier.*`` is ignored.
        heads_path: The lpips package's ``lpips/weights/v0.1/vgg.pth`` (or a ``.safetensors`` copy):
            ``lin0.model.1.weight`` ... ``lin4.model.1.weight``, (1, C, 1, 1) each.
        **arch: `LPIPS`'s keyword arguments (``widths``).

    Raises:
        GenError: One line naming a file that is missing, damaged, or lacks or mis-shapes a key.
    """
    vgg_file, vgg = _read_state(vgg_path, "VGG16", VGG16_URL)
    heads_file, heads = _read_state(heads_path, "LPIPS v0.1 (vgg)", LPIPS_HEADS_URL)
    with torch.device("meta"):  # no random initialisation of weights that are about to be replaced
        net = LPIPS(**arch)
    _assign(net.net, vgg_file, vgg, VGG16_URL, owns=lambda k: k.startswith("features."))
    _assign(net, heads_file, heads, LPIPS_HEADS_URL, keys=lambda k: k.startswith("lin"))
    return net.requires_grad_(False).eval()


def load_convnext(path: str | Path, **arch: object) -> ConvNeXtV2:
    """ConvNeXt-V2 (base, 1000 classes unless ``arch`` says otherwise) from a local file, in eval mode with
    ``requires_grad`` off.

    Args:
        path: Hugging Face ``facebook/convnextv2-base-22k-224``'s ``model.safetensors`` or
            ``pytorch_model.bin`` (``ConvNextV2ForImageClassification``'s names).
        **arch: `ConvNeXtV2`'s keyword arguments (``depths``, ``hidden_sizes``, ``num_labels``, ...).

    Raises:
        GenError: One line naming a file that is missing, damaged, or lacks or mis-shapes a key.
    """
    file, state = _read_state(path, "ConvNeXt-V2", CONVNEXT_FILES)
    if "convnextv2.embeddings.patch_embeddings.weight" not in state and any(
        k.startswith(("downsample_layers.", "model")) for k in state
    ):
        raise gen.GenError(
            f"{file} has the ConvNeXt-V2 repository's parameter names, not Hugging Face's; download {CONVNEXT_FILES}"
        )
    with torch.device("meta"):
        net = ConvNeXtV2(**arch)  # type: ignore[arg-type]
    _assign(net, file, state, CONVNEXT_FILES)
    return net.requires_grad_(False).eval()


# -- the two terms -------------------------------------------------------------------------------------------


class PerceptualLoss(nn.Module):
    """pMF's perceptual terms of x̂ against x after a paired random resized crop (``auxloss_util.py``).

    The networks are frozen (``requires_grad`` off, eval mode): gradients reach ``pred_x``, never their
    weights. They run in the autocast dtype under autocast, else in their own dtype (the crops are cast to
    it); the distances are float32. The weights are not applied by `forward`: pMF scales each term by its
    weight after its own adaptive weighting (``adp_wt_fn(lpips) * lpips_lambda + ...``), see `weights`.

    Keep it off the trained model (on the objective): its state dict holds the frozen networks.

    Args:
        lpips: The LPIPS network (`load_lpips`); None leaves the term out.
        convnext: The ConvNeXt-V2 classifier (`load_convnext`); None leaves the term out.
        lpips_weight: λ of the LPIPS term (pMF-B/16: 0.4).
        convnext_weight: λ of the ConvNeXt term (pMF-B/16: 0.1).
        crop_size: Side of the crops both networks see (224).
        convnext_output: ``"logits"`` (the classifier's output) or ``"features"`` (the pooled, LayerNorm-ed
            features before the head: pMF's released JAX ConvNeXt returns these, its head commented out).
    """

    def __init__(
        self,
        lpips: LPIPS | None = None,
        convnext: ConvNeXtV2 | None = None,
        *,
        lpips_weight: float = 0.4,
        convnext_weight: float = 0.1,
        crop_size: int = 224,
        convnext_output: Literal["logits", "features"] = "logits",
    ):
        super().__init__()
        if lpips is None and convnext is None:
            raise ValueError("PerceptualLoss needs at least one of lpips and convnext")
        if convnext_output not in ("logits", "features"):
            raise ValueError(f"convnext_output must be 'logits' or 'features', got {convnext_output!r}")
        self.lpips = lpips.requires_grad_(False).eval() if lpips is not None else None
        self.convnext = convnext.requires_grad_(False).eval() if convnext is not None else None
        self.crop_size = crop_size
        self.convnext_output = convnext_output
        self.weights = {
            name: w
            for name, w, net in (("lpips", lpips_weight, lpips), ("convnext", convnext_weight, convnext))
            if net is not None
        }

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Stays in eval mode: the networks are frozen whatever their owner does."""
        return super().train(False)

    def forward(self, pred_x: Tensor, x: Tensor, generator: torch.Generator | Tensor) -> dict[str, Tensor]:
        """The per-sample perceptual distances of x̂ to x.

        Args:
            pred_x: (B, 3, H, W) predicted clean images x̂, in [-1, 1].
            x: (B, 3, H, W) data images, in [-1, 1] (no gradient is taken through them).
            generator: Draws the crop of each pair; or (B,) int64 seeds, one per pair.

        Returns:
            ``{"lpips": (B,), "convnext": (B,)}`` float32, the enabled terms only.
        """
        if pred_x.dim() != 4 or pred_x.shape[1] != 3 or pred_x.shape != x.shape:
            raise ValueError(
                f"expected two (B, 3, H, W) batches, got {tuple(pred_x.shape)}, {tuple(x.shape)}"
            )
        a, b = paired_random_resized_crop(pred_x, x.detach(), generator, self.crop_size)
        if not torch.is_autocast_enabled(a.device.type):  # else autocast picks the dtype of each op
            dtype = next(self.parameters()).dtype
            a, b = a.to(dtype), b.to(dtype)
        out: dict[str, Tensor] = {}
        # x's crops need no graph (nor do the frozen weights), so only x̂'s activations are kept
        if self.lpips is not None:
            out["lpips"] = self.lpips(a, b)
        if self.convnext is not None:
            f = self.convnext if self.convnext_output == "logits" else self.convnext.features
            out["convnext"] = (f(a).float() - f(b).float()).pow(2).sum(-1)
        return out


__all__ = [
    "CONVNEXTV2_BASE",
    "CONVNEXT_FILES",
    "CONVNEXT_URL",
    "GRN",
    "LPIPS",
    "LPIPS_HEADS_URL",
    "VGG16_URL",
    "ConvNeXtV2",
    "ConvNeXtV2Layer",
    "PerceptualLoss",
    "VGG16Features",
    "load_convnext",
    "load_lpips",
    "paired_random_resized_crop",
    "random_resized_crop_boxes",
]
