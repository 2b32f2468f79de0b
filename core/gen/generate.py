"""Sampling a trained checkpoint: ``gen sample``.

Sample ``i`` is a function of ``(seed, i)`` alone: its noise comes from :func:`gen.sample_noise` keyed by
the index, and its label from the index, so the images do not depend on the batch size or on how many
processes share the work. Under ``torchrun`` rank ``r`` of ``W`` draws the contiguous slice
``[r N / W, (r + 1) N / W)`` of the ``N`` indices; together they draw each index exactly once.

Outputs, chosen by ``--out``:

- ``NAME.png``: one grid (rows of ``--per-class`` images per class when given);
- ``NAME.npz``: the ADM evaluation layout, ``arr_0`` (N, H, W, C) uint8 and, for a class-conditional
  model, ``arr_1`` (N,) int64 labels;
- anything else: a folder of PNGs named ``<index>_<label>.png`` (``<index>.png`` when unconditional).
"""

from __future__ import annotations

import contextlib
import math
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import torch
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import nn

from gen.config import ComponentSpec
from gen.data import DataSpec
from gen.errors import GenError
from gen.images import make_grid, to_uint8
from gen.recipe import Recipe, load_recipe
from gen.sampling import sample, sample_noise
from gen.training import checkpoint as ckpt
from gen.training import distributed
from gen.training.distributed import DistInfo

OutputKind = Literal["png", "npz", "dir"]


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


# -- the checkpoint ---------------------------------------------------------------------------------


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or the latest checkpoint of a run directory."""
    path = Path(path)
    if (path / "meta.json").is_file():
        return path
    if path.is_dir():
        latest = ckpt.latest_checkpoint(path)
        if latest is not None:
            return latest
    raise GenError(
        f"{path} is neither a run directory with checkpoints nor a checkpoint (RUN/checkpoints/step_*); "
        "train one with `gen train RECIPE --run-dir RUN`"
    )


@attrs.frozen
class Checkpoint:
    """A checkpoint and what is needed to rebuild its model without the training data."""

    path: Path
    run_dir: Path
    recipe: Recipe
    spec: DataSpec
    meta: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def ema_decays(self) -> list[float]:
        return [float(d) for d in self.meta.get("ema_decays", [])]

    def default_ema(self) -> str:
        """The first EMA, or ``none`` (the raw weights) for a run without EMA."""
        return repr(self.ema_decays[0]) if self.ema_decays else "none"

    def canonical_ema(self, ema: str) -> str:
        """``ema`` as the checkpoint names it (``0.99990`` -> ``0.9999``; ``none``/``raw`` -> ``none``)."""
        if ema.strip().lower() in ("none", "raw"):
            return "none"
        try:
            decay = float(ema)
        except ValueError:
            decay = math.nan
        for d in self.ema_decays:
            if d == decay:
                return repr(d)
        known = ", ".join([repr(d) for d in self.ema_decays] + ["none"])
        raise GenError(f"--ema {ema}: the checkpoint {self.path} has no such EMA; choose one of: {known}")

    def weights_file(self, ema: str) -> Path:
        """The safetensors file of ``ema`` (a decay such as ``0.9999``, or ``none`` for the raw weights)."""
        ema = self.canonical_ema(ema)
        return self.path / ("model.safetensors" if ema == "none" else f"ema_{ema}.safetensors")


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint (or a run's latest) with the run's resolved recipe."""
    path = resolve_checkpoint(path)
    run_dir = path.parent.parent
    recipe_file = run_dir / "recipe.toml"
    if not recipe_file.is_file():
        raise GenError(f"{recipe_file} is missing: the run directory of {path} must hold its recipe.toml")
    recipe = load_recipe(recipe_file)
    meta = ckpt.read_meta(path)
    if "data_spec" in meta:
        spec = DataSpec(
            shape=tuple(int(s) for s in meta["data_spec"]["shape"]),
            num_classes=int(meta["data_spec"]["num_classes"]),
        )
    else:  # checkpoints written before the spec was stored: ask the dataset
        spec = recipe.data.build().spec
    return Checkpoint(path=path, run_dir=run_dir, recipe=recipe, spec=spec, meta=meta)


