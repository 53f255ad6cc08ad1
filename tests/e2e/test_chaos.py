"""The chaos script, small: one run with kills of workers and of the API server, and one across three
hosts in network namespaces (cut, killed, partitioned), must lose nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netns import unavailable as namespaces_unavailable

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_chaos_run_loses_and_doubles_nothing() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "chaos.py"),
            "--runs",
            "1",
            "--prompts",
            "16",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    last = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout + result.stderr
    figures = dict(re.findall(r"(\w+)=(\d+)", last))
    assert last.startswith("chaos:") and int(figures["kills"]) >= 1
    assert (figures["lost"], figures["doubled"], figures["corrupt"], figures["mismatched"]) == (
        "0",
        "0",
        "0",
        "0",
    )


_no_hosts = namespaces_unavailable()
if _no_hosts and os.environ.get("TRACEMILL_REQUIRE_SLURM"):  # CI: the namespaces the Slurm test needs too
    raise RuntimeError(f"TRACEMILL_REQUIRE_SLURM is set but network namespaces cannot be made: {_no_hosts}")


@pytest.mark.skipif(_no_hosts is not None, reason=f"no test hosts here: {_no_hosts}")
def test_hosts_cut_killed_and_partitioned_lose_and_double_nothing() -> None:
    argv = ["--hosts", "3", "--runs", "1", "--prompts", "60", "--workers", "2"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos.py"), *argv],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    print(last)
    figures = dict(re.findall(r"(\w+)=(\d+)", last))
    assert last.startswith("chaos: hosts=3 runs=1")
    assert (figures["lost"], figures["doubled"], figures["corrupt"]) == ("0", "0", "0")
