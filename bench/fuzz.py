"""Property-based fuzz of the API's OpenAPI schema against a live, token-protected ``tracemill serve``.

    python bench/fuzz.py [--examples 60] [--seed 1]

Schemathesis generates requests for every operation (examples, the schema's edge cases, stateful
sequences) and sends them with a ``submit`` token to a real server on 127.0.0.1 over real SQLite. Every
exchange is recorded (a HAR file) and counted here: no response may be a 5xx, and every 400 or 422
must name its field (``errors[].field``). The job-rate limit is off for the run so the fuzz reaches the
code behind it. The last line is ``fuzz: cases=N server_errors=N unnamed_4xx=N``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from service.launch.procs import free_port, spawn, stop, wait_http
from service.security.tokens import Role, entry_for, new_token

MIN_CASES = 500


def _names_its_field(entry: dict[str, Any]) -> bool:
    """A 400/422 answer lists errors, each naming the field at fault."""
    try:
        body = json.loads(entry["response"]["content"].get("text") or "")
    except ValueError:
        return False
    errors = body.get("errors") if isinstance(body, dict) else None
    return bool(errors) and all(isinstance(e, dict) and e.get("field") for e in errors)


def fuzz(work: Path, examples: int, seed: int) -> tuple[Counter[int], list[dict[str, Any]]]:
    """Run schemathesis against a fresh server; the status counts and every recorded exchange."""
    token = new_token()
    env = {
        "TRACEMILL_DATA_DIR": str(work),
        "TRACEMILL_TOKENS": entry_for("fuzz", Role.submit, token),
        "TRACEMILL_JOBS_PER_MINUTE": "0",
        "TRACEMILL_IMPORT_DIR": str(work),
    }
    port = free_port()
    server = spawn(["serve", "--port", str(port)], work / "api.log", env)
    har = work / "fuzz.har"
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/health", server, work / "api.log")
        command = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
        if command is None:
            raise SystemExit("schemathesis is not installed here: scripts/setup test")
        subprocess.run(
            [
                command,
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                str(examples),
                "--seed",
                str(seed),
                "--request-timeout",
                "20",
                "--report",
                "har",
                "--report-har-path",
                str(har),
                "--no-color",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=900,
            check=False,
        )
    finally:
        stop([server])
    entries: list[dict[str, Any]] = json.loads(har.read_text())["log"]["entries"]
    return Counter(e["response"]["status"] for e in entries), entries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=60, help="generated cases per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tracemill-fuzz-") as tmp:
        statuses, entries = fuzz(Path(tmp), args.examples, args.seed)
    unnamed = [e for e in entries if e["response"]["status"] in (400, 422) and not _names_its_field(e)]
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    for status, count in sorted(statuses.items()):
        print(f"HTTP {status}: {count}")
    for entry in unnamed[:5]:
        request, response = entry["request"], entry["response"]
        text = response["content"].get("text", "")[:200]
        print(f"unnamed {response['status']}: {request['method']} {request['url']}: {text}")
    cases = len(entries)
    print(f"fuzz: cases={cases} server_errors={server_errors} unnamed_4xx={len(unnamed)}")
    return 0 if cases >= MIN_CASES and server_errors == 0 and not unnamed else 1


if __name__ == "__main__":
    raise SystemExit(main())
