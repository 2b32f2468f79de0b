"""Keyed randomness: every random draw of a run is a function of integer keys, not of generator state.

One hash serves the training draws (times, dropped labels, noise: keyed by seed, step and position) and
the sampling noise (keyed by seed and sample index): numpy's ``SeedSequence``, whose output does not
depend on the platform.

``SeedSequence`` reads keys as 32-bit words and pads with zeros, so ``key_seed(5)`` equals
``key_seed(5, 0)`` and a key of 2**32 or more spills into the next word. Every stream of a run therefore
has keys of one fixed length, told apart by a stream number in second place (see
``gen.training.engine``), and the keys stay below 2**32 (sample indices up to 4.3e9). Changing the hash
would change every run's random numbers, so it stays as published runs of gen drew them.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import torch

#: Held wherever the core seeds torch's process-wide RNG and draws from it (a run's initial weights, the
#: throwaway initial weights of a model about to load a checkpoint): runs in threads of one process
#: (``gen toy run --jobs N``, notebooks) then start from the same weights as they would alone.
GLOBAL_RNG_LOCK = threading.RLock()


def key_seed(*keys: int, bits: int = 63) -> int:
    """A ``bits``-bit seed (63 or 64) from non-negative integer keys.

    Example:
        >>> key_seed(0, 3, 17) == key_seed(0, 3, 17) != key_seed(0, 3, 18)
        True
    """
    if bits not in (63, 64):
        raise ValueError(f"bits must be 63 or 64, got {bits}")
    if any(k < 0 for k in keys):
        raise ValueError(f"keys must be >= 0, got {list(keys)}")
    state = int(np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint64)[0])
    return state >> (64 - bits)


__all__ = ["GLOBAL_RNG_LOCK", "key_seed", "keyed_noise", "per_sample_generators"]


def keyed_noise(seed: int, stream: int, first: int, like: torch.Tensor) -> torch.Tensor:
    """N(0, I) noise shaped like ``like`` (b, ...), row i keyed by ``(seed, stream, first + i)``: the
    training noise of global-batch position ``first + i`` whatever the batch split. Drawn on ``like``'s
    device by a generator there, so nothing crosses to the host."""
    rows = []
    for p in range(first, first + like.shape[0]):
        g = torch.Generator(device=like.device).manual_seed(key_seed(seed, stream, p))
        rows.append(torch.randn(like.shape[1:], generator=g, device=like.device, dtype=like.dtype))
    return torch.stack(rows)  # (b, ...)


def per_sample_generators(z0: torch.Tensor) -> list[torch.Generator]:
    """A CPU generator per sample, seeded by a hash of that sample's start noise z0 (B, ...): the noise a
    stochastic sampler draws for sample i is then a function of its start (so of (seed, i)), not of the
    batch it was drawn in."""
    out = []
    for row in z0.detach().to("cpu", torch.float32).reshape(z0.shape[0], -1).numpy():
        digest = hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=8).digest()
        out.append(torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1))
    return out