# -- how to sample ----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SampleSettings:
    """One way to sample a checkpoint (a row of a sweep)."""

    ema: str
    cfg: float
    cfg_interval: tuple[float, float]
    steps: int
    sampler: str | ComponentSpec

    @property
    def sampler_name(self) -> str:
        return self.sampler.name if isinstance(self.sampler, ComponentSpec) else self.sampler

    def describe(self) -> dict[str, Any]:
        """JSON-able: ema, cfg, interval, steps, sampler."""
        return {
            "ema": self.ema,
            "cfg": self.cfg,
            "interval": list(self.cfg_interval),
            "steps": self.steps,
            "sampler": self.sampler_name,
        }


def default_settings(checkpoint: Checkpoint, **given: Any) -> SampleSettings:
    """The recipe's ``[sample]`` section and the checkpoint's first EMA, with ``given`` values (not None)
    replacing them."""
    s = checkpoint.recipe.sample
    values: dict[str, Any] = {
        "ema": checkpoint.default_ema(),
        "cfg": s.cfg,
        "cfg_interval": tuple(s.cfg_interval),
        "steps": s.steps,
        "sampler": s.sampler,
    }
    values.update({k: v for k, v in given.items() if v is not None})
    values["ema"] = checkpoint.canonical_ema(values["ema"])  # an unknown EMA fails before any work
    settings = SampleSettings(**values)
    low, high = settings.cfg_interval
    if not 0.0 <= low <= high <= 1.0:
        raise GenError(f"--interval {low},{high}: need 0 <= low <= high <= 1")
    if settings.steps < 1 or settings.cfg < 0:
        raise GenError(f"--steps must be >= 1 and --cfg >= 0, got {settings.steps} and {settings.cfg}")
    return settings


class CheckpointSampler:
    """The checkpoint's backbone, built once; weights swapped per EMA; batches of uint8 images.

    Args:
        checkpoint: From :func:`load_checkpoint`.
        device: Where to run (default: the device of this process, see ``gen.training.distributed``).
    """

    def __init__(self, checkpoint: Checkpoint, device: Any = None):
        from gen.training.engine import build_backbone

        spec = checkpoint.spec
        if not spec.is_image:
            raise GenError(
                f"{checkpoint.path}: the model draws vectors of shape {spec.shape}, not images, and "
                "gen sample and gen eval work on images; train.eval_samples scores such a run at the end, "
                "and gen toy run plots the toy experiment"
            )
        self.checkpoint = checkpoint
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.model: nn.Module = build_backbone(checkpoint.recipe, checkpoint.spec).to(self.device).eval()
        self.ema: str | None = None
        precision = checkpoint.recipe.train.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        self.autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16) if precision == "bf16" else None
        )

    def use_weights(self, ema: str) -> None:
        """Load the weights of EMA ``ema`` (or ``none``), unless they are already loaded."""
        if ema == self.ema:
            return
        state = ckpt.load_weights(self.checkpoint.weights_file(ema))
        self.model.load_state_dict(state)
        self.ema = ema

    @torch.no_grad()
    def generate(
        self,
        indices: range,
        labels: np.ndarray,
        settings: SampleSettings,
        *,
        seed: int,
        batch_size: int,
    ) -> Iterator[tuple[range, np.ndarray]]:
        """Yield ``(indices of the batch, (b, H, W, C) uint8 images)`` for the given sample indices.

        Args:
            indices: Global sample indices (e.g. this rank's :func:`shard`).
            labels: (N,) labels of all N samples, indexed by global index.
            settings: EMA, guidance, steps and solver.
            seed: Sampling seed; sample i's noise depends only on (seed, i).
            batch_size: Images per forward pass (does not change the images).
        """
        spec = self.checkpoint.spec
        self.use_weights(settings.ema)
        objective = self.checkpoint.recipe.objective
        for start in range(0, len(indices), batch_size):
            part = indices[start : start + batch_size]
            noise = sample_noise(
                part, tuple(spec.shape), seed=seed, noise_scale=objective.noise_scale, device=self.device
            )  # (b, C, H, W)
            y = torch.as_tensor(labels[part.start : part.stop], device=self.device)  # (b,)
            with self.autocast or contextlib.nullcontext():
                x = sample(
                    self.model,
                    noise,
                    y if spec.num_classes else None,
                    prediction=objective.prediction,
                    sampler=settings.sampler,
                    steps=settings.steps,
                    cfg=settings.cfg,
                    cfg_interval=settings.cfg_interval,
                    t_eps=objective.t_eps,
                    num_classes=spec.num_classes,
                )  # (b, C, H, W) in [-1, 1]
            yield part, to_uint8(x.float())


