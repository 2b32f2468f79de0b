"""Sampling a trained model: the one path from weights to images, used by the training engine's grids
and scores, ``gen sample``, ``gen eval`` and plugins (``gen toy``).

Sample ``i`` is a function of ``(seed, i)`` alone: its noise comes from `gen.sample_noise` keyed by
the index, and its label from the index (`class_labels`), so the images do not depend on the
batch size or on how many processes share the work. Under ``torchrun`` rank ``r`` of ``W`` draws the
contiguous slice `shard` of the ``N`` indices; together they draw each index exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gen.errors import GenError
from gen.images import to_uint8
from gen.latent_space import build_autoencoder
from gen.power_ema import EmaKey, EmaLength
from gen.precision import autocast
from gen.protocols import DataSpec
from gen.recipe import Recipe, build_backbone
from gen.runs.checkpoint import weights_name
from gen.runs.run_dir import Checkpoint, load_checkpoint
from gen.sampling import driver
from gen.sampling.config import SampleConfig, sample_config_with
from gen.sampling.guidance import Guidance, Guide
from gen.sampling.guides import check_guide, load_guide
from gen.sampling.noise import sample_noise
from gen.sampling.settings import SamplingSettings
from gen.seeds import GLOBAL_RNG_LOCK

# -- which samples ----------------------------------------------------------------------------------


def shard(n: int, rank: int, world_size: int) -> range:
    """The indices rank ``rank`` of ``world_size`` generates: ``[rank n / W, (rank + 1) n / W)``.

    The slices are contiguous, disjoint, cover ``range(n)`` and differ in size by at most one.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    return range(rank * n // world_size, (rank + 1) * n // world_size)


def class_labels(
    n: int | None, num_classes: int, *, labels: list[int] | None = None, per_class: int | None = None
) -> np.ndarray:
    """The label of every sample index, (N,) int64.

    - ``labels``: the list repeated (sample i gets ``labels[i % len(labels)]``);
    - ``per_class``: ``per_class`` images of each class, class-major (N = per_class * num_classes);
    - neither: balanced and class-major, sample i gets ``i * K // N`` (for N = 50 000 and K = 1000
      that is 50 images per class, as the JiT evaluation draws them).

    An unconditional model (K = 0) labels every sample with the null label 0.
    """
    if labels is not None and per_class is not None:
        raise GenError("give either --labels or --per-class, not both")
    if num_classes == 0:
        if labels is not None or per_class is not None:
            raise GenError("the model is unconditional (no classes); drop --labels/--per-class")
        return np.zeros(n or 0, dtype=np.int64)
    if per_class is not None:
        if per_class < 1:
            raise GenError(f"--per-class must be >= 1, got {per_class}")
        return np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
    if n is None or n < 1:
        raise GenError(f"--num must be >= 1, got {n}")
    if labels is not None:
        bad = [y for y in labels if not 0 <= y < num_classes]
        if not labels or bad:
            raise GenError(f"--labels must be class ids in [0, {num_classes}), got {labels}")
        return np.resize(np.asarray(labels, dtype=np.int64), n)
    return (np.arange(n, dtype=np.int64) * num_classes) // n


# -- the sampler ------------------------------------------------------------------------------------

_NOTHING_LOADED = object()

#: ``on_step(batch, k, total)``: the solver has done k of its ``total`` steps on the samples ``batch``.
BatchStepCallback = Callable[[range, int, int], None]


class ModelSampler:
    """A trained backbone with everything sampling it needs: the objective it was trained with (its
    prediction, ``t_eps`` and noise scale), its data spec and the run's precision policy.

    Build it from a checkpoint ([`from_checkpoint`][gen.ModelSampler.from_checkpoint]; weights per EMA
    loaded on demand) or from a model in memory (the training engine's grids and scores).

    Args:
        model: The backbone, in eval mode, on ``device``.
        recipe: The run's recipe (its ``[objective]``, ``[sample]`` and ``train.precision``).
        spec: The data the backbone was built for.
        device: Where to sample.
        checkpoint: Where [`use_weights`][gen.ModelSampler.use_weights] loads EMAs from (None for a
            model in memory).
        guides: Guiding models already built, for autoguidance (a model in memory: the training
            engine's); others are read from disk when a setting needs them (`gen.guides`).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        recipe: Recipe,
        spec: DataSpec,
        device: Any = None,
        checkpoint: Checkpoint | None = None,
        guides: dict[Guidance, Guide] | None = None,
    ):
        self.model = model
        self.recipe = recipe
        self.spec = spec
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.checkpoint = checkpoint
        #: The process the model was trained with, built once: it samples every batch.
        self.process = recipe.objective.build_process()
        #: Decodes the model's samples to what is written and scored (identity in pixel space).
        self.autoencoder = build_autoencoder(recipe.autoencoder)
        # The EMA whose weights the model holds (None: the raw ones); nothing loaded yet from a checkpoint.
        self.ema: EmaKey | object = _NOTHING_LOADED if checkpoint is not None else None
        self.guides = dict(guides or {})
        self._loaded_guide: tuple[Guidance, Guide] | None = None  # one guide read from disk at a time

    def precision(self, sample: SampleConfig) -> str:
        """The precision ``sample`` asks for, its ``auto`` being the run's ``train.precision``."""
        return self.recipe.train.precision if sample.precision == "auto" else sample.precision

    @property
    def output_spec(self) -> DataSpec:
        """The spec of what `generate` yields: the model's, or the images its latents decode to."""
        shape = self.autoencoder.image_shape(tuple(self.spec.shape))
        return DataSpec(shape=shape, num_classes=self.spec.num_classes)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint | str, device: Any = None) -> ModelSampler:
        """The backbone of a checkpoint (or of a run's latest), built once; no weights loaded yet."""
        if not isinstance(checkpoint, Checkpoint):
            checkpoint = load_checkpoint(checkpoint)
        device = torch.device(device) if device is not None else torch.device("cpu")
        with GLOBAL_RNG_LOCK:  # its random initial weights, replaced by the checkpoint's
            model = build_backbone(checkpoint.recipe, checkpoint.spec).to(device).eval()
        return cls(
            model, recipe=checkpoint.recipe, spec=checkpoint.spec, device=device, checkpoint=checkpoint
        )

    def settings(self, ema: str | float | EmaLength | None = "default", **given: Any) -> SamplingSettings:
        """The recipe's ``[sample]`` with ``given`` values replacing it, and the EMA named ``ema`` (text
        such as ``0.9999``, ``phema_0.05`` or ``none``; ``default``: the checkpoint's first EMA). A power
        EMA the checkpoint does not store must be reconstructable; a guide of autoguidance must exist and
        fit the model (both checked here, before any sampling)."""
        if isinstance(ema, EmaLength):
            ema = str(ema)
        if isinstance(ema, str):
            if self.checkpoint is None:
                raise GenError("a model in memory has one set of weights; name no EMA (ema=None)")
            ema = self.checkpoint.default_ema() if ema == "default" else self.checkpoint.find_ema(ema)
        sample = sample_config_with(self.recipe.sample, **given)
        try:
            driver.check_sampler(self.recipe.objective, sample)
        except ValueError as e:
            raise GenError(f"[sample] {e}") from None
        if sample.guidance == "auto" and sample.guide not in self.guides:
            check_guide(sample.guide, self._main_path(), self.recipe, self.spec)
        return SamplingSettings(ema=ema, sample=sample)

    def _main_path(self) -> Path | None:
        return self.checkpoint.path if self.checkpoint is not None else None

    def guide_for(self, sample: SampleConfig) -> Guide | None:
        """The guiding model of ``sample`` under autoguidance (None under classifier-free guidance):
        given at construction, else read from disk, keeping the last one read."""
        if sample.guidance != "auto":
            return None
        key = sample.guide
        if key in self.guides:
            return self.guides[key]
        if self._loaded_guide is None or self._loaded_guide[0] != key:
            self._loaded_guide = None  # free the previous guide before reading the next
            guide = load_guide(key, self._main_path(), self.recipe, self.spec, self.device)
            self._loaded_guide = (key, guide)
        return self._loaded_guide[1]

    def use_weights(self, ema: EmaKey) -> None:
        """Load the weights of EMA ``ema`` (None: the raw ones) from the checkpoint, unless loaded."""
        if self.checkpoint is None or ema == self.ema:
            return
        try:
            self.model.load_state_dict(self.checkpoint.load_weights(ema))
        except RuntimeError as e:
            # A readable file of another model: torch's lines after the first say what differs.
            file = self.checkpoint.path / weights_name(ema)
            what = " ".join(line.strip() for line in str(e).splitlines()[1:] if line.strip())[:300]
            raise GenError(
                f"{file} does not hold the run's backbone ({what}); the checkpoint is damaged"
            ) from None
        self.ema = ema

    @torch.no_grad()
    def generate(
        self,
        indices: range,
        labels: np.ndarray | Tensor,
        settings: SamplingSettings,
        *,
        seed: int,
        batch_size: int,
        on_step: BatchStepCallback | None = None,
    ) -> Iterator[tuple[range, Tensor]]:
        """Yield ``(indices of the batch, (b, *output_spec.shape) float32 samples on the CPU)``: latents
        are decoded by the recipe's autoencoder.

        Args:
            indices: Global sample indices (e.g. this rank's `shard`).
            labels: (N,) labels of all N samples, indexed by global index (ignored when unconditional).
            settings: Weights, solver, steps and guidance.
            seed: Sampling seed; sample i's noise depends only on (seed, i).
            batch_size: Samples per forward pass (does not change which samples are drawn).
            on_step: ``on_step(batch, k, steps)`` as the solver does step k of ``steps`` on ``batch`` (the
                indices of the batch being drawn; see `gen.sample`); the samples do not change.
        """
        self.use_weights(settings.ema)
        objective, s = self.recipe.objective, settings.sample
        guide = self.guide_for(s)
        k = self.spec.num_classes
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        for start in range(0, len(indices), batch_size):
            part = indices[start : start + batch_size]
            noise = sample_noise(
                part,
                tuple(self.spec.shape),
                seed=seed,
                noise_scale=self.process.noise_scale,
                device=self.device,
            )  # (b, *shape)
            y = labels[part.start : part.stop].to(self.device) if k else None  # (b,)
            steps = partial(on_step, part) if on_step is not None else None
            with autocast(self.precision(s), self.device):
                x = driver.sample(
                    self.model,
                    noise,
                    y,
                    s,
                    objective,
                    num_classes=k,
                    guide=guide,
                    on_step=steps,
                    process=self.process,
                )
            x = self.autoencoder.decode(x.float())  # (b, *output_spec.shape)
            yield part, x.float().cpu()

    def sample(
        self,
        labels: list[int] | np.ndarray | Tensor | None = None,
        *,
        num: int | None = None,
        seed: int = 0,
        ema: str | float | EmaLength | None = "default",
        batch_size: int = 64,
        **sample: Any,
    ) -> Tensor:
        """Samples in one call, for notebooks: ``(N, *output_spec.shape)`` float32 in the data's range.

        Args:
            labels: The class of each sample (an unconditional model takes None); without labels,
                ``num`` samples balanced over the classes, as ``gen sample --num`` draws them.
            num: How many, when no labels are given.
            seed: Sample i's noise depends only on (seed, i), as in ``gen sample``.
            ema: ``default`` (the first EMA), a decay such as ``"0.9999"``, a power EMA such as
                ``"phema_0.05"`` (reconstructed when not stored), or ``"none"``.
            batch_size: Samples per forward pass (does not change the samples).
            **sample: ``[sample]`` keys to override: ``cfg=2.9``, ``steps=12``, ``sampler="dpmpp_3m"``,
                autoguidance with ``guidance="auto", guide_step=1000``...

        Example:
            >>> model = gen.load("runs/demo")
            >>> x = model.sample([0, 1, 2], cfg=2.0, steps=12, sampler="dpmpp_3m")  # (3, 3, 32, 32)
        """
        if labels is not None:
            given = np.asarray(torch.as_tensor(labels).cpu(), dtype=np.int64).reshape(-1)
            n = len(given)
            # Checked as gen sample --labels is: a class id out of range is one line, not an IndexError.
            labels = class_labels(n, self.spec.num_classes, labels=given.tolist()) if n else given
        else:
            if num is None:
                raise GenError("give labels, or num for samples balanced over the classes")
            labels, n = class_labels(num, self.spec.num_classes), num
        if self.checkpoint is None:
            ema = None  # a model in memory: its own weights
        elif isinstance(ema, float):
            ema = repr(ema)  # checked against the stored EMAs, like --ema
        settings = self.settings(ema, **sample)
        parts = self.generate(range(n), labels, settings, seed=seed, batch_size=batch_size)
        return torch.cat([x for _, x in parts])

    def images(
        self,
        indices: range,
        labels: np.ndarray | Tensor,
        settings: SamplingSettings,
        *,
        seed: int,
        batch_size: int,
        on_step: BatchStepCallback | None = None,
    ) -> Iterator[tuple[range, np.ndarray]]:
        """`generate` as (b, H, W, C) uint8 images, as they are saved and scored."""
        if not self.output_spec.is_image:
            raise GenError(
                f"the model draws vectors of shape {self.output_spec.shape}, not images; use generate() (gen toy run "
                "plots the toy experiment)"
            )
        parts = self.generate(indices, labels, settings, seed=seed, batch_size=batch_size, on_step=on_step)
        for part, x in parts:
            yield part, to_uint8(x)


__all__ = [
    "ModelSampler",
    "load",
    "class_labels",
    "shard",
]


def load(path: str, device: Any = None) -> ModelSampler:
    """A trained model to sample from: a run directory (its latest checkpoint) or a checkpoint folder.

    ``gen.load("runs/demo").sample([0, 1, 2], cfg=2.0)`` (a [`gen.ModelSampler`][], see
    [`sample`][gen.ModelSampler.sample]); the backbone is ``.model``, the recipe ``.recipe``.
    """
    return ModelSampler.from_checkpoint(path, device)
