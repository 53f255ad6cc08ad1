"""Temporary buckets for a bounded-memory shuffle, and for a curriculum.

Rows are spread at random over ``per_band`` files in each band; every file is shuffled on its own and
written as one shard, bands in order. A plain export has one band, so that its shards are a random
spread of every row. A curriculum export bands the rows by difficulty (a pass rate: the easiest,
highest rate first), so that the shards run easy to hard with ties shuffled, and no bucket holds more
than its share of one band however the rows are spread across bands.

Arrow IPC streams rather than Parquet: a Parquet writer keeps every row group's metadata in memory
for its footer, which across tens of thousands of small row groups was tens of megabytes.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa

from service.export.rows import SCHEMA, Row

BUCKET_FLUSH_ROWS = 128  # rows held per bucket before they are written: many buckets, little memory
BUCKET_SCHEMA = SCHEMA.append(pa.field("split", pa.string()))
PLAIN_BAND = 0.0
UNKNOWN_BAND = float("-inf")  # rows whose difficulty is not known go last


class Buckets:
    """The rows of an export on their way to its shards."""

    def __init__(self, folder: Path, per_band: int, rng: random.Random, test_size: float) -> None:
        self.folder, self.per_band, self.rng, self.test_size = folder, per_band, rng, test_size
        self.pending: dict[tuple[float, int], list[Row]] = {}
        self.writers: dict[tuple[float, int], pa.ipc.RecordBatchStreamWriter] = {}

    def add(self, row: Row, band: float = PLAIN_BAND) -> None:
        """One row into a random bucket of its band, and a random split."""
        key = (band, self.rng.randrange(self.per_band))
        row["split"] = "test" if self.rng.random() < self.test_size else "train"
        rows = self.pending.setdefault(key, [])
        rows.append(row)
        if len(rows) >= BUCKET_FLUSH_ROWS:
            self._flush(key)

    def bands(self) -> list[float]:
        """The bands that hold rows, easiest (highest) first."""
        return sorted({band for band, _ in self.pending}, reverse=True)

    def _path(self, key: tuple[float, int]) -> Path:
        band, index = key
        return self.folder / f"bucket-{band:.6f}-{index:05d}.arrows"

    def _flush(self, key: tuple[float, int]) -> None:
        rows = self.pending[key]
        if not rows:
            return
        writer = self.writers.get(key) or pa.ipc.new_stream(self._path(key), BUCKET_SCHEMA)
        self.writers[key] = writer
        writer.write_table(pa.Table.from_pylist(rows, schema=BUCKET_SCHEMA))
        self.pending[key] = []

    def close(self) -> list[Path]:
        """Every bucket's file, bands easiest first, in the order their shards are to be written."""
        keys = sorted(self.pending, key=lambda key: (-key[0], key[1]))
        for key in keys:
            self._flush(key)
            self.writers[key].close()
        return [self._path(key) for key in keys]
