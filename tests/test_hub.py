"""`tracemill export --push-to-hub` against a loopback stand-in of the Hub: every file arrives, the
repository is private, and the token travels only in the Authorization header."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine

from service.export.hub import HubPushFailed, push_to_hub
from tests.hub_standin import hub_standin
from tests.test_export import _job_with_shards

TOKEN = "hf_tracemill_test_token_9c2e"


def test_push_sends_every_file_privately_with_the_token_only_in_the_header(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    job_id = _job_with_shards(engine, tmp_path / "shards")
    out = tmp_path / "export"
    with hub_standin() as (endpoint, log):
        env = {
            **os.environ,
            "HF_TOKEN": TOKEN,
            "HF_ENDPOINT": endpoint,
            "TRACEMILL_DATABASE_URL": db_url,
            "TRACEMILL_SHARD_DIR": str(tmp_path / "shards"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "service.cli",
                "export",
                "--job",
                job_id,
                "--output",
                str(out),
                "--push-to-hub",
                "someone/distilled",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert "pushed to" in result.stdout and TOKEN not in result.stdout + result.stderr
    created = log.repos["someone/distilled"]
    assert created.get("visibility") == "private" or created.get("private") is True  # huggingface_hub 2 / 1
    local = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert log.files["someone/distilled"] == local
    assert "README.md" in local and any(name.startswith("data/train-") for name in local)
    for request in log.requests:
        assert request.headers.get("authorization") == f"Bearer {TOKEN}"
        others = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        assert TOKEN not in request.path and TOKEN.encode() not in request.body and TOKEN not in str(others)


def test_a_push_without_a_token_is_refused(tmp_path: Path) -> None:
    try:
        push_to_hub(tmp_path, "someone/x", None)
    except HubPushFailed as exc:
        assert "HF_TOKEN" in exc.message
    else:
        raise AssertionError("pushed without a token")
