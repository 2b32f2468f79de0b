"""FID and Inception Score as published numbers are measured, through torchmetrics.

The protocol is torch-fidelity's (which the JiT code uses): uint8 images, the FID Inception-v3
(:mod:`gen.inception`, TensorFlow-1.x bilinear resize to 299, ``(x - 128) / 128``), FID on the 2048-d
pool features against reference statistics ``(mu, sigma)``, Inception Score on the unbiased logits in
10 splits after a fixed permutation (seed 2020).

FID accumulates in :class:`torchmetrics.image.fid.FrechetInceptionDistance`, fed with features that
were already extracted (one Inception pass serves both metrics, and the metric holds no Inception
weights): under ``torchrun`` torchmetrics sums every rank's feature statistics. The reference
``(mu, sigma)`` enter the metric's "real" states as ``sum = mu * n``, ``cov_sum = sigma * (n - 1) +
n * mu mu^T``. The Inception Score is computed here rather than by torchmetrics' ``InceptionScore``,
whose unseeded permutation, ``chunk`` splits and unbiased std differ from torch-fidelity's numbers.

The Inception weights are not downloaded: give the file with ``--inception-weights`` or the
environment variable ``GEN_INCEPTION_WEIGHTS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor, nn

from gen.errors import GenError
from gen.images import from_uint8
from gen.inception import FIDInceptionV3

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_NAME}"
WEIGHTS_ENV = "GEN_INCEPTION_WEIGHTS"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
IS_SPLITS = 10
IS_SEED = 2020

_override: list[nn.Module] = []


@contextlib.contextmanager
def use_feature_extractor(module: nn.Module) -> Iterator[nn.Module]:
    """Use ``module`` instead of the FID Inception inside this block (tests, other feature spaces).

    ``module(images)`` takes (B, 3, H, W) uint8 and returns ``(features (B, D), logits (B, K))``.
    """
    _override.append(module)
    try:
        yield module
    finally:
        _override.remove(module)


def weights_path(path: str | Path | None = None) -> Path:
    """The Inception weights file: ``path``, else ``$GEN_INCEPTION_WEIGHTS``; a clear error when missing."""
    given = path or os.environ.get(WEIGHTS_ENV)
    if given and Path(given).is_file():
        return Path(given)
    where = f"{given} does not exist; " if given else ""
    raise GenError(
        f"FID/IS need the FID Inception-v3 weights {WEIGHTS_NAME} ({where}download it from {WEIGHTS_URL}) "
        f"and pass --inception-weights PATH or set {WEIGHTS_ENV}=PATH"
    )


def load_inception(path: str | Path | None = None, device: Any = None) -> FIDInceptionV3:
    """The FID Inception-v3 with weights from a ``.pth`` (loaded with ``weights_only=True``) or
    ``.safetensors`` file with torch-fidelity's parameter names."""
    file = weights_path(path)
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(file))
    else:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a corrupt or foreign file, said in one line
            raise GenError(
                f"cannot read Inception weights {file}: {e}; download {WEIGHTS_URL} again"
            ) from None
    net = FIDInceptionV3()
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise GenError(f"{file} is not the FID Inception-v3 ({WEIGHTS_NAME}): {first}") from None
    return net.to(device)


def feature_extractor(weights: str | Path | None = None, device: Any = None) -> nn.Module:
    """The feature extractor in use: an override from :func:`use_feature_extractor`, else the FID Inception."""
    if _override:
        return _override[-1].to(device)
    return load_inception(weights, device)


# -- reference statistics ---------------------------------------------------------------------------


