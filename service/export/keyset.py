"""A set of 64-bit keys at 8 bytes a key, for deduplicating millions of rows in little memory.

A Python ``set`` of ints costs about 90 bytes a key (the int object and the hash table slot); at the
million rows an export streams that is most of its footprint. Here keys live in sorted NumPy runs,
looked up with ``searchsorted`` a batch at a time and merged as they grow, so there are only
logarithmically many runs, as in a log-structured merge tree.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class KeySet:
    """Keys added batch by batch; each batch learns which of its keys are new."""

    def __init__(self) -> None:
        self._runs: list[npt.NDArray[np.uint64]] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def add_new(self, keys: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Add the keys; True where a key was seen neither before nor earlier in this batch."""
        batch = np.asarray(keys, dtype=np.uint64)
        fresh = np.zeros(len(batch), dtype=np.bool_)
        fresh[np.unique(batch, return_index=True)[1]] = True
        for run in self._runs:
            position = np.minimum(np.searchsorted(run, batch), len(run) - 1)
            fresh &= run[position] != batch
        if fresh.any():
            self._runs.append(np.sort(batch[fresh]))
            while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
                newest, older = self._runs.pop(), self._runs.pop()
                self._runs.append(np.sort(np.concatenate([older, newest])))
        return fresh
