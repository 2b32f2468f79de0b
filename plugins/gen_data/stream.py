"""Deterministic sample order shared by the finite datasets, and the corrupt-sample reporter.

A finite dataset of ``n`` samples is read as one endless *global* stream of positions: position ``p``
belongs to epoch ``p // n`` and names sample ``perm_epoch[p % n]``, where ``perm_epoch`` is a
permutation drawn from ``(seed, epoch)``. Global batch ``k`` holds positions
``[k * B * world_size, (k + 1) * B * world_size)`` and rank ``r`` takes the ``r``-th slice of ``B``.
So batch ``k`` of a rank depends only on ``(seed, rank, world_size, B)``, resuming at ``start_batch`` is
arithmetic, ranks never see the same sample within an epoch, and every rank gets the same number of
batches (the stream never ends, so DDP never waits on a rank that ran dry).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np
import torch

import gen

logger = logging.getLogger("gen_data")

T = TypeVar("T")

_MASK64 = (1 << 64) - 1


def mix_seed(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps), stable across processes and platforms."""
    h = 0x9E3779B97F4A7C15
    for value in values:
        h = (h ^ (int(value) & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h >> 1


def batch_positions(batch: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> np.ndarray:
    """Global stream positions (batch_size,) int64 of a rank's batch ``batch``."""
    start = (batch * world_size + rank) * batch_size
    return np.arange(start, start + batch_size, dtype=np.int64)


def check_stream_args(batch_size: int, seed: int, rank: int, world_size: int, start_batch: int) -> None:
    """Raise ValueError for impossible ``train_batches`` arguments."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    if start_batch < 0:
        raise ValueError(f"start_batch must be >= 0, got {start_batch}")


def indexed_batches(
    make_batch: Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]],
    num_samples: int,
    batch_size: int,
    *,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    start_batch: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The endless training stream of a dataset whose sample ``i`` is ``make_batch([i])``: batch ``k`` of
    this rank holds the samples at the stream positions of `batch_positions`, through a fresh
    permutation each epoch (`EpochPermutation`)."""
    check_stream_args(batch_size, seed, rank, world_size, start_batch)
    order = EpochPermutation(num_samples, seed)
    batch = start_batch
    while True:
        yield make_batch(order(batch_positions(batch, batch_size, rank=rank, world_size=world_size)))
        batch += 1


def indexed_pass(
    make_batch: Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]], num_samples: int, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass over an indexable dataset in index order (the last batch may be smaller)."""
    for start in range(0, num_samples, batch_size):
        yield make_batch(np.arange(start, min(start + batch_size, num_samples)))


class EpochPermutation:
    """Maps global stream positions to sample indices: a fresh permutation of ``range(n)`` per epoch.

    Args:
        n: Samples in the dataset.
        seed: Seed of the order (the permutation of epoch ``e`` is drawn from ``(seed, e)``).
        shuffle: False keeps the natural order in every epoch.
    """

    def __init__(self, n: int, seed: int, *, shuffle: bool = True):
        if n < 1:
            raise ValueError("a dataset needs at least one sample")
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self._cache: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        """The sample order (n,) int64 of ``epoch`` (the last two are cached)."""
        perm = self._cache.get(epoch)
        if perm is None:
            if self.shuffle:
                g = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
                perm = torch.randperm(self.n, generator=g).numpy()
            else:
                perm = np.arange(self.n, dtype=np.int64)
            if len(self._cache) >= 2:
                self._cache.pop(min(self._cache))
            self._cache[epoch] = perm
        return perm

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """Sample indices (P,) int64 at global stream positions (P,)."""
        epochs = positions // self.n
        out = np.empty_like(positions)
        for epoch in np.unique(epochs):
            sel = epochs == epoch
            out[sel] = self.permutation(int(epoch))[positions[sel] % self.n]
        return out


class SkipReporter:
    """Counts corrupt samples that were skipped and logs a warning when the count grows.

    Warns at the first skip and then each time the count doubles, so that a dataset with many bad
    files does not flood the log.
    """

    def __init__(self, name: str):
        self.name = name
        self.count = 0
        self._next_warning = 1

    def add(self, count: int, detail: str = "") -> None:
        if count <= 0:
            return
        self.count += count
        if self.count >= self._next_warning:
            while self._next_warning <= self.count:
                self._next_warning *= 2
            where = f" (latest: {detail})" if detail else ""
            logger.warning("%s: skipped %d corrupt sample(s) so far%s", self.name, self.count, where)


def unwrap_worker_error(error: gen.GenError) -> gen.GenError:
    """A GenError raised in a DataLoader worker comes back wrapped in a traceback; keep its one line."""
    text = str(error)
    if text.startswith("Caught "):
        last = text.strip().splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return gen.GenError(text)


def one_line_errors(items: Iterable[T]) -> Iterator[T]:
    """``items``, with a GenError raised in a DataLoader worker turned back into its one line.

    Only the ``next`` is inside the ``try``, never the ``yield``: an abandoned generator is closed by a
    GeneratorExit thrown at its ``yield``, and at interpreter exit an ``except gen.GenError`` met there
    would look ``gen`` up after the module was torn down (``Exception ignored in generator ...``).
    """
    iterator = iter(items)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except gen.GenError as e:
            raise unwrap_worker_error(e) from None
        yield item
