"""The chaos script, small: one run with kills of workers and of the API server must lose nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
