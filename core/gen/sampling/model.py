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
from gen.precision import autocast, describe_precision, matrix_width, resolve_precision
from gen.protocols import DataSpec
from gen.recipe import Recipe, build_backbone
from gen.runs.checkpoint import weights_name
from gen.runs.run_dir import Checkpoint, load_checkpoint
from gen.sampling import driver
from gen.sampling.config import SampleConfig, sample_config_with
from gen.sampling.guidance import Guidance, Guide
from gen.sampling.guides import check_guide, load_guide
from gen.sampling.labels import class_labels, shard
from gen.sampling.noise import sample_noise
from gen.sampling.settings import SamplingSettings
from gen.seeds import GLOBAL_RNG_LOCK

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
        """``fp32`` or ``bf16``: what ``sample`` asks for, its ``auto`` being the run's ``train.precision``
        (whose ``auto`` is decided by the device and, on a CPU, the model's width: `gen.precision`)."""
        return resolve_precision(self._asked(sample), self.device, matrix_width(self.model))

    def describe_precision(self, sample: SampleConfig) -> str:
        """`precision` with the reason for an ``auto`` (the first line of ``gen sample``)."""
        return describe_precision(self._asked(sample), self.device, matrix_width(self.model))

    def _asked(self, sample: SampleConfig) -> str:
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
        noise: Tensor | None = None,
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
            noise: (N, *spec.shape) start noise indexed by global index (an inversion's), in place of
                the noise ``seed`` keys.
        """
        self.use_weights(settings.ema)
        objective, s = self.recipe.objective, settings.sample
        guide = self.guide_for(s)
        k = self.spec.num_classes
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        for start in range(0, len(indices), batch_size):
            part = indices[start : start + batch_size]
            if noise is not None:
                start_noise = noise[part.start : part.stop].to(self.device, torch.float32)  # (b, *shape)
            else:
                start_noise = sample_noise(
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
                    start_noise,
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
        settings = self.settings(self._ema(ema), **sample)
        parts = self.generate(range(n), labels, settings, seed=seed, batch_size=batch_size)
        return torch.cat([x for _, x in parts])

    def invert(
        self,
        images: Tensor,
        labels: list[int] | np.ndarray | Tensor | None = None,
        *,
        ema: str | float | EmaLength | None = "default",
        fixed_point: int = 1,
        seed: int = 0,
        batch_size: int = 64,
        **sample: Any,
    ) -> Tensor:
        """The start noise from which [`regenerate`][gen.ModelSampler.regenerate] with the same settings
        draws ``images`` (N, C, H, W) in [-1, 1] back: ``(N, *spec.shape)`` float32 (`gen.invert_batches`;
        the flow's ODE run backwards, docs/inversion.md).

        Args:
            labels: The class of each image; None: the null label (the unconditional field).
            fixed_point: Fixed-point iterations per solver step (0: the explicit reverse step alone).
            ema, batch_size, **sample: As for [`sample`][gen.ModelSampler.sample] (one-step solvers).

        Example:
            >>> noise = model.invert(images, steps=16, sampler="euler", cfg=1.0)
            >>> again = model.regenerate(noise, steps=16, sampler="euler", cfg=1.0)  # ~ images
        """
        from gen.sampling.inversion import invert_batches

        y = self.labels_for(labels, len(images))
        settings = self.settings(self._ema(ema), **sample)
        parts = invert_batches(
            self, images, y, settings, batch_size=batch_size, fixed_point=fixed_point, seed=seed
        )
        return torch.cat([z for _, z in parts])

    def regenerate(
        self,
        noise: Tensor,
        labels: list[int] | np.ndarray | Tensor | None = None,
        *,
        ema: str | float | EmaLength | None = "default",
        batch_size: int = 64,
        **sample: Any,
    ) -> Tensor:
        """Samples ``(N, *output_spec.shape)`` from given start ``noise`` (N, *spec.shape), e.g. an
        inversion's; ``labels`` as for [`invert`][gen.ModelSampler.invert] (None: the null label)."""
        y = self.labels_for(labels, len(noise))
        settings = self.settings(self._ema(ema), **sample)
        parts = self.generate(range(len(noise)), y, settings, seed=0, batch_size=batch_size, noise=noise)
        return torch.cat([x for _, x in parts])

    def labels_for(self, labels: Any, n: int) -> np.ndarray:
        """The (n,) labels of `invert` and `regenerate`: ``labels`` repeated, checked (a class id out of
        range is one line); None: the null label ``num_classes`` (0 for an unconditional model)."""
        if labels is None:
            return np.full(n, self.spec.num_classes, dtype=np.int64)
        given = np.asarray(torch.as_tensor(labels).cpu(), dtype=np.int64).reshape(-1).tolist()
        return class_labels(n, self.spec.num_classes, labels=given)

    def _ema(self, ema: Any) -> Any:
        if self.checkpoint is None:
            return None  # a model in memory: its own weights
        return repr(ema) if isinstance(ema, float) else ema  # checked against the stored EMAs, like --ema

    def images(
        self,
        indices: range,
        labels: np.ndarray | Tensor,
        settings: SamplingSettings,
        *,
        seed: int,
        batch_size: int,
        on_step: BatchStepCallback | None = None,
        noise: Tensor | None = None,
    ) -> Iterator[tuple[range, np.ndarray]]:
        """`generate` as (b, H, W, C) uint8 images, as they are saved and scored."""
        if not self.output_spec.is_image:
            raise GenError(
                f"the model draws vectors of shape {self.output_spec.shape}, not images; use generate() (gen toy run "
                "plots the toy experiment)"
            )
        parts = self.generate(
            indices, labels, settings, seed=seed, batch_size=batch_size, on_step=on_step, noise=noise
        )
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
