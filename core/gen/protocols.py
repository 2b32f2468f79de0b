"""The contracts between the core and the components plugins register.

Everything here is a protocol or a plain record, and nothing here imports the rest of ``gen``:

- `DataSpec` and `Dataset` (what every registered dataset is), plus the optional
  capabilities a dataset may have, each a ``runtime_checkable`` protocol that the engines test with
  ``isinstance`` (never ``getattr``): `ScoresSamples` (its own metric), `ListsImages`
  (one finite pass, for FID reference statistics), `KnowsSize` (epochs);
- `SpecFromConfig`: a dataset *config* that knows its `DataSpec` without reading data; `LocalPaths`:
  one that names the local files and folders it reads;
- `Prediction`, `Schedule`, `Solver` and `VelocityFn`: the objective's and
  the sampling driver's view of registered predictions, schedules and samplers on the linear path
  ``z_t = t * x + (1 - t) * eps`` (t = 0 noise, t = 1 data), whose velocity is ``v = x - eps``;
- `Logger`: what a registered training logger receives (metrics lines, grids, scores).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal, Protocol, runtime_checkable

import attrs
import torch
from torch import Tensor

# -- data ---------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DataSpec:
    """The shape and labels of a dataset's samples.

    Attributes:
        shape: One sample's shape: ``(C, H, W)`` for images (values in [-1, 1]), ``(D,)`` for vectors.
        num_classes: Number of classes; 0 for an unconditional dataset. The label ``num_classes`` is the
            null label used for classifier-free guidance (so an unconditional dataset labels every
            sample 0).
    """

    shape: tuple[int, ...] = attrs.field(converter=lambda s: tuple(int(d) for d in s))
    num_classes: int = attrs.field(default=0, converter=int)

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    def backbone_fields(self) -> dict[str, Any]:
        """Config fields a backbone takes from the data unless the recipe sets them.

        Images give ``input_size`` (H, which must equal W), ``in_channels`` and ``num_classes``;
        vectors give ``input_dim`` and ``num_classes``.
        """
        if self.is_image:
            c, h, w = self.shape
            fields: dict[str, Any] = {"in_channels": c, "num_classes": self.num_classes}
            if h == w:
                fields["input_size"] = h
            return fields
        if len(self.shape) == 1:
            return {"input_dim": self.shape[0], "num_classes": self.num_classes}
        return {"num_classes": self.num_classes}

    def to_json(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "num_classes": self.num_classes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DataSpec:
        return cls(shape=data["shape"], num_classes=data["num_classes"])


@runtime_checkable
class Dataset(Protocol):
    """A registered dataset.

    ``train_batches`` yields an endless, deterministic stream for training: batch ``k`` of a given
    ``(seed, rank, world_size, batch_size)`` is always the same, so that resuming at ``start_batch``
    continues the stream exactly (streaming datasets may only approximate this; they say so).
    ``x`` has shape ``(B, *spec.shape)`` (float32), ``y`` shape ``(B,)`` (int64).
    """

    spec: DataSpec

    def train_batches(
        self, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start_batch: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]: ...


@runtime_checkable
class ScoresSamples(Protocol):
    """A dataset with a metric of its own (the ``shapes`` oracle, the ``manifold`` spiral distance).

    ``evaluate_samples(x, y)`` scores generated samples ``x`` (N, *spec.shape) in the data's range with
    the labels ``y`` (N,) they were generated for.
    """

    def evaluate_samples(self, x: Tensor, y: Tensor) -> dict[str, float]: ...


@runtime_checkable
class RanksScores(Protocol):
    """A dataset metric that says which score is better how: ``primary_metric = (key, "max" | "min")``
    (the best row of a sweep and screening follow it)."""

    primary_metric: tuple[str, str]


@runtime_checkable
class ListsImages(Protocol):
    """A dataset that can make one finite pass over its images (reference statistics for FID)."""

    def iter_images(self, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]: ...


@runtime_checkable
class KnowsSize(Protocol):
    """A dataset of known size (``train.epochs``, ``train.warmup_epochs``)."""

    @property
    def num_samples(self) -> int: ...


@runtime_checkable
class SpecFromConfig(Protocol):
    """A dataset config that tells its [`DataSpec`][gen.DataSpec] without reading data (None: it
    cannot tell).

    The recipe loader uses it to fill the backbone's data-derived fields, so that ``gen recipe show``
    prints the model that will really be built.
    """

    def spec(self) -> DataSpec | None: ...


@runtime_checkable
class ShapeFromConfig(Protocol):
    """A dataset config that tells one sample's shape without reading data, even where the classes
    need the data (an image folder not mounted on this machine): ``sample_shape() -> (C, H, W)``.

    The backbone's shape fields (``input_size``, ``in_channels``) are then filled at recipe load, so a
    valid recipe (``data.image_size = 48``, ``backbone.patch_size = 12``) is checked against its own
    image size, never against the backbone's default.
    """

    def sample_shape(self) -> tuple[int, ...]: ...


@runtime_checkable
class LocalPaths(Protocol):
    """A dataset config that names the local files and folders it reads: ``local_paths()`` returns
    ``(key, path)`` pairs, a key once per path (a brace pattern expanded, remote URLs left out, an
    unset path as ``""``).

    ``gen train`` and ``gen recipe check`` look for each before any work, so that a typo is one line
    naming the recipe file, ``[data]``, the key and the nearest path that exists, not the dataset's own
    error after the run has started.
    """

    def local_paths(self) -> list[tuple[str, str]]: ...


# -- the path: predictions, schedules, solvers --------------------------------------------------------

#: The three quantities a prediction can produce, and so the three loss spaces.
Space = Literal["x", "eps", "v"]
SPACES: tuple[str, ...] = ("x", "eps", "v")

#: ``velocity_fn(z, t) -> v``: ``z`` of shape (B, ...), ``t`` a float or a 0-dim tensor, ``v`` shaped like z.
VelocityFn = Callable[[Tensor, "Tensor | float"], Tensor]

#: A registered sampler: ``solver(velocity_fn, z0, timesteps) -> z1`` where ``timesteps`` is the 1-D
#: grid from 0 (noise, ``z0``) to 1 (data, the returned ``z1``), or a piece of it that starts or ends
#: inside (0, 1) where the driver cuts the grid at the guidance interval's ends (``split_interval``).
Solver = Callable[[VelocityFn, Tensor, Tensor], Tensor]

#: A registered time grid: ``grid(steps) -> t``, the (steps + 1,) float64 times from 0 (noise) to 1
#: (data), strictly increasing. Solvers integrate over it; guidance intervals are in t, not in steps.
TimeGrid = Callable[[int], Tensor]


@runtime_checkable
class Prediction(Protocol):
    """A parameterization of the network output (a registered ``prediction``: x, eps, v, ...).

    Each method maps the network output ``out`` at ``(z, t)`` to one quantity of the path. ``out`` and
    ``z`` have shape (B, ...); ``t`` is broadcastable to them: a float or a tensor of shape
    (B, 1, ..., 1). Divisions by ``1 - t`` or ``t`` are clamped at ``t_eps``.
    """

    def to_x(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        """x̂: the clean sample."""
        ...

    def to_eps(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        """ε̂: the noise."""
        ...

    def to_v(self, out: Tensor, z: Tensor, t: Tensor | float, *, t_eps: float) -> Tensor:
        """v̂: the velocity dz/dt."""
        ...

    def target(self, x: Tensor, eps: Tensor) -> Tensor:
        """What a perfect network outputs for the pair (x, eps): x, eps or x - eps."""
        ...


@runtime_checkable
class ClampsAtDataEnd(Protocol):
    """A prediction whose velocity is formed from a data prediction with the clamp of published JiT,
    ``v = (x̂ - z) / max(1 - t, t_eps)`` (x-prediction): ``clamps_at_data_end = True``."""

    clamps_at_data_end: bool


@runtime_checkable
class DataClampedVelocity(Protocol):
    """A velocity field that says where its data-end clamp begins: ``t_eps`` (0 for none).

    For ``t > 1 - t_eps`` it is ``(x̂ - z) / t_eps``, a relaxation toward x̂ rather than the flow's
    velocity. Solvers that work in the data prediction read it to recover ``x̂ = z + max(1 - t, t_eps) v``
    exactly and to integrate that last stretch exactly; the others need not know.
    """

    t_eps: float

    def __call__(self, z: Tensor, t: Tensor | float) -> Tensor: ...


@runtime_checkable
class Schedule(Protocol):
    """How training draws t (a registered ``schedule``)."""

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """``n`` times in (0, 1), shape (n,), float32 on ``device``; all randomness from ``generator``."""
        ...


# -- autoencoders -------------------------------------------------------------------------------------


@runtime_checkable
class Autoencoder(Protocol):
    """Maps images to the space a model is trained in and back (a registered ``autoencoder``).

    ``identity`` (pixel space) is the default; ``sd_vae`` is the Stable Diffusion VAE DiT and SiT use.
    Latents are already multiplied by the scale factor (0.18215 for the SD VAE), so that they have about
    unit variance, as the published DiT training does.
    """

    def latent_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C, H, W) of the images -> (c, h, w) of their latents; ``ValueError`` if it cannot encode them."""
        ...

    def image_shape(self, latent_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(c, h, w) of latents -> (C, H, W) of the decoded images."""
        ...

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(B, C, H, W) images in [-1, 1] -> (B, c, h, w) scaled latents (float32)."""
        ...

    def decode(self, z: Tensor) -> Tensor:
        """(B, c, h, w) scaled latents -> (B, C, H, W) images in about [-1, 1] (float32, not clipped)."""
        ...

    def identity(self) -> dict[str, Any]:
        """What a latent dataset must have been encoded with: JSON-able, e.g. ``{"name": "sd_vae",
        "latent_channels": 4, "scale": 0.18215, "factor": 8}`` (an empty dict for pixel space)."""
        ...


@runtime_checkable
class EncodedData(Protocol):
    """A dataset of latents (``gen data encode``): ``encoded_by`` is the
    [`Autoencoder.identity`][gen.Autoencoder.identity] of the autoencoder that made it, checked against
    the recipe's ``[autoencoder]`` before training."""

    encoded_by: dict[str, Any]


# -- logging ------------------------------------------------------------------------------------------


@runtime_checkable
class Logger(Protocol):
    """A registered training logger (``train.loggers``): it receives what the run reports, on rank 0 only,
    and only where the host already looks (metrics lines, grids, scores), never inside a training step.

    [`open`][gen.Logger.open] comes first, with the run it logs (a [`gen.RunInfo`][]: its files, the
    resolved recipe as a table, the first step, whether it resumed); [`close`][gen.Logger.close] comes
    last for a logger that opened, also when training failed (``ok`` False). Every step is the optimizer
    step the values belong to. An ``open`` that cannot start raises [`gen.GenError`][]: one line, before
    any training step.
    """

    def open(self, run: Any) -> None:
        """Start logging ``run`` (a [`gen.RunInfo`][])."""
        ...

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        """One metrics line (what ``metrics.jsonl`` holds): ``step``, ``time``, ``loss``, ``loss_by_t``
        (a list, one loss per quarter of t), ``grad_norm``, ``lr``, ``images_per_s``, ``mfu`` and
        ``peak_memory_mb`` (None where unknown) and any loss terms of the objective (``loss_vb``)."""
        ...

    def image(self, step: int, tag: str, image: Any) -> None:
        """An image: a sample grid (``tag`` ``samples``), an (H, W, C) uint8 numpy array."""
        ...

    def scores(self, step: int, scores: dict[str, float], record: dict[str, Any]) -> None:
        """Scores of the samples at ``step`` with the dataset's metric; ``record`` is the whole line of
        ``eval.jsonl`` (with the sample count, the seed and the sampling settings)."""
        ...

    def close(self, ok: bool) -> None:
        """The run ended: finished or stopped by a signal (``ok``), or failed with an error."""
        ...


__all__ = [
    "SPACES",
    "Logger",
    "Autoencoder",
    "EncodedData",
    "ShapeFromConfig",
    "ClampsAtDataEnd",
    "DataClampedVelocity",
    "DataSpec",
    "Dataset",
    "KnowsSize",
    "ListsImages",
    "Prediction",
    "RanksScores",
    "Schedule",
    "ScoresSamples",
    "Solver",
    "Space",
    "SpecFromConfig",
    "TimeGrid",
    "VelocityFn",
]