@attrs.frozen(eq=False)
class ReferenceStats:
    """Mean and covariance of the reference set's features.

    Attributes:
        mu: (D,) float64 mean.
        sigma: (D, D) float64 covariance (normalised by n - 1).
        num_samples: Images behind the statistics (None when the file does not say).
        source: Where they came from (a path), for the results.
    """

    mu: np.ndarray
    sigma: np.ndarray
    num_samples: int | None = None
    source: str | None = None

    @property
    def digest(self) -> str:
        """A short hash of (mu, sigma): results computed against other statistics are not mixed up."""
        h = hashlib.sha256(np.ascontiguousarray(self.mu, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(self.sigma, dtype=np.float64).tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        """Write ``mu``, ``sigma`` and ``num_samples`` to an ``.npz`` (JiT's fid_stats layout plus a count)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, mu=self.mu, sigma=self.sigma, num_samples=np.int64(self.num_samples or 0))
        tmp.replace(path)
        return path


def load_reference_stats(path: str | Path) -> ReferenceStats:
    """Read an ``.npz`` with ``mu`` (D,) and ``sigma`` (D, D) (JiT's, ADM's and ours)."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise GenError(f"cannot read reference statistics {path}: {e}") from None
    with data:
        if "mu" not in data or "sigma" not in data:
            raise GenError(
                f"{path} holds {', '.join(data.files)}, not reference statistics (mu, sigma); make them "
                "with `gen eval ref-stats SRC OUT.npz`"
            )
        mu, sigma = data["mu"].astype(np.float64), data["sigma"].astype(np.float64)
        n = int(data["num_samples"]) if "num_samples" in data else None
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise GenError(f"{path}: mu {mu.shape} and sigma {sigma.shape} must be (D,) and (D, D)")
    return ReferenceStats(mu=mu, sigma=sigma, num_samples=n or None, source=str(path))


def is_stats_file(path: str | Path) -> bool:
    path = Path(path)
    if path.suffix != ".npz" or not path.is_file():
        return False
    with np.load(path, allow_pickle=False) as data:
        return "mu" in data.files and "sigma" in data.files


# -- image sources ----------------------------------------------------------------------------------


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))  # (H, W, 3)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _open_npz_array(zf: zipfile.ZipFile, source: Path, key: str = "arr_0"):  # noqa: ANN202
    """An open member ``key`` of an ``.npz``, positioned after the header, with (shape, dtype)."""
    if f"{key}.npy" not in zf.namelist():
        raise GenError(f"{source} has no {key} (the ADM layout: N x H x W x C uint8 images)")
    f = zf.open(f"{key}.npy")
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    if dtype != np.uint8 or len(shape) != 4 or fortran:
        f.close()
        raise GenError(f"{source}: {key} must be N x H x W x C uint8, got {shape} {dtype}")
    return f, shape


def count_images(source: str | Path) -> int:
    """Number of images in a folder or an ADM ``.npz`` (``arr_0``), without reading them."""
    source = Path(source)
    if source.is_dir():
        return len(image_files(source))
    with zipfile.ZipFile(source) as zf:
        f, shape = _open_npz_array(zf, source)
        f.close()
    return int(shape[0])


def _npz_batches(source: Path, batch_size: int) -> Iterator[np.ndarray]:
    """``arr_0`` of an ``.npz`` in batches, streamed: 50 000 images of 256 x 256 never sit in memory."""
    with zipfile.ZipFile(source) as zf:
        f, shape = _open_npz_array(zf, source)
        with f:
            per_image = int(np.prod(shape[1:]))
            for start in range(0, shape[0], batch_size):
                b = min(batch_size, shape[0] - start)
                raw = f.read(b * per_image)
                if len(raw) != b * per_image:
                    raise GenError(
                        f"{source} is truncated: arr_0 ends before image {start + len(raw) // per_image}"
                    )
                yield np.frombuffer(bytearray(raw), dtype=np.uint8).reshape(b, *shape[1:])


def image_batches(source: str | Path, batch_size: int) -> Iterator[np.ndarray]:
    """(B, H, W, C) uint8 batches of a folder of images (sorted by name) or of an ADM ``.npz``.

    A recipe (``.toml``) streams its dataset's ``iter_images`` (one pass, images in [-1, 1]).
    """
    source = Path(source)
    if source.is_dir():
        files = image_files(source)
        if not files:
            raise GenError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {source}")
        for i in range(0, len(files), batch_size):
            yield np.stack([_read_image(p) for p in files[i : i + batch_size]])
        return
    if not source.exists():
        raise GenError(f"{source} does not exist; give a folder of images, an .npz or a recipe")
    if source.suffix == ".npz":
        yield from _npz_batches(source, batch_size)
        return
    if source.suffix == ".toml":
        yield from _dataset_batches(source, batch_size)
        return
    raise GenError(f"{source}: expected a folder of images, an .npz (arr_0) or a recipe .toml")


def _dataset_batches(recipe_path: Path, batch_size: int) -> Iterator[np.ndarray]:
    from gen.images import to_uint8
    from gen.recipe import load_recipe

    recipe = load_recipe(recipe_path)
    dataset = recipe.data.build()
    iter_images = getattr(dataset, "iter_images", None)
    if iter_images is None:
        raise GenError(
            f"[data] {recipe.data.name} cannot list its images (no iter_images); export them to a folder "
            "and give that folder instead"
        )
    if not dataset.spec.is_image:
        raise GenError(f"[data] {recipe.data.name} does not hold images (shape {dataset.spec.shape})")
    for x, _ in iter_images(batch_size):
        yield to_uint8(x)


# -- the metrics ------------------------------------------------------------------------------------


