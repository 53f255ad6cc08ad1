"""What soft labels cost: bytes per token on disk and export rows/s with ``--soft-labels``.

A job of accepted samples of about 1,000 tokens each, with the stand-in teacher's top-20
log-probabilities for every token, goes the service's own way: the stand-in's reply parsed
(``from_openai``), packed into the database by ``finishing.finish``, written by the flusher to a text shard
and a soft-label shard, then exported with the student tokenizer. The last line sums it up.

    python bench/soft_labels.py [--samples 1000] [--tokens 1000] [--top-k 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and bench/verifiers.py would shadow the package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from sqlalchemy import select

from service.database import finishing, jobs, queue
from service.database.db import make_engine, reading, upgrade_schema
from service.database.finishing import NewSample
from service.database.models import Shard
from service.export.mixing import export
from service.export.options import ExportOptions
from service.schemas import JobIn
from service.standin.logprobs import chat_logprobs
from service.standin.server import DEFAULT_MODEL
from service.standin.text import compose, pad
from service.standin.tokenizer import save_standin_tokenizer
from service.storage import shards
from service.storage.soft_labels import from_openai, pack
from service.storage.stores import ShardStore
from verifiers.base import NamedVerdict


def build(root: Path, samples: int, tokens: int, top_k: int) -> tuple[str, str, int]:
    """The job (its tasks claimed and finished with one accepted sample each), its tokenizer and the
    number of tokens its samples hold."""
    url = f"sqlite:///{root / 'tracemill.db'}"
    upgrade_schema(url)
    engine = make_engine(url)
    prompts = [
        {"id": f"p{i}", "prompt": f"Problem {i}: compute {i} * 7 + 3 and explain."} for i in range(samples)
    ]
    tokenizer = save_standin_tokenizer(root / "tokenizer", [p["prompt"] for p in prompts])
    body = {
        "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": DEFAULT_MODEL},
        "n": 1,
        "soft_labels": {"top_k": top_k, "tokenizer": tokenizer},
        "prompts": prompts,
    }
    job_id = jobs.create_job(engine, JobIn.model_validate(body)).id
    reply = {"top_logprobs": top_k, "return_tokens_as_token_ids": True, "seed": 1}
    total = 0
    for task in queue.claim(engine, "bench", samples, 3600, max_attempts=3):
        text = pad(compose(task.prompt or "", 1, 0, 1.0), tokens)
        labels = from_openai(chat_logprobs(text, reply, 0)["logprobs"]["content"], top_k)
        total += len(labels)
        verdict = (NamedVerdict("format", True, None, {}),)
        sample = NewSample(0, text, text, "stop", len(labels), verdict, pack(labels))
        finishing.finish(engine, task, "bench", [sample], prompt_tokens=10)
    engine.dispose()
    return job_id, tokenizer, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000)
    parser.add_argument("--tokens", type=int, default=1_000)
    parser.add_argument("--top-k", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tracemill-soft-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        job_id, tokenizer, tokens = build(root, args.samples, args.tokens, args.top_k)
        built = time.perf_counter() - started
        print(f"built {args.samples} samples, {tokens} tokens, top-{args.top_k}, in {built:.0f} s")
        engine = make_engine(f"sqlite:///{root / 'tracemill.db'}")
        store = ShardStore(root / "shards")
        started = time.perf_counter()
        shards.flush_all(engine, store, shard_rows=5_000)
        flushed = time.perf_counter() - started
        with reading(engine) as conn:
            sizes = dict(
                conn.execute(select(Shard.kind, Shard.num_bytes).where(Shard.job_id == job_id)).all()
            )
        per_token = sizes["softlabels"] / tokens
        print(
            f"flush: {flushed:.1f} s; text shard {sizes['accepted'] / 1e6:.1f} MB, soft-label shard "
            f"{sizes['softlabels'] / 1e6:.1f} MB = {per_token:.1f} bytes per token "
            f"({per_token / args.top_k:.2f} per kept log-probability; raw int32 id + float16 is 6)"
        )
        started = time.perf_counter()
        report = export(
            engine,
            store,
            ExportOptions(jobs=(job_id,), output=root / "out", general=(), student_tokenizer=tokenizer),
        )
        seconds = time.perf_counter() - started
        rate = report.soft_labeled / seconds
        print(f"export: {report.soft_labeled} rows with soft labels in {seconds:.1f} s = {rate:.0f} rows/s")
        print(f"soft_labels: bytes_per_token={per_token:.1f} export_rows_per_s={rate:.0f}")
        engine.dispose()


if __name__ == "__main__":
    main()
