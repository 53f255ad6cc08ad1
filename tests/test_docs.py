"""The README keeps up: every built-in verifier is documented, and CI runs the README's test command."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

from verifiers.registry import ENTRY_POINT_GROUP

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_builtin_verifier_is_in_the_readme() -> None:
    ours = [
        ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.dist and ep.dist.name == "tracemill"
    ]
    assert ours
    for name in ours:
        assert f"| `{name}` |" in README, f"verifier {name} is not documented in README.md"


def test_ci_runs_the_readme_test_command() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(\./scripts/\S+)", quick_start, re.MULTILINE)
    assert commands == ["./scripts/demo", "./scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == "./scripts/test"
