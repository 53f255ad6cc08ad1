"""KeySet must answer exactly as a Python set would, across batches, merges and in-batch repeats."""

from __future__ import annotations

import random

import numpy as np

from service.export.keyset import KeySet


def test_keyset_agrees_with_a_python_set() -> None:
    rng = random.Random(7)
    keys, reference = KeySet(), set()
    for _ in range(300):
        batch = [rng.randrange(5_000) * 0x9E3779B97F4A7C15 % 2**64 for _ in range(rng.randrange(0, 60))]
        expected = []
        for key in batch:
            expected.append(key not in reference)
            reference.add(key)
        assert keys.add_new(batch).tolist() == expected
    assert len(keys) == len(reference)
    assert len(keys._runs) <= 2 * len(reference).bit_length()


def test_the_largest_keys_and_an_empty_batch() -> None:
    keys = KeySet()
    assert keys.add_new([]).tolist() == []
    assert keys.add_new(np.array([2**64 - 1, 0, 2**64 - 1], dtype=np.uint64)).tolist() == [True, True, False]
    assert keys.add_new([0, 1]).tolist() == [False, True]
