"""Where shard files live: a local directory, or any filesystem fsspec reaches by URL (``s3://``,
``gs://``, ``az://``, ``memory://``…), with the same all-or-nothing promise.

What makes a shard count is its row in the database, written only after the file is complete, so a
reader never meets a partial shard whatever the store. Locally the file is also written under a
temporary name, fsynced and renamed, so not even a partial file appears. On an fsspec URL the file is
uploaded in one ``pipe_file`` call: object stores make an object visible only once it is whole; on
stores where a write can be seen half done (SFTP, WebDAV), a crash can leave a partial file, which no
shard row records and start-up removes like any other orphan. The store's packages (``s3fs``, ``gcsfs``,
``adlfs``) are the user's to install; fsspec says which one a URL needs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from service.errors import ShardWriteError

TMP_SUFFIX = ".tmp"
ROW_GROUP_ROWS = 1_024  # readers (export) decode a row group at a time: small groups keep them light


class ShardStore:
    """Shard files under one root; paths given and returned are relative to it, '/'-separated."""

    def __init__(self, location: str | Path) -> None:
        text = str(location)
        self.fs: Any = None
        self.local: Path | None = None
        if "://" in text and not text.startswith("file://"):
            self.fs, root = fsspec.core.url_to_fs(text)
            self.root = root.rstrip("/")
        else:
            self.local = Path(text.removeprefix("file://")).resolve()
            self.root = str(self.local)

    def url(self, relative: str) -> str:
        """Where a shard is, as a local path or a URL a reader can open (pyarrow, datasets, fsspec)."""
        if self.local is not None:
            return str(self.local / relative)
        return str(self.fs.unstrip_protocol(f"{self.root}/{relative}"))

    def write(self, relative: str, table: pa.Table) -> int:
        """Write a Parquet file all at once; returns its size in bytes."""
        return self.write_parts(relative, table.schema, [table])

    def write_parts(
        self,
        relative: str,
        schema: pa.Schema,
        parts: Iterable[pa.Table | pa.RecordBatch],
        free_text: Collection[str] = (),
    ) -> int:
        """Write a Parquet file from parts as they come (each in row groups of up to
        ``ROW_GROUP_ROWS``), so only one part need be in memory; returns the file's size in bytes.

        ``free_text`` names columns of long text that seldom repeats (completions): they are written
        without a dictionary or min/max statistics, which Arrow would otherwise build for every string
        column. Neither helps such text, and on the bench's shards they were a quarter of the write.
        """
        try:
            if self.local is not None:
                return _write_local(schema, parts, self.local / relative, free_text)
            sink = pa.BufferOutputStream()
            _write_parquet(sink, schema, parts, free_text)
            data = sink.getvalue().to_pybytes()
            self.fs.pipe_file(f"{self.root}/{relative}", data)
            return len(data)
        except OSError as exc:
            raise ShardWriteError(f"could not write shard {self.url(relative)}: {exc}") from exc

    def delete(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.local is not None:
                (self.local / relative).unlink()
            else:
                self.fs.rm_file(f"{self.root}/{relative}")

    @contextlib.contextmanager
    def open(self, relative: str) -> Iterator[str | IO[bytes]]:
        """What pyarrow reads a shard from: the path itself locally (memory-mapped), else a file."""
        if self.local is not None:
            yield str(self.local / relative)
            return
        with self.fs.open(f"{self.root}/{relative}", "rb") as handle:
            yield handle

    def files(self) -> Iterator[tuple[str, float | None]]:
        """Every file under the root with its modification time (None where the store keeps none)."""
        if self.local is not None:
            if self.local.exists():
                for path in self.local.rglob("*"):
                    if path.is_file():
                        yield path.relative_to(self.local).as_posix(), path.stat().st_mtime
            return
        if not self.fs.exists(self.root):
            return
        for path, info in self.fs.find(self.root, detail=True).items():
            yield path[len(self.root) + 1 :], _mtime(info)


def _leaf_paths(schema: pa.Schema) -> Iterator[str]:
    """Parquet's name for each leaf column (``messages.list.element.role``), which is what per-column
    writer options match."""

    def walk(path: str, kind: pa.DataType) -> Iterator[str]:
        if pa.types.is_list(kind):
            yield from walk(f"{path}.list.element", kind.value_type)
        elif pa.types.is_struct(kind):
            for child in kind:
                yield from walk(f"{path}.{child.name}", child.type)
        else:
            yield path

    for column in schema:
        yield from walk(column.name, column.type)


def _write_parquet(
    sink: Any, schema: pa.Schema, parts: Iterable[pa.Table | pa.RecordBatch], free_text: Collection[str]
) -> None:
    encoded = [path for path in _leaf_paths(schema) if path.partition(".")[0] not in free_text]
    with pq.ParquetWriter(
        sink, schema, compression="zstd", use_dictionary=encoded, write_statistics=encoded
    ) as writer:
        for part in parts:
            writer.write(part, row_group_size=ROW_GROUP_ROWS)


def _write_local(
    schema: pa.Schema, parts: Iterable[pa.Table | pa.RecordBatch], path: Path, free_text: Collection[str]
) -> int:
    """Via a temporary file, fsync and rename, then fsync the directory; returns the size."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            _write_parquet(fh, schema, parts, free_text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return path.stat().st_size


def _mtime(info: dict[str, Any]) -> float | None:
    """fsspec backends name it differently: ``mtime`` (local, SFTP), ``LastModified`` (S3),
    ``created`` (memory), ``updated`` (GCS)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None
