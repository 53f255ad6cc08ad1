"""Shard storage on a local directory and on an fsspec URL (fsspec's in-memory filesystem, the one
store that needs no server): the same writes, reads, listings and orphan clean-up, and a job whose
shards live at a URL from the flusher through the API's listing to an export."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.database import finishing, queue
from service.database.finishing import NewSample
from service.export.mixing import export
from service.export.options import ExportOptions
from service.settings import Settings
from service.storage import shards
from service.storage.stores import ShardStore
from verifiers.base import NamedVerdict

TABLE = pa.table({"x": list(range(10)), "y": [f"row {i}" for i in range(10)]})


@pytest.fixture(params=["local", "file-url", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ShardStore:
    if request.param == "local":
        return ShardStore(tmp_path / "shards")
    if request.param == "file-url":
        return ShardStore(f"file://{tmp_path}/shards")
    return ShardStore(f"memory://tracemill-{uuid.uuid4().hex}/shards")


def test_a_written_shard_reads_back_lists_and_deletes(store: ShardStore) -> None:
    size = store.write("job/accepted/part-1.parquet", TABLE)
    assert size > 0
    with store.open("job/accepted/part-1.parquet") as source:
        assert pq.read_table(source).equals(TABLE)
    (listed,) = store.files()
    assert listed[0] == "job/accepted/part-1.parquet" and listed[1] is not None
    with fsspec.open(store.url("job/accepted/part-1.parquet"), "rb") as handle:  # the URL opens too
        assert pq.read_table(handle).equals(TABLE)
    store.delete("job/accepted/part-1.parquet")
    store.delete("job/accepted/part-1.parquet")  # deleting twice is no error
    assert list(store.files()) == []


def test_free_text_columns_are_written_without_dictionary_or_statistics(store: ShardStore) -> None:
    """Long completions gain nothing from a dictionary or min/max; the other columns, nested ones
    included, keep both."""
    table = pa.table(
        {
            "completion": [f"<think>step {i}</think> {i}" * 20 for i in range(10)],
            "messages": [[{"role": "user", "content": f"q{i % 2}"}] for i in range(10)],
            "job_id": ["j"] * 10,
        }
    )
    store.write_parts("job/accepted/part-2.parquet", table.schema, [table], free_text=("completion",))
    with store.open("job/accepted/part-2.parquet") as source:
        shard = pq.ParquetFile(source)
        assert shard.read().equals(table)
        group = shard.metadata.row_group(0)
        columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert set(columns) == {
        "completion",
        "messages.list.element.role",
        "messages.list.element.content",
        "job_id",
    }
    for path, column in columns.items():
        plain = path == "completion"
        assert ("RLE_DICTIONARY" in column.encodings) is not plain, path
        assert column.is_stats_set is not plain, path


def test_local_paths_and_file_urls_are_the_same_store(tmp_path: Path) -> None:
    ShardStore(f"file://{tmp_path}").write("a/b.parquet", TABLE)
    assert ShardStore(tmp_path).url("a/b.parquet") == str(tmp_path / "a" / "b.parquet")
    assert pq.read_table(tmp_path / "a" / "b.parquet").equals(TABLE)


def test_a_job_with_shards_at_a_url(tmp_path: Path) -> None:
    location = f"memory://tracemill-{uuid.uuid4().hex}/shards"
    settings = Settings(data_dir=tmp_path, shard_dir=location)
    with TestClient(create_app(settings, run_flusher=False)) as client:
        job_id = client.post(
            "/v1/jobs",
            json={
                "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "t"},
                "n": 3,
                "prompts": [{"id": f"p{i}", "prompt": f"Compute {i} + 1."} for i in range(4)],
            },
        ).json()["id"]
        engine = client.app.state.engine  # type: ignore[attr-defined]
        for task in queue.claim(engine, "w", 4, 30, max_attempts=3):
            samples = [
                NewSample(
                    k,
                    f"<think>t</think> {k}",
                    str(k),
                    "stop",
                    5,
                    (NamedVerdict("format", k < 2, None, {}),),
                )
                for k in range(3)
            ]
            finishing.finish(engine, task, "w", samples, prompt_tokens=2)
        store = settings.shard_store
        stray = "stray/part-0.parquet"  # a crash's leftover: on the store, recorded nowhere
        store.write(stray, TABLE)
        assert shards.flush_all(engine, store, shard_rows=100) == shards.FlushResult(2, 12)
        listed = client.get(f"/v1/jobs/{job_id}/shards").json()
        assert {s["kind"]: s["num_rows"] for s in listed} == {"accepted": 8, "rejected": 4}
        assert [s["location"] for s in listed] == [store.url(s["path"]) for s in listed]
        assert all(s["location"].startswith("memory://") for s in listed)
        assert shards.remove_orphans(engine, store, grace_s=0) == [stray]
        assert sorted(relative for relative, _ in store.files()) == sorted(s["path"] for s in listed)

        report = export(engine, store, ExportOptions(jobs=(job_id,), output=tmp_path / "out"))
    assert (report.accepted, report.reasoning) == (8, 4)  # the best one of each prompt's two
    assert pq.read_table(tmp_path / "out" / "data").num_rows == 4