class _Precomputed(nn.Module):
    """The metric's "feature extractor": features arrive already extracted."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def make_fid_metric(num_features: int, device: Any = None):  # noqa: ANN201 - torchmetrics type
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=_Precomputed(num_features), reset_real_features=False).to(device)


def load_reference_into(metric, stats: ReferenceStats, *, on_this_rank: bool = True) -> None:  # noqa: ANN001
    """Put ``(mu, sigma)`` into the metric's real-image states as if ``n`` images had been added.

    Under ``torchrun`` only one rank holds them (``on_this_rank``): torchmetrics sums states over ranks.
    """
    if not on_this_rank:
        return
    device = metric.real_features_sum.device
    n = stats.num_samples or 2  # any n >= 2 gives back the same (mu, sigma); a small one rounds least
    mu = torch.as_tensor(stats.mu, dtype=torch.float64, device=device)  # (D,)
    sigma = torch.as_tensor(stats.sigma, dtype=torch.float64, device=device)  # (D, D)
    if mu.shape != metric.real_features_sum.shape:
        raise GenError(
            f"reference statistics {stats.source} have {mu.shape[0]} features, the feature extractor gives "
            f"{metric.real_features_sum.shape[0]}; use statistics of the FID Inception pool features"
        )
    metric.real_features_sum = mu * n
    metric.real_features_cov_sum = sigma * (n - 1) + n * torch.outer(mu, mu)
    metric.real_features_num_samples = torch.tensor(n, dtype=torch.long, device=device)


def stats_from_features(total: Tensor, cov_sum: Tensor, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) from a feature sum (D,), a sum of outer products (D, D) and a count."""
    mu = total.double() / n  # (D,)
    sigma = (cov_sum.double() - n * torch.outer(mu, mu)) / (n - 1)  # (D, D)
    return mu.cpu().numpy(), sigma.cpu().numpy()


def inception_score(logits: Tensor, splits: int = IS_SPLITS, seed: int = IS_SEED) -> tuple[float, float]:
    """Inception Score as torch-fidelity computes it: permute with ``RandomState(seed)``, split in
    ``splits`` parts ``[i N / s, (i + 1) N / s)``, ``exp(E KL(p(y|x) || p(y)))`` per part; mean and
    population std over the parts.

    Args:
        logits: (N, K) class logits (the FID Inception's unbiased logits), in sample order.
    """
    n = logits.shape[0]
    if n < splits:
        raise GenError(f"the Inception Score needs at least {splits} images, got {n}")
    x = logits[torch.from_numpy(np.random.RandomState(seed).permutation(n))].double()  # (N, K)
    p, log_p = x.softmax(dim=1), x.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        q = p[lo:hi].mean(dim=0, keepdim=True)  # (1, K) the split's marginal
        kl = (p[lo:hi] * (log_p[lo:hi] - q.log())).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))


def _to_nchw(images: np.ndarray | Tensor, device: Any) -> Tensor:
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise GenError(f"expected N x H x W x C uint8 images, got {tuple(x.shape)} {x.dtype}")
    x = x.to(device).permute(0, 3, 1, 2)  # (B, C, H, W)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)  # grey images: the Inception sees three equal channels
    if x.shape[1] != 3:
        raise GenError(f"images need 1 or 3 channels for FID/IS, got {x.shape[1]}")
    return x.contiguous()


class Scorer:
    """Accumulates generated images and reports FID (when given reference statistics) and IS.

    Args:
        extractor: ``module(uint8 (B, 3, H, W)) -> (features (B, D), logits (B, K))``.
        reference: Reference statistics; None scores IS only.
        device: Where features are extracted.
        is_splits: Splits of the Inception Score.
    """

    def __init__(
        self,
        extractor: nn.Module,
        reference: ReferenceStats | None,
        *,
        device: Any = None,
        is_splits: int = IS_SPLITS,
    ):
        self.extractor = extractor
        self.reference = reference
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.is_splits = is_splits
        self.fid = None
        self.logits: list[Tensor] = []
        self.num_images = 0

    @torch.no_grad()
    def add(self, images: np.ndarray | Tensor, labels: np.ndarray | Tensor | None = None) -> None:
        """Add (B, H, W, C) uint8 images (in sample order); FID and IS do not use the labels."""
        features, logits = self.extractor(_to_nchw(images, self.device))
        features = features.double()  # (B, D)
        if self.fid is None:
            self.fid = make_fid_metric(features.shape[1], self.device)
            if self.reference is not None:
                rank0 = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
                load_reference_into(self.fid, self.reference, on_this_rank=rank0)
        self.fid.update(features, real=False)
        self.logits.append(logits.float().cpu())
        self.num_images += features.shape[0]

    def compute(self) -> dict[str, float | int | None]:
        """``{"fid", "is_mean", "is_std", "num_images"}`` over every rank's images (call on every rank)."""
        logits = torch.cat(self.logits) if self.logits else torch.empty(0, 0)
        num_images = self.num_images
        fid = None
        if torch.distributed.is_initialized():
            # Slices are contiguous in sample order, so rank order is sample order.
            parts: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(parts, logits)
            logits = torch.cat([p for p in parts if p.numel()])
            num_images = logits.shape[0]
        if self.reference is not None:
            if self.fid is None or num_images < 2:
                raise GenError(f"FID needs at least 2 images, got {num_images}")
            fid = float(self.fid.compute())
        is_mean, is_std = inception_score(logits, min(self.is_splits, num_images))
        return {"fid": fid, "is_mean": is_mean, "is_std": is_std, "num_images": num_images}


