"""Keyed seeds (gen.seeds.key_seed) and the sampling noise's seeds (gen.sampling.noise.noise_seed)."""

from __future__ import annotations

import numpy as np
import pytest

import gen
from gen.sampling.noise import noise_seed
from gen.seeds import key_seed

KEYS = [(0,), (1,), (0, 3, 17), (0, 3, 18), (7, 1, 0, 2), (2**31, 5), (123456789, 4, 1024)]


def by_hand(*keys: int) -> int:
    """The 64-bit value: the first uint64 word of numpy's SeedSequence of the keys."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint64)[0])


@pytest.mark.parametrize("keys", KEYS)
def test_64_bits_is_the_seed_sequence_word(keys):
    assert key_seed(*keys, bits=64) == by_hand(*keys)


@pytest.mark.parametrize("keys", KEYS)
def test_63_bits_is_the_64_bit_value_shifted(keys):
    s63, s64 = key_seed(*keys), key_seed(*keys, bits=64)
    assert key_seed(*keys, bits=63) == s63
    assert s63 == s64 >> 1
    assert 0 <= s63 < 2**63
    assert 0 <= s64 < 2**64
    assert type(s63) is int and type(s64) is int


def test_pinned_values():
    # Changing the hash would change every run's random streams: these values are part of the format.
    assert key_seed(0) == 7896617691693857887
    assert key_seed(1, 2) == 7764949442709860949
    assert key_seed(1, 2, bits=64) == 15529898885419721899


def test_deterministic_and_key_sensitive():
    assert key_seed(0, 3, 17) == key_seed(0, 3, 17)
    assert key_seed(0, 3, 17) != key_seed(0, 3, 18)
    assert key_seed(1, 2) != key_seed(2, 1)  # order matters
    values = {
        key_seed(seed, stream, step) for seed in range(3) for stream in range(1, 5) for step in range(20)
    }
    assert len(values) == 3 * 4 * 20
    assert gen.key_seed is key_seed


def test_accepts_numpy_and_large_keys():
    assert key_seed(np.int64(5), 3) == key_seed(5, 3)
    assert 0 <= key_seed(2**63, 2**64 - 1) < 2**63


@pytest.mark.parametrize("keys", [(-1,), (0, -1), (3, 2, -5)])
def test_refuses_negative_keys(keys):
    with pytest.raises(ValueError) as info:
        key_seed(*keys)
    assert str(info.value) == f"keys must be >= 0, got {list(keys)}"


@pytest.mark.parametrize("bits", [0, 32, 62, 65, 128, -63])
def test_refuses_other_bit_counts(bits):
    with pytest.raises(ValueError) as info:
        key_seed(1, 2, bits=bits)
    assert str(info.value) == f"bits must be 63 or 64, got {bits}"


@pytest.mark.parametrize(("seed", "index"), [(0, 0), (0, 1), (1, 0), (42, 7), (2**40, 3), (5, 10**6)])
def test_noise_seed_is_the_64_bit_key_seed(seed, index):
    assert noise_seed(seed, index) == key_seed(seed, index, bits=64)
    assert noise_seed(seed, index) == by_hand(seed, index)


def test_noise_seed_refuses_negative():
    with pytest.raises(ValueError, match=r"^seed and index must be >= 0, got seed=-1, index=0$"):
        noise_seed(-1, 0)
    with pytest.raises(ValueError, match=r"^seed and index must be >= 0, got seed=0, index=-2$"):
        noise_seed(0, -2)
