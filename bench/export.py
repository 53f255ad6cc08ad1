"""Export speed and memory: a million accepted samples in shards, exported with ``tracemill export``.

    python bench/export.py [--rows 1000000]

The shards are written straight to Parquet with the shard schema and recorded in a fresh SQLite
database (one job, four samples per prompt, plus a quarter as many general rows) by a separate
process. The export runs as a child process, reaped with ``wait4`` so that the peak memory printed
is its own. The last line is ``export: rows=N rows_per_s=X peak_rss_mib=Y``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import insert, update

from bench.synthetic import finished_job
from service.database.db import make_engine, upgrade_schema, writing
from service.database.models import Shard, Task
from service.storage.shards import SCHEMA
from service.storage.stores import ROW_GROUP_ROWS

SHARD_ROWS = 5_000  # as the service writes them (TRACEMILL_SHARD_ROWS)
PER_PROMPT = 4
PAGE = 50_000


def build(root: Path, rows: int) -> str:
    url = f"sqlite:///{root / 'tracemill.db'}"
    upgrade_schema(url)
    engine = make_engine(url)
    prompts = rows // PER_PROMPT
    job_id = finished_job(engine, prompts, PER_PROMPT)
    with writing(engine) as conn:
        conn.execute(update(Task).values(n_accepted=PER_PROMPT))
    now = datetime.datetime(2026, 1, 1)
    think = "Let me work through this carefully. " * 20
    for start in range(0, rows, SHARD_ROWS):
        batch = [
            {
                "sample_id": i,
                "job_id": job_id,
                "task_id": i // PER_PROMPT + 1,
                "prompt_id": f"p{i // PER_PROMPT}",
                "sample_index": i % PER_PROMPT,
                "attempt": 1,
                "messages": [{"role": "user", "content": f"Problem {i // PER_PROMPT}: compute and explain."}],
                "reference": "0",
                "completion": f"<think>{think}</think> {i}",
                "think": think + str(i),
                "answer": f"The answer is {i}.",
                "finish_reason": "stop",
                "completion_tokens": 100 + i % 50,
                "accepted": True,
                "reasons": [],
                "verdicts": [{"verifier": "math", "accepted": True, "reason": None, "details": "{}"}],
                "teacher_model": "teacher",
                "created_at": now,
            }
            for i in range(start, min(rows, start + SHARD_ROWS))
        ]
        relative = f"{job_id}/accepted/part-{start:012d}.parquet"
        path = root / "shards" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(batch, schema=SCHEMA), path, row_group_size=ROW_GROUP_ROWS)
        with writing(engine) as conn:
            conn.execute(
                insert(Shard).values(
                    job_id=job_id,
                    kind="accepted",
                    path=relative,
                    num_rows=len(batch),
                    num_bytes=path.stat().st_size,
                    created_at=now,
                )
            )
    engine.dispose()
    general = root / "general.jsonl"
    with general.open("w") as fh:
        for i in range(rows // 4):
            fh.write(
                json.dumps({"prompt": f"Say something kind, number {i}.", "response": f"Kindness {i}."})
                + "\n"
            )
    return job_id


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tracemill-export-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        # Built in a process of its own: a child's peak RSS starts at its parent's, so this process must
        # stay small for the export's figure to be the export's.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            job_id = pool.apply(build, (root, args.rows))
        print(f"built {args.rows} samples in shards in {time.perf_counter() - started:.1f} s", flush=True)
        env = {"TRACEMILL_DATA_DIR": str(root)}
        command = [
            sys.executable,
            "-m",
            "service.cli",
            "export",
            "--job",
            job_id,
            "--output",
            str(root / "out"),
            "--general",
            str(root / "general.jsonl"),
            "--keep-per-prompt",
            str(PER_PROMPT),
        ]
        started = time.perf_counter()
        log = root / "export.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
            )
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, for its own rusage
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(log.read_text()[-3000:])
        peak_mib = usage.ru_maxrss / 1024
        exported = sum(pq.read_metadata(p).num_rows for p in (root / "out" / "data").glob("*.parquet"))
        print(log.read_text().strip()[:300])
    print(f"export: rows={exported} rows_per_s={exported / seconds:.0f} peak_rss_mib={peak_mib:.0f}")


if __name__ == "__main__":
    main()
