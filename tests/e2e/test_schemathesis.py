"""The schema fuzz of ``bench/fuzz.py`` in CI: schemathesis against a live, token-protected server, at
least 500 cases, none a 5xx and every 400/422 naming its field."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_generated_request_is_a_server_error_and_every_refusal_names_its_field() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--examples", "30"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    found = re.fullmatch(r"fuzz: cases=(\d+) server_errors=(\d+) unnamed_4xx=(\d+)", last)
    assert found, result.stdout[-4000:] + result.stderr[-2000:]
    cases, server_errors, unnamed = map(int, found.groups())
    assert (server_errors, unnamed) == (0, 0), result.stdout[-4000:]
    assert cases >= 500 and result.returncode == 0, last
