"""Adversarial programs end in a rejection within their limits; the host is unharmed afterwards.

They run as a job's samples would: through the verifier pool, the code verifier and the sandbox.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from verifiers.base import Candidate
from verifiers.code import sandbox
from verifiers.runner import VerifierRunner, VerifierSpec

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="the uid and mount checks need the root sandbox")
SECRET = "tracemill-sandbox-secret-7d1e"
MARKER = Path.home() / "tracemill-sandbox-pwned"
TESTS = ({"type": "stdin_stdout", "input": "5\n", "output": "25\n"},)
LIMITS = {"test_timeout_s": 1.0, "memory_mb": 256}

ADVERSARIAL = {
    "infinite loop": ("while True:\n    pass", "code:timeout", 4),
    "sleeping forever": ("import time\ntime.sleep(1000)", "code:timeout", 5),
    "fork bomb": (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "code:timeout",
        6,
    ),
    "allocate 10 GB": ("x = bytearray(10 * 1024**3)\nprint(25)", "code:memory_limit", 4),
    "write 1 GB to disk": (
        "f = open('big', 'wb')\nfor _ in range(1024):\n    f.write(b'0' * 2**20)",
        "code:output_limit",
        4,
    ),
    "write outside the work folder": (f"open({str(MARKER)!r}, 'w').write('x')\nprint(25)", None, 4),
    "read a secret from the environment": (
        f"import os\nprint(os.environ.get('{SECRET[:9].upper()}', 'none'))",
        "code:wrong_answer",
        4,
    ),
    "socket to 127.0.0.1": (
        "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=2)\nprint(25)",
        "code:runtime_error",
        4,
    ),
    "socket to an outside address": (
        "import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=2)\nprint(25)",
        "code:runtime_error",
        4,
    ),
    "os.system": (
        "import os\nos.system('touch /etc/tracemill-pwned; cat /etc/shadow')\nprint(24)",
        "code:wrong_answer",
        4,
    ),
    "kill its parent": (
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nimport time\ntime.sleep(5)",
        "code:runtime_error",
        4,
    ),
    "print 100 MB": (
        "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 2**20)",
        "code:output_limit",
        4,
    ),
}


OUTSIDE = "socket to an outside address"


def _runnable(name: str) -> bool:
    """Without a network namespace the outside-address program would really send packets: never run it."""
    return name != OUTSIDE or sandbox.isolation() != "rlimits"


@pytest.fixture(scope="module")
def runner() -> Iterator[VerifierRunner]:
    os.environ[SECRET[:9].upper()] = SECRET  # the worker has a secret the program must not see
    runner = VerifierRunner(processes=2, timeout_s=60)
    yield runner
    runner.close()
    os.environ.pop(SECRET[:9].upper(), None)


def _judge(runner: VerifierRunner, program: str) -> tuple[str | None, dict[str, object], float]:
    answer = f"```python\n{program}\n```"
    start = time.monotonic()
    [[verdict]] = asyncio.run(
        runner.verify(
            [VerifierSpec("code", LIMITS)], [Candidate(f"<think>x</think>{answer}", "x", answer, tests=TESTS)]
        )
    )
    return verdict.reason, verdict.details, time.monotonic() - start


def _sandbox_processes() -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if sandbox.SLOT_UID_BASE <= entry.stat().st_uid < sandbox.SLOT_UID_BASE + sandbox.SLOTS:
                    found.append(int(entry.name))
            except FileNotFoundError:
                continue
    return found


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_program_is_rejected_within_its_limits(runner: VerifierRunner, name: str) -> None:
    if not _runnable(name):
        pytest.skip("no network namespace here")
    program, reason, seconds = ADVERSARIAL[name]
    got, details, elapsed = _judge(runner, program)
    assert elapsed < seconds, f"{name} took {elapsed:.1f} s"
    if reason is None:  # writing outside must fail; the program then dies before printing
        assert got in ("code:runtime_error", "code:wrong_answer"), details
    else:
        assert got == reason, details
    assert SECRET not in str(details)


def test_the_host_is_unharmed_afterwards(runner: VerifierRunner) -> None:
    for name, (program, *_) in ADVERSARIAL.items():
        if _runnable(name):
            _judge(runner, program)
    assert not MARKER.exists()
    assert not Path("/etc/tracemill-pwned").exists()
    assert _sandbox_processes() == []
    leftovers = [p for p in Path("/tmp").glob("tracemill-code-*")] + [
        p for p in Path("/tmp").glob("tracemill-io-*")
    ]
    assert leftovers == []
    reason, details, _ = _judge(runner, "print(int(input()) ** 2)")  # the pool still serves
    assert reason is None, details


@ROOT_ONLY
def test_root_isolation_level() -> None:
    assert sandbox.isolation() == "namespaces+uid"
