"""Presets of code sets: the tests as the dataset stores them, checked by the code verifier."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from service.presets.preset import Preset, Row, text_of
from verifiers.code.test_layouts import read_tests

STDIN_TASK = (
    "Write a Python 3 program that reads standard input and writes standard output; "
    "give it in one ```python code block."
)
STARTER_TASK = "Complete this code in Python 3 and give the whole of it in one ```python code block:"
FUNCTION_TEMPLATE = (
    "{prompt}\n\nWrite the solution in Python 3 and give it in one ```python code block; "
    "the tests import it as a module named `solution`."
)


def _code_prompt(question: str, starter: str = "starter_code") -> Callable[[Row], str]:
    """The problem and what to give: a program over stdin, or the starter code completed (where the
    dataset gives one, its tests call a function: TACO's ``fn_name``, LiveCodeBench's functional)."""

    def prompt(row: Row) -> str:
        code = text_of(row.get(starter))
        text = str(row[question]).strip()
        return f"{text}\n\n{STARTER_TASK}\n```python\n{code}\n```" if code else f"{text}\n\n{STDIN_TASK}"

    return prompt


def _stored_tests(column: str) -> Callable[[Row], Any]:
    """The tests as the column stores them; None where it stores none."""

    def tests(row: Row) -> Any:
        value = row[column]
        return None if value is None or str(value).strip() in ("", "{}", "[]") else value

    return tests


def _codecontests_tests(row: Row) -> list[dict[str, Any]]:
    parts = [row[c] for c in ("public_tests", "private_tests", "generated_tests") if row.get(c)]
    return [test for part in parts for test in read_tests(part)]


def _json_object(value: Any) -> dict[str, Any]:
    parsed = json.loads(value) if isinstance(value, str) and value.strip() else value
    return parsed if isinstance(parsed, dict) else {}


def _livecodebench_tests(row: Row) -> list[dict[str, Any]]:
    metadata = _json_object(row["metadata"])
    return read_tests(row["public_test_cases"], metadata) + read_tests(row["private_test_cases"], metadata)


def _codeforces_skip(row: Row) -> str | None:
    if text_of(row.get("generated_checker")):
        return "needs a checker (several outputs are right)"
    if text_of(row.get("interaction_format")):
        return "interactive"
    return None


def _mbpp_prompt(row: Row) -> str:
    return f"{row['text']}\nYour code should pass this test:\n{row['test_list'][0]}"


CODE_SETS = [
    Preset(
        "taco",
        "BAAI/TACO",
        "Apache-2.0 (problems from the sites it names)",
        ("question", "input_output"),
        prompt=_code_prompt("question"),
        tests=_stored_tests("input_output"),
        missing="no tests",
        metadata=("difficulty", "source", "url"),
        verifiers=("format", "code"),
    ),
    Preset(
        "apps",
        "codeparrot/apps",
        "MIT",
        ("question", "input_output"),
        prompt=_code_prompt("question"),
        tests=_stored_tests("input_output"),
        missing="no tests",
        id="problem_id",
        metadata=("difficulty", "url"),
        verifiers=("format", "code"),
    ),
    Preset(
        "codecontests",
        "deepmind/code_contests",
        "CC-BY-4.0",
        ("description", "public_tests"),
        prompt=_code_prompt("description"),
        tests=_codecontests_tests,
        missing="no tests",
        id="name",
        metadata=("difficulty", "source", "cf_rating"),
        verifiers=("format", "code"),
    ),
    Preset(
        "livecodebench",
        "livecodebench/code_generation_lite",
        "see its card (problems from LeetCode, AtCoder, Codeforces)",
        ("question_content", "public_test_cases", "private_test_cases", "metadata"),
        prompt=_code_prompt("question_content"),
        tests=_livecodebench_tests,
        id="question_id",
        metadata=("platform", "difficulty", "contest_date"),
        metadata_of=lambda r: _json_object(r["metadata"]),
        verifiers=("format", "code"),
    ),
    Preset(
        "kodcode",
        "KodCode/KodCode-V1",
        "CC-BY-NC-4.0",
        ("question", "test"),
        prompt=lambda r: str(r["question"]),
        tests=_stored_tests("test"),
        missing="no tests",
        id="question_id",
        metadata=("subset", "style", "gpt_difficulty"),
        verifiers=("format", "code"),
        template=FUNCTION_TEMPLATE,
    ),
    Preset(
        "codeforces",
        "open-r1/codeforces",
        "CC-BY-4.0",
        ("prompt", "official_tests"),
        prompt=lambda r: str(r["prompt"]),
        tests=lambda r: r["official_tests"],
        skip=_codeforces_skip,
        missing="no tests",
        id="id",
        metadata=("rating", "tags", "contest_id"),
        verifiers=("format", "code"),
    ),
    Preset(
        "humaneval",
        "openai/openai_humaneval",
        "MIT",
        ("prompt", "test", "entry_point"),
        prompt=lambda r: f"Complete this function:\n```python\n{r['prompt']}```",
        tests=lambda r: [{"type": "assert", "code": r["test"], "entry_point": r["entry_point"]}],
        id="task_id",
        verifiers=("format", "code"),
        template="{prompt}\n\nGive the whole function in one ```python code block.",
    ),
    Preset(
        "mbpp",
        "google-research-datasets/mbpp",
        "CC-BY-4.0",
        ("text", "test_list"),
        prompt=_mbpp_prompt,
        tests=lambda r: r["test_list"],
        id="task_id",
        verifiers=("format", "code"),
        template="{prompt}\n\nGive the function in one ```python code block.",
    ),
]
