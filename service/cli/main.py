"""``tracemill``: one parser, its commands declared by their modules (servers, jobs, data)."""

from __future__ import annotations

import argparse
import sys

from service.cli import cluster, data, jobs, servers
from service.errors import TracemillError
from service.settings import Settings

DESCRIPTION = "Rejection sampling from a reasoning teacher into SFT data for a student."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracemill",
        description="Rejection sampling from a reasoning teacher into SFT data for a student.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for commands in (servers, jobs, data, cluster):
        commands.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args, Settings()))
    except TracemillError as exc:
        print(f"tracemill: {exc.message}", file=sys.stderr)
        return 2