# -- outputs ----------------------------------------------------------------------------------------


def output_kind(out: str | Path) -> OutputKind:
    suffix = Path(out).suffix.lower()
    if suffix == ".png":
        return "png"
    if suffix == ".npz":
        return "npz"
    if suffix and not Path(out).is_dir():
        raise GenError(
            f"--out {out}: end it in .png (a grid) or .npz (ADM arrays), or give a folder (one PNG per image)"
        )
    return "dir"


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(tmp, format="PNG")
    tmp.replace(path)


def image_name(index: int, label: int | None, n: int) -> str:
    """``000123_207.png`` (index and label; zero-padded to at least 6 digits) or ``000123.png``."""
    width = max(6, len(str(max(n - 1, 0))))
    return f"{index:0{width}d}_{label}.png" if label is not None else f"{index:0{width}d}.png"


def write_adm_npz(path: Path, parts: list[np.ndarray], labels: np.ndarray | None) -> Path:
    """Write ``arr_0`` (the concatenation of ``parts``, each (n_i, H, W, C) uint8) and ``arr_1`` (labels)
    as an ``.npz`` that ``np.load`` reads, streaming the parts so that N images never sit in memory twice."""
    n = sum(p.shape[0] for p in parts)
    shape = (n, *parts[0].shape[1:])
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open("arr_0.npy", "w", force_zip64=True) as f:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False}
            np.lib.format.write_array_header_2_0(f, {**header, "shape": shape})
            for part in parts:
                for i in range(0, part.shape[0], 256):
                    f.write(np.ascontiguousarray(part[i : i + 256]).tobytes())
        if labels is not None:
            with zf.open("arr_1.npy", "w") as f:
                np.lib.format.write_array(f, np.asarray(labels, dtype=np.int64))
    tmp.replace(path)
    return path


