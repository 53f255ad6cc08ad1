"""The code verifier over real programs in the real sandbox: Python and C++, both test kinds."""

from __future__ import annotations

from typing import Any

import pytest

from verifiers.base import Candidate, Verdict
from verifiers.code.verifier import CodeOptions, CodeVerifier, extract_program, outputs_match

SUM_TESTS = (
    {"type": "stdin_stdout", "input": "1 2\n", "output": "3\n"},
    {"type": "stdin_stdout", "input": "10 -4\n", "output": "6"},
)
PY_RIGHT = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
PY_WRONG = "```python\na, b = map(int, input().split())\nprint(a - b)\n```"
CPP_RIGHT = '```cpp\n#include <iostream>\nint main(){long a,b; std::cin>>a>>b; std::cout<<a+b<<"\\n";}\n```'
CPP_WRONG = '```cpp\n#include <iostream>\nint main(){long a,b; std::cin>>a>>b; std::cout<<a*b<<"\\n";}\n```'
ADD_ASSERTS = ({"type": "assert", "code": "assert add(2, 3) == 5\nassert add(-1, 1) == 0"},)
HUMANEVAL = (
    {
        "type": "assert",
        "code": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
        "entry_point": "add",
    },
)


def _verify(answer: str, tests: tuple[dict[str, Any], ...] | None, **options: Any) -> Verdict:
    verifier = CodeVerifier(CodeOptions.model_validate(options))
    return verifier.verify(Candidate(f"<think>x</think>{answer}", "x", answer, tests=tests))


@pytest.mark.parametrize(
    ("answer", "tests", "options", "reason"),
    [
        (PY_RIGHT, SUM_TESTS, {}, None),
        (PY_WRONG, SUM_TESTS, {}, "code:wrong_answer"),
        ("```python\ndef f(:\n```", SUM_TESTS, {}, "code:syntax_error"),
        ("```python\nraise SystemExit(3)\n```", SUM_TESTS, {}, "code:runtime_error"),
        ("```python\nprint(1/0)\n```", SUM_TESTS, {}, "code:runtime_error"),
        ("no code at all", SUM_TESTS, {}, "code:no_code"),
        ("a, b = map(int, input().split())\nprint(a + b)", SUM_TESTS, {"whole_answer": True}, None),
        (PY_RIGHT, None, {}, "code:no_tests"),
        ("```python\ndef add(a, b):\n    return a + b\n```", ADD_ASSERTS, {}, None),
        ("```python\ndef add(a, b):\n    return a * b\n```", ADD_ASSERTS, {}, "code:wrong_answer"),
        ("```python\ndef add(a, b):\n    return a + b\n```", HUMANEVAL, {}, None),
        ("```python\ndef add(a, b):\n    return b - a\n```", HUMANEVAL, {}, "code:wrong_answer"),
        (PY_RIGHT, ({"inputs": ["1 1\n", "2 2\n"], "outputs": ["2\n", "4\n"]},), {}, None),
        (
            "```python\nprint(3.14159)\n```",
            ({"input": "", "output": "3.1416"},),
            {"float_tolerance": 1e-4},
            None,
        ),
        (
            "```python\nprint(3.2)\n```",
            ({"input": "", "output": "3.1416"},),
            {"float_tolerance": 1e-4},
            "code:wrong_answer",
        ),
        (CPP_RIGHT, SUM_TESTS, {}, None),
        (CPP_WRONG, SUM_TESTS, {}, "code:wrong_answer"),
        ("```cpp\nint main( {\n```", SUM_TESTS, {}, "code:syntax_error"),
        (CPP_RIGHT, ADD_ASSERTS, {}, "code:bad_test"),
    ],
)
def test_case(
    answer: str, tests: tuple[dict[str, Any], ...] | None, options: dict[str, Any], reason: str | None
) -> None:
    verdict = _verify(answer, tests, **options)
    assert verdict.reason == reason, verdict.details


def test_details_name_the_first_failure() -> None:
    verdict = _verify(PY_WRONG, SUM_TESTS, all_tests=True)
    assert verdict.details["passed"] == 0 and verdict.details["total"] == 2
    failure = verdict.details["first_failure"]
    assert failure["test"] == 0 and failure["input"] == "1 2\n" and failure["got"] == "-1\n"
    assert verdict.details["isolation"] in ("namespaces+uid", "user-namespaces", "rlimits")


def test_stops_at_the_first_failure_unless_asked() -> None:
    tests = ({"input": "", "output": "no"},) * 3
    assert _verify("```python\nprint('yes')\n```", tests).details["passed"] == 0
    assert (
        _verify(
            "```python\nimport sys; print('no' if sys.stdin.read() == '' else 1)\n```", tests, all_tests=True
        ).details["passed"]
        == 3
    )


def test_extraction_and_comparison() -> None:
    options = CodeOptions()
    assert extract_program("```py\nx\n```\ntext\n```c++\ny\n```", options) == ("cpp", "y\n")
    assert extract_program("```\nz\n```", options) == ("python", "z\n")
    assert outputs_match("1 2  \n3\n\n\n", "1 2\n3", None)
    assert not outputs_match("1 2 3", "1 2\n3", None)
    assert outputs_match("0.333333", "0.3333333", 1e-6)
