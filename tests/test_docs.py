"""The docs keep up: every built-in verifier, setting and command is in the reference under docs/, the
README's links lead there, and CI runs the README's test command. (The reference itself is built
with MkDocs in strict mode by scripts/test, which fails on a broken link or anchor between pages.)"""

from __future__ import annotations

import argparse
import re
from importlib.metadata import entry_points
from pathlib import Path

from service.cli.main import build_parser
from service.settings import Settings
from verifiers.registry import ENTRY_POINT_GROUP

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
README_MAX_LINES = 250


def test_every_builtin_verifier_is_in_the_reference() -> None:
    verifiers = (DOCS / "verifiers.md").read_text()
    ours = [
        ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.dist and ep.dist.name == "tracemill"
    ]
    assert ours
    for name in ours:
        assert f"| `{name}` |" in verifiers, f"verifier {name} is not documented in docs/verifiers.md"


def test_every_setting_is_in_the_configuration_page() -> None:
    configuration = (DOCS / "configuration.md").read_text()
    for name, field in Settings.model_fields.items():
        variable = field.validation_alias if isinstance(field.validation_alias, str) else f"TRACEMILL_{name}"
        assert f"`{variable.upper()}`" in configuration, f"{variable.upper()} is not in docs/configuration.md"


def test_every_command_is_in_the_commands_page() -> None:
    commands = (DOCS / "commands.md").read_text()
    parser = build_parser()
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in subparsers.choices:
        assert f"`tracemill {name}" in commands, f"tracemill {name} is not in docs/commands.md"


def test_the_readme_is_a_front_door_whose_links_lead_somewhere() -> None:
    assert len(README.splitlines()) <= README_MAX_LINES
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", README)
    assert links
    for link in links:
        assert (ROOT / link).is_file(), link
    built = re.findall(r"^\s+- \w[^:]*: (\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE)
    assert sorted(built) == sorted(p.name for p in DOCS.glob("*.md")), "a page is missing from the nav"


def test_ci_runs_the_readme_test_command() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(\./scripts/\S+)", quick_start, re.MULTILINE)
    assert commands == ["./scripts/demo", "./scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == "./scripts/test"