def progress_bar(console: Console, enabled: bool, label: str) -> Progress:
    """A rich progress bar counting images (shown on rank 0 only: ``enabled``)."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
    )


def sample_to(
    out: str | Path,
    sampler: CheckpointSampler,
    settings: SampleSettings,
    labels: np.ndarray,
    *,
    seed: int,
    batch_size: int,
    dist: DistInfo,
    console: Console | None = None,
    nrow: int | None = None,
) -> Path:
    """Generate ``len(labels)`` images into ``out`` (grid, ADM ``.npz`` or folder), this rank's slice.

    Every rank calls it; rank 0 writes the ``.png``/``.npz`` from the ranks' temporary parts.
    """
    out = Path(out)
    kind = output_kind(out)
    n = len(labels)
    conditional = sampler.checkpoint.spec.num_classes > 0
    mine = shard(n, dist.rank, dist.world_size)
    target = out if kind == "dir" else out.parent
    target.mkdir(parents=True, exist_ok=True)
    part_file = out.parent / f".{out.name}.part{dist.rank}-of-{dist.world_size}.npy"
    part = None
    if kind != "dir":
        c, h, w = sampler.checkpoint.spec.shape
        part = np.lib.format.open_memmap(part_file, mode="w+", dtype=np.uint8, shape=(len(mine), h, w, c))
    console = console or Console(stderr=True)
    who = f" (rank 0 of {dist.world_size})" if dist.enabled else ""
    with progress_bar(console, dist.is_main, f"sample{who}") as progress:
        task = progress.add_task("sample", total=len(mine))
        for idx, images in sampler.generate(mine, labels, settings, seed=seed, batch_size=batch_size):
            if part is not None:
                part[idx.start - mine.start : idx.stop - mine.start] = images
            else:
                for i, image in zip(idx, images, strict=True):
                    _save_png(out / image_name(i, int(labels[i]) if conditional else None, n), image)
            progress.update(task, advance=len(idx))
    if part is not None:
        part.flush()
        del part
    distributed.barrier(dist)
    if kind != "dir" and dist.is_main:
        files = [out.parent / f".{out.name}.part{r}-of-{dist.world_size}.npy" for r in range(dist.world_size)]
        parts = [np.load(f, mmap_mode="r") for f in files]
        if kind == "npz":
            write_adm_npz(out, parts, labels if conditional else None)
        else:
            _save_png(out, make_grid(np.concatenate(parts), nrow))
        del parts
        for f in files:
            f.unlink()
    distributed.barrier(dist)
    return out


# -- the command ------------------------------------------------------------------------------------


def parse_list(text: str | None, convert: Callable[[str], Any], option: str) -> list[Any] | None:
    """``"2.5,2.9"`` -> [2.5, 2.9]; a bad item is a one-line error naming the option."""
    if text is None:
        return None
    try:
        return [convert(t.strip()) for t in text.split(",") if t.strip()]
    except ValueError:
        raise GenError(f"{option} {text!r}: expected a comma-separated list, e.g. {option} 1,2,3") from None


def parse_interval(text: str) -> tuple[float, float]:
    """``"0.1,1.0"`` -> (0.1, 1.0)."""
    values = parse_list(text, float, "--interval") or []
    if len(values) != 2:
        raise GenError(f"--interval {text!r}: give LOW,HIGH, e.g. --interval 0.1,1.0")
    return values[0], values[1]


def sample_command(
    run: str = typer.Argument(..., help="A run directory (its latest checkpoint) or a checkpoint directory."),
    out: str = typer.Option(
        ..., "--out", "-o", help="NAME.png (grid), NAME.npz (ADM arrays) or a folder (one PNG per image)."
    ),
    num: int = typer.Option(64, "--num", "-n", help="Number of images (ignored with --per-class)."),
    labels: str | None = typer.Option(
        None, "--labels", help="Class ids, comma-separated, repeated over the images."
    ),
    per_class: int | None = typer.Option(None, "--per-class", help="This many images of every class."),
    cfg: float | None = typer.Option(None, "--cfg", help="Guidance scale (default: the recipe's)."),
    interval: str | None = typer.Option(
        None, "--interval", help="Guidance interval LOW,HIGH (default: the recipe's)."
    ),
    steps: int | None = typer.Option(None, "--steps", help="Solver steps (default: the recipe's)."),
    sampler_name: str | None = typer.Option(
        None, "--sampler", help="A registered sampler (default: the recipe's)."
    ),
    ema: str | None = typer.Option(
        None, "--ema", help="EMA decay to use, or 'none' for the raw weights (default: the first EMA)."
    ),
    seed: int = typer.Option(0, "--seed", help="Sample i depends only on (seed, i)."),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Images per forward pass and process."),
) -> None:
    """Generate images from a checkpoint. Under torchrun every process draws its own slice."""
    if batch_size < 1 or seed < 0:
        raise GenError(f"--batch-size must be >= 1 and --seed >= 0, got {batch_size} and {seed}")
    output_kind(out)
    if sampler_name is not None:
        from gen.registry import get_registry

        get_registry("sampler").get(sampler_name)  # an unknown name fails with the known ones
    checkpoint = load_checkpoint(run)
    settings = default_settings(
        checkpoint,
        ema=ema,
        cfg=cfg,
        cfg_interval=parse_interval(interval) if interval is not None else None,
        steps=steps,
        sampler=sampler_name,
    )
    ys = class_labels(
        num, checkpoint.spec.num_classes, labels=parse_list(labels, int, "--labels"), per_class=per_class
    )
    console = Console(stderr=True, highlight=False)
    owned = not torch.distributed.is_initialized()  # a caller's process group stays up
    dist = distributed.setup()
    try:
        sampler = CheckpointSampler(checkpoint, dist.device)
        if dist.is_main:
            s = settings.describe()
            console.print(
                f"sampling {len(ys)} images from {checkpoint.path} (step {checkpoint.step}): ema {s['ema']}, "
                f"cfg {s['cfg']}, interval {s['interval']}, {s['steps']} {s['sampler']} steps, seed {seed}",
                markup=False,
            )
        path = sample_to(
            out,
            sampler,
            settings,
            ys,
            seed=seed,
            batch_size=batch_size,
            dist=dist,
            console=console,
            nrow=per_class,
        )
        if dist.is_main:
            console.print(f"wrote {path}", markup=False)
    finally:
        if owned:
            distributed.teardown()


__all__ = [
    "Checkpoint",
    "CheckpointSampler",
    "SampleSettings",
    "class_labels",
    "default_settings",
    "image_name",
    "load_checkpoint",
    "output_kind",
    "progress_bar",
    "resolve_checkpoint",
    "sample_command",
    "sample_to",
    "shard",
    "write_adm_npz",
]
