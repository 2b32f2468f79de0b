"""``sd_vae``: the Stable Diffusion VAE that DiT and SiT train in (``sd-vae-ft-ema``/``-mse``), via diffusers.

Latents are ``(posterior sample or mean - shift) * scale``: with the SD VAE's ``scale = 0.18215`` they have
about unit variance, as DiT's training scripts make them. ``encode_mode = "sample"`` draws from the
posterior as DiT's ``train.py`` and fast-DiT's feature extraction do; ``"mean"`` takes its mean.

Weights are read from ``path``, never unpickled:

- a folder in diffusers layout (``config.json`` + ``diffusion_pytorch_model.safetensors``, as the
  ``stabilityai/sd-vae-ft-ema`` repository holds), loaded with ``AutoencoderKL.from_pretrained``;
- a single ``.safetensors`` file of a diffusers-named state dict, loaded into the SD VAE's architecture,
  or into the one of ``config_path`` (a diffusers ``config.json``) where it is another.

diffusers is imported only when the weights load (the first encode or decode, or `SdVae.load`), so
that this plugin imports without it; what can be checked without loading (diffusers is installed, the
files exist and their headers read) is checked when the autoencoder is built, so that a wrong path stops a
recipe at load time, not after the data and the model are set up.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import torch
from attrs import validators as v
from torch import Tensor, nn

import gen

__all__ = ["SD_VAE_ARCHITECTURE", "SdVae", "SdVaeConfig", "build_sd_vae"]

NEEDS_DIFFUSERS = "autoencoder 'sd_vae' needs diffusers: pip install 'gen[latent]'"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"

#: The SD VAE (``sd-vae-ft-ema``/``-mse``): diffusers' ``AutoencoderKL`` defaults with these changes.
SD_VAE_ARCHITECTURE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
}

# Names of the attention projections in diffusers files written before its attention refactor; the
# folder loader renames them itself, a single file is renamed here.
_OLD_ATTENTION_NAMES = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


@attrs.frozen(kw_only=True)
class SdVaeConfig:
    """Options of the ``sd_vae`` autoencoder."""

    path: str = gen.field(
        "",
        doc="The VAE weights: a diffusers folder (config.json + diffusion_pytorch_model.safetensors) or one .safetensors file.",
    )
    config_path: str = gen.field(
        "",
        doc="A diffusers config.json with the architecture of a single-file `path`; empty = the SD VAE's.",
    )
    scale: float = gen.field(
        0.18215, doc="Latents are (z - shift) * scale (SD VAE: 0.18215).", validator=v.gt(0)
    )
    shift: float = gen.field(0.0, doc="Subtracted from z before scaling (SD VAE: 0).")
    encode_mode: Literal["sample", "mean"] = gen.field(
        "sample", doc="Encode to a posterior sample (DiT's train.py, fast-DiT) or to the posterior mean."
    )
    dtype: Literal["float32", "bfloat16"] = gen.field(
        "float32", doc="The VAE's weights and compute dtype (latents and images are float32 either way)."
    )


def _error(path: object, problem: str, fix: str, key: str = "path") -> gen.GenError:
    return gen.GenError(f"autoencoder 'sd_vae': {path} {problem} (recipe key autoencoder.{key}); {fix}")


def _require_diffusers() -> None:
    try:
        found = importlib.util.find_spec("diffusers") is not None
    except (ImportError, ValueError):  # a broken or stubbed-out module
        found = False
    if not found:
        raise gen.GenError(NEEDS_DIFFUSERS)


def _autoencoder_kl() -> type:
    try:
        from diffusers import AutoencoderKL
    except ImportError:
        raise gen.GenError(NEEDS_DIFFUSERS) from None
    return AutoencoderKL


def _check_safetensors(path: Path) -> None:
    """Read the header of a safetensors file (no tensor data): a missing, empty, truncated or foreign
    file is one `gen.GenError` line naming it and the recipe key that points to it."""
    try:
        gen.check_safetensors(path)
    except gen.GenError as e:  # the core's "PATH PROBLEM" line, put in this plugin's words
        fix = "point it to the VAE's diffusion_pytorch_model.safetensors (download it again if it is damaged)"
        raise _damaged(e, fix) from None


def _damaged(error: gen.GenError, fix: str) -> gen.GenError:
    """``error``, a one-line ``PATH PROBLEM`` of the core's tensor-file readers, with the recipe key
    and the fix, as `_error` words it."""
    return gen.GenError(f"autoencoder 'sd_vae': {error} (recipe key autoencoder.path); {fix}")


def _read_architecture(path: Path, fix: str, key: str = "path") -> dict[str, Any]:
    """The ``AutoencoderKL`` config of a diffusers ``config.json`` (its ``_``-prefixed notes dropped)."""
    try:
        arch = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise _error(path, f"cannot be read as JSON ({type(e).__name__}: {e})", fix, key) from None
    if not isinstance(arch, dict) or arch.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
        raise _error(path, "is not the config.json of a diffusers AutoencoderKL", fix, key)
    missing = [k for k in ("block_out_channels", "latent_channels") if k not in arch]
    if missing:
        raise _error(path, f"lacks {', '.join(missing)}", fix, key)
    return {k: val for k, val in arch.items() if not k.startswith("_")}


@attrs.frozen
class _Source:
    """Where the weights are: ``folder`` (diffusers layout) or ``file`` (one safetensors file)."""

    kind: Literal["folder", "file"]
    path: Path
    arch: dict[str, Any]
    config_path: Path | None = None  # where a single file's architecture came from (None: the SD VAE's)


def locate(config: SdVaeConfig) -> _Source:
    """Check ``config.path`` without loading weights: the files exist, their headers read.

    Raises:
        gen.GenError: one line naming the path, the recipe key and the fix.
    """
    fix = "set it to a diffusers VAE folder (config.json + diffusion_pytorch_model.safetensors) or one .safetensors file"
    if not config.path:
        raise gen.GenError(f"autoencoder 'sd_vae': set autoencoder.path; {fix.removeprefix('set it to ')}")
    path = Path(config.path).expanduser()
    if path.is_dir():
        if config.config_path:
            raise _error(
                path,
                "is a folder; autoencoder.config_path is for a single .safetensors file",
                "remove config_path",
            )
        missing = [name for name in ("config.json", WEIGHTS_NAME) if not (path / name).is_file()]
        if len(missing) == 2:
            raise _error(path, f"lacks config.json or {WEIGHTS_NAME}", fix)
        if missing:  # one file of a VAE folder: name it
            raise _error(
                path / missing[0], "is missing", "download the VAE folder again (or copy that file into it)"
            )
        _check_safetensors(path / WEIGHTS_NAME)
        return _Source("folder", path, _read_architecture(path / "config.json", fix))
    if not path.exists():
        raise _error(path, "does not exist", fix)
    if path.suffix != ".safetensors":
        raise _error(path, "is not a .safetensors file (pickled weights are never loaded)", fix)
    _check_safetensors(path)
    if not config.config_path:
        return _Source("file", path, dict(SD_VAE_ARCHITECTURE))
    config_path = Path(config.config_path).expanduser()
    if not config_path.is_file():
        raise _error(config_path, "does not exist", "set it to a diffusers config.json", "config_path")
    arch = _read_architecture(config_path, "set it to a diffusers config.json", "config_path")
    return _Source("file", path, arch, config_path)


def _load_folder(source: _Source, dtype: torch.dtype) -> nn.Module:
    autoencoder_kl = _autoencoder_kl()
    # low_cpu_mem_usage needs accelerate; asking for it without accelerate only prints a warning.
    fast = importlib.util.find_spec("accelerate") is not None
    try:
        model, info = autoencoder_kl.from_pretrained(
            str(source.path),
            local_files_only=True,
            use_safetensors=True,
            low_cpu_mem_usage=fast,
            torch_dtype=dtype,
            output_loading_info=True,
        )
    except Exception as e:  # noqa: BLE001 - any failure of a user's folder is said in one line
        first = (str(e).strip().splitlines() or [""])[0]
        raise _error(
            source.path, f"cannot be loaded ({type(e).__name__}: {first})", "check the folder's files"
        ) from None
    missing = info.get("missing_keys") or []
    if missing:  # diffusers would go on with those weights random: refuse instead
        raise _error(
            source.path / WEIGHTS_NAME,
            f"lacks {len(missing)} weight(s) of its config.json's architecture (such as {missing[0]})",
            "the file is damaged or belongs to another VAE; download the folder again",
        )
    return model


def _load_file(source: _Source, dtype: torch.dtype) -> nn.Module:
    autoencoder_kl = _autoencoder_kl()
    try:
        state = {k: t.to(dtype) for k, t in gen.read_safetensors(source.path).items()}
    except gen.GenError as e:
        raise _damaged(e, "download it again") from None
    if any(k.startswith(("encoder.down.", "first_stage_model.")) for k in state):
        raise _error(
            source.path,
            "holds the original (LDM) key names; this loader reads diffusers-named weights",
            "use the diffusers folder of the same VAE (config.json + diffusion_pytorch_model.safetensors)",
        )
    for key in list(state):
        stem, _, leaf = key.rpartition(".")
        head, _, name = stem.rpartition(".")
        if ".attentions." in key and name in _OLD_ATTENTION_NAMES:
            state[f"{head}.{_OLD_ATTENTION_NAMES[name]}.{leaf}"] = state.pop(key)
    with torch.device("meta"):  # no random initialisation of weights that are about to be replaced
        model = autoencoder_kl.from_config(source.arch)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as e:
        what = (
            "the SD VAE's architecture"
            if source.config_path is None
            else f"the architecture of {source.config_path}"
        )
        detail = " ".join(str(e).split())
        raise _error(
            source.path,
            f"does not match {what} ({detail[:200]}{'...' if len(detail) > 200 else ''})",
            "set autoencoder.config_path to the config.json of its architecture",
        ) from None
    return model


class SdVae:
    """The ``sd_vae`` autoencoder (see the module docstring).

    Args:
        config: Its options.
        source: Where the weights are (`locate`).
    """

    def __init__(self, config: SdVaeConfig, source: _Source):
        self.config = config
        self.source = source
        self.latent_channels = int(source.arch["latent_channels"])
        self.in_channels = int(source.arch.get("in_channels", 3))
        self.out_channels = int(source.arch.get("out_channels", 3))
        #: Downsampling factor: each encoder block but the last halves the resolution.
        self.factor = 2 ** (len(source.arch["block_out_channels"]) - 1)
        self.dtype = torch.bfloat16 if config.dtype == "bfloat16" else torch.float32
        self._model: nn.Module | None = None
        self._lock = threading.Lock()

    def latent_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C, H, W) images -> (latent_channels, H / factor, W / factor); ValueError if they cannot be encoded."""
        if len(image_shape) != 3 or image_shape[0] != self.in_channels:
            raise ValueError(
                f"sd_vae encodes ({self.in_channels}, H, W) images, not shape {tuple(image_shape)}"
            )
        _, h, w = image_shape
        if h % self.factor or w % self.factor:
            raise ValueError(f"sd_vae needs an image size divisible by {self.factor}, got {h}x{w}")
        return (self.latent_channels, h // self.factor, w // self.factor)

    def image_shape(self, latent_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(latent_channels, h, w) latents -> (C, h * factor, w * factor) images."""
        if len(latent_shape) != 3 or latent_shape[0] != self.latent_channels:
            raise ValueError(
                f"sd_vae decodes ({self.latent_channels}, h, w) latents, not shape {tuple(latent_shape)}"
            )
        _, h, w = latent_shape
        return (self.out_channels, h * self.factor, w * self.factor)

    def identity(self) -> dict[str, Any]:
        """What latent data must have been encoded with (checked before training on it)."""
        return {
            "name": "sd_vae",
            "latent_channels": self.latent_channels,
            "scale": self.config.scale,
            "shift": self.config.shift,
            "factor": self.factor,
        }

    def load(self, device: torch.device | str | None = None) -> nn.Module:
        """The diffusers ``AutoencoderKL`` (loaded once, eval mode, no grad), moved to ``device`` if given."""
        with self._lock:
            if self._model is None:
                load = _load_folder if self.source.kind == "folder" else _load_file
                # the dtype is given to the loader: diffusers warns about casting a loaded model with to()
                self._model = load(self.source, self.dtype).eval().requires_grad_(False)
            if device is not None and next(self._model.parameters()).device != torch.device(device):
                self._model.to(device)
            return self._model

    def encode(
        self, x: Tensor, generator: torch.Generator | Sequence[torch.Generator] | None = None
    ) -> Tensor:
        """(B, C, H, W) images in [-1, 1] -> (B, c, H / f, W / f) float32 scaled latents.

        Args:
            x: The images, on the device to encode on.
            generator: The posterior sample's randomness (``encode_mode = "sample"``): one generator, or
                one per image (so that an image's latent does not depend on the batch it is in).
        """
        model = self.load(x.device)
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            posterior = model.encode(x.to(self.dtype)).latent_dist
            z = posterior.mean.float()  # (B, c, h, w)
            if self.config.encode_mode == "sample":
                z = z + posterior.std.float() * _noise(z, generator)
            return (z - self.config.shift) * self.config.scale

    def decode(self, z: Tensor) -> Tensor:
        """(B, c, h, w) scaled latents -> (B, C, h * f, w * f) float32 images in about [-1, 1] (not clipped)."""
        model = self.load(z.device)
        with torch.no_grad(), torch.autocast(z.device.type, enabled=False):
            z = z.float() / self.config.scale + self.config.shift
            return model.decode(z.to(self.dtype)).sample.float()

    def __repr__(self) -> str:
        c = self.config
        return f"SdVae(path={c.path!r}, scale={c.scale}, shift={c.shift}, encode_mode={c.encode_mode!r}, dtype={c.dtype!r})"


def _noise(like: Tensor, generator: torch.Generator | Sequence[torch.Generator] | None) -> Tensor:
    """Standard normal noise shaped like ``like`` (B, ...), drawn where each generator lives (so a CPU
    generator gives the same numbers whatever the device) and moved to ``like``'s device."""
    if generator is None:
        return torch.randn_like(like)
    if isinstance(generator, torch.Generator):
        return torch.randn(like.shape, generator=generator, device=generator.device).to(like.device)
    generators = list(generator)
    if len(generators) != like.shape[0]:
        raise ValueError(f"got {len(generators)} generators for a batch of {like.shape[0]}")
    draws = [torch.randn(like.shape[1:], generator=g, device=g.device).to(like.device) for g in generators]
    return torch.stack(draws)


def build_sd_vae(config: SdVaeConfig) -> SdVae:
    """The Stable Diffusion VAE (DiT, SiT) through diffusers; weights load on first use."""
    _require_diffusers()
    return SdVae(config, locate(config))