class DatasetScorer:
    """Accumulates generated images with their labels and scores them with the dataset's own metric.

    The metric is the dataset's ``evaluate_samples(x, y)`` (the ``shapes`` oracle, for one): it sees
    every rank's images at once, as float (N, C, H, W) in [-1, 1] decoded from the uint8 samples, so
    it scores exactly what ``gen sample`` would save.

    Args:
        evaluate: ``evaluate_samples`` of the dataset the checkpoint was trained on.
    """

    def __init__(self, evaluate: Callable[[Tensor, Tensor], dict[str, float]]):
        self.evaluate = evaluate
        self.images: list[Tensor] = []
        self.labels: list[Tensor] = []

    def add(self, images: np.ndarray | Tensor, labels: np.ndarray | Tensor | None = None) -> None:
        """Add (B, H, W, C) uint8 images and their (B,) class labels (in sample order)."""
        if labels is None:
            raise GenError("the dataset's metric needs the class label of every sample")
        self.images.append(torch.as_tensor(np.asarray(images)))
        self.labels.append(torch.as_tensor(np.asarray(labels)).long())

    def compute(self) -> dict[str, float | int]:
        """The metric's scores and ``num_images`` over every rank's images (call on every rank)."""
        images = torch.cat(self.images) if self.images else torch.empty(0, 0, 0, 0, dtype=torch.uint8)
        labels = torch.cat(self.labels) if self.labels else torch.empty(0, dtype=torch.long)
        if torch.distributed.is_initialized():
            # Slices are contiguous in sample order, so rank order is sample order.
            parts: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(parts, (images, labels))
            images = torch.cat([p[0] for p in parts if p[1].numel()])
            labels = torch.cat([p[1] for p in parts if p[1].numel()])
        if labels.numel() == 0:
            raise GenError("no images to score")
        scores = self.evaluate(from_uint8(images), labels)
        return {**{k: float(v) for k, v in scores.items()}, "num_images": int(labels.numel())}


def reference_stats_of(
    batches: Iterable[np.ndarray], extractor: nn.Module, *, device: Any = None, source: str | None = None
) -> ReferenceStats:
    """Reference statistics (mu, sigma) of real images given as (B, H, W, C) uint8 batches."""
    metric = None
    n = 0
    with torch.no_grad():
        for batch in batches:
            features, _ = extractor(_to_nchw(batch, device))
            if metric is None:
                metric = make_fid_metric(features.shape[1], device)
            metric.update(features.double(), real=True)
            n += features.shape[0]
    if metric is None or n < 2:
        raise GenError(f"reference statistics need at least 2 images, got {n} from {source}")
    mu, sigma = stats_from_features(metric.real_features_sum, metric.real_features_cov_sum, n)
    return ReferenceStats(mu=mu, sigma=sigma, num_samples=n, source=source)


def load_reference(path: str | Path, extractor: nn.Module, *, device: Any = None, batch_size: int = 100):
    """Reference statistics from a stats ``.npz`` (``mu``, ``sigma``), or computed from images (a folder,
    an ADM ``.npz`` or a recipe's dataset)."""
    if is_stats_file(path):
        return load_reference_stats(path)
    return reference_stats_of(image_batches(path, batch_size), extractor, device=device, source=str(path))


def fid_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The Fréchet distance ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` in float64."""
    from torchmetrics.image.fid import _compute_fid

    t = [torch.as_tensor(a, dtype=torch.float64) for a in (mu1, sigma1, mu2, sigma2)]
    return float(_compute_fid(*t))


__all__ = [
    "WEIGHTS_ENV",
    "WEIGHTS_NAME",
    "WEIGHTS_URL",
    "DatasetScorer",
    "ReferenceStats",
    "Scorer",
    "count_images",
    "feature_extractor",
    "fid_from_stats",
    "image_batches",
    "inception_score",
    "is_stats_file",
    "load_inception",
    "load_reference",
    "load_reference_into",
    "load_reference_stats",
    "reference_stats_of",
    "stats_from_features",
    "use_feature_extractor",
    "weights_path",
]
