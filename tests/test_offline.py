"""`tracemill verify`: re-judge data users already have, a file or a single completion at a time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CLI = [sys.executable, "-m", "service.cli", "verify"]
ROWS = [
    {"id": 1, "completion": "<think>6*7</think> The answer is $\\boxed{42}$.", "reference": "42"},
    {"id": 2, "completion": "<think>6*7</think> The answer is $\\boxed{41}$.", "reference": "42"},
    {"id": 3, "completion": "The answer is $\\boxed{42}$.", "reference": "42"},
    {"id": 4, "completion": "<think>我们先把这个表达式拆开来计算。</think> $\\boxed{42}$", "reference": "42"},
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "--processes", "1"], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_jsonl_file(tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS))
    result = _run(
        "--verifier",
        "format",
        "--verifier",
        "math",
        "--verifier",
        "langmix",
        "--options",
        'langmix={"language": "en"}',
        "--input",
        str(source),
        "--output",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    assert [r["reason"] for r in rows] == [None, "math:wrong_answer", "format:missing_think", "langmix:mixed"]
    assert [v["verifier"] for v in rows[0]["verdicts"]] == ["format", "math", "langmix"]
    assert json.loads(rows[1]["verdicts"][1]["details"])["extracted"] == "41"


def test_a_parquet_file_with_other_column_names(tmp_path: Path) -> None:
    source, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    renamed = [{"generation": r["completion"], "gold": r["reference"]} for r in ROWS]
    pq.write_table(pa.Table.from_pylist(renamed), source)
    result = _run(
        "--verifier",
        "math",
        "--input",
        str(source),
        "--output",
        str(out),
        "--completion-field",
        "generation",
        "--reference-field",
        "gold",
    )
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.column("accepted").to_pylist() == [True, False, True, True]
    assert table.column("generation").to_pylist() == [r["generation"] for r in renamed]


def test_a_single_completion_prints_its_verdict() -> None:
    good = _run("--verifier", "math", "--completion", "so \\boxed{\\frac{1}{2}}", "--reference", "0.5")
    assert good.returncode == 0
    assert json.loads(good.stdout)["verdicts"][0]["details"]["extracted"] == "\\frac{1}{2}"
    bad = _run("--verifier", "math", "--completion", "so \\boxed{3}", "--reference", "0.5")
    assert bad.returncode == 1 and json.loads(bad.stdout)["reason"] == "math:wrong_answer"


def test_mistakes_are_explained(tmp_path: Path) -> None:
    assert "unknown verifier 'nope'" in _run("--verifier", "nope", "--completion", "x").stderr
    bad_option = _run("--verifier", "math", "--options", 'math={"timeout_s": 0}', "--completion", "x").stderr
    assert "--options math: timeout_s: Input should be greater than 0" in bad_option
    assert "--output" in _run("--verifier", "math", "--input", "in.jsonl").stderr
    missing = tmp_path / "in.jsonl"
    missing.write_text(json.dumps({"text": "x"}) + "\n")
    result = _run("--verifier", "math", "--input", str(missing), "--output", str(tmp_path / "o.jsonl"))
    assert result.returncode == 2 and "no text column 'completion'" in result.stderr


CHINESE_TRACE = "<think>我们先把这个表达式拆开来计算然后再验证结果。</think>所以答案是 $\\boxed{42}$。"


def test_each_row_may_name_its_language_or_carry_its_prompt_as_messages(tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [
        {"completion": CHINESE_TRACE, "lang": "zh-CN"},
        {"completion": CHINESE_TRACE, "lang": "en"},
        {
            "completion": CHINESE_TRACE,
            "lang": None,
            "question": [{"role": "user", "content": "计算六乘七。"}],
        },
        {"completion": CHINESE_TRACE, "question": [{"role": "user", "content": "What is six times seven?"}]},
    ]
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    result = _run(
        *("--verifier", "langmix", "--input", str(source), "--output", str(out)),
        *("--language-field", "lang", "--prompt-field", "question"),
    )
    assert result.returncode == 0, result.stderr
    verdicts = [json.loads(line)["verdicts"][0] for line in out.read_text().splitlines()]
    assert [json.loads(v["details"])["language"] for v in verdicts] == ["zh", "en", "zh", "en"]
    assert [v["reason"] for v in verdicts] == [None, "langmix:mixed", None, "langmix:mixed"]


def test_an_unknown_language_is_named_and_leaves_no_output(tmp_path: Path) -> None:
    source, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.Table.from_pylist([{"completion": CHINESE_TRACE, "lang": "tlh"}]), source)
    result = _run(
        "--verifier", "langmix", "--input", str(source), "--output", str(out), "--language-field", "lang"
    )
    assert result.returncode == 2
    assert "column 'lang': 'tlh' is not a language langmix knows (en, zh, ja, ko, ru)" in result.stderr
    assert list(tmp_path.iterdir()) == [source]
