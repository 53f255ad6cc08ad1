"""Code tests in the datasets' own layouts, right and wrong programs, in the real sandbox: APPS/TACO
call-based rows, LiveCodeBench functional rows (also compressed), KodCode pytest files, MBPP lists."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from typing import Any

import pytest

from verifiers.base import Candidate, Verdict
from verifiers.code.test_layouts import MAX_INFLATED_BYTES, BadTests, read_tests
from verifiers.code.verifier import CodeOptions, CodeVerifier

# TACO stores input_output as a JSON text; APPS call-based outputs hold each return value in a list.
TACO_CALL = json.dumps(
    {"fn_name": "pair_sum", "inputs": [[[1, 2, 3], 5], [[4], 9]], "outputs": [[True], [False]]}
)
TACO_STDIN = json.dumps({"inputs": ["3\n1 2 3\n", "1\n7\n"], "outputs": ["6\n", "7\n"]})
PAIR_SUM = (
    "def pair_sum(xs, target):\n"
    "    seen = set()\n"
    "    for x in xs:\n"
    "        if target - x in seen:\n"
    "            return True\n"
    "        seen.add(x)\n"
    "    return False\n"
)
PAIR_SUM_CLASS = "class Solution:\n    def pair_sum(self, xs, target):\n" + "".join(
    "    " + line + "\n" for line in PAIR_SUM.splitlines()[1:]
)
# LiveCodeBench: tests as a JSON text, one argument a line, the function's name in the metadata.
LCB_TESTS = [
    {"input": "[2, 7, 11, 15]\n9", "output": "[0, 1]", "testtype": "functional"},
    {"input": "[3, 3]\n6", "output": "[0, 1]", "testtype": "functional"},
]
LCB_METADATA = {"func_name": "twoSum"}
TWO_SUM = (
    "from typing import List\n\nclass Solution:\n"
    "    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
    "        where = {}\n"
    "        for i, x in enumerate(nums):\n"
    "            if target - x in where:\n"
    "                return [where[target - x], i]\n"
    "            where[x] = i\n"
    "        return []\n"
)
KODCODE_TEST = (
    "import pytest\nfrom solution import mean\n\n"
    "def test_mean_of_integers():\n    assert mean([1, 2, 3]) == 2\n\n"
    "def test_mean_is_approximate():\n    assert mean([0.1, 0.2]) == pytest.approx(0.15)\n\n"
    "@pytest.mark.parametrize('values, expected', [([5], 5), ([2, 4], 3)])\n"
    "def test_mean_cases(values, expected):\n    assert mean(values) == expected\n\n"
    "def test_mean_of_nothing_raises():\n"
    "    with pytest.raises(ValueError, match='empty'):\n        mean([])\n"
)
MEAN = (
    "def mean(values):\n    if not values:\n        raise ValueError('empty list')\n"
    "    return sum(values) / len(values)\n"
)
MBPP = ["assert square(3) == 9", "assert square(-2) == 4"]
CODECONTESTS = {"input": ["1 2\n", "5 5\n"], "output": ["3\n", "10\n"]}


def _verify(program: str, tests: Any, metadata: dict[str, Any] | None = None, **options: Any) -> Verdict:
    answer = f"```python\n{program}```"
    verifier = CodeVerifier(CodeOptions.model_validate(options))
    return verifier.verify(
        Candidate(f"<think>x</think>{answer}", "x", answer, tests=tests, metadata=metadata)
    )


def _lcb_compressed(tests: list[dict[str, str]]) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


CASES = [
    ("TACO call-based, a function", PAIR_SUM, TACO_CALL, None, None, 2),
    ("TACO call-based, a Solution class", PAIR_SUM_CLASS, TACO_CALL, None, None, 2),
    (
        "TACO call-based, wrong",
        PAIR_SUM.replace("return True", "return 1"),
        TACO_CALL,
        None,
        "code:wrong_answer",
        1,
    ),
    (
        "TACO call-based, another name",
        PAIR_SUM.replace("pair_sum", "has_pair"),
        TACO_CALL,
        None,
        "code:runtime_error",
        0,
    ),
    ("TACO stdin", "input()\nprint(sum(map(int, input().split())))\n", TACO_STDIN, None, None, 2),
    (
        "TACO stdin, wrong",
        "input()\nprint(max(map(int, input().split())))\n",
        TACO_STDIN,
        None,
        "code:wrong_answer",
        1,
    ),
    ("LiveCodeBench functional", TWO_SUM, json.dumps(LCB_TESTS), LCB_METADATA, None, 2),
    ("LiveCodeBench compressed", TWO_SUM, _lcb_compressed(LCB_TESTS), LCB_METADATA, None, 2),
    (
        "LiveCodeBench, wrong",
        TWO_SUM.replace("[where[target - x], i]", "[i, where[target - x]]"),
        LCB_TESTS,
        LCB_METADATA,
        "code:wrong_answer",
        0,
    ),
    ("KodCode pytest", MEAN, KODCODE_TEST, None, None, 4),
    (
        "KodCode pytest, no error raised",
        MEAN.replace("raise ValueError('empty list')", "return 0"),
        KODCODE_TEST,
        None,
        "code:wrong_answer",
        3,
    ),
    ("KodCode pytest, integer mean", MEAN.replace("/", "//"), KODCODE_TEST, None, "code:wrong_answer", 3),
    ("MBPP test_list", "def square(x):\n    return x * x\n", MBPP, None, None, 2),
    ("MBPP test_list, wrong", "def square(x):\n    return 2 * x\n", MBPP, None, "code:wrong_answer", 0),
    ("CodeContests", "a, b = map(int, input().split())\nprint(a + b)\n", CODECONTESTS, None, None, 2),
]


@pytest.mark.parametrize(
    ("layout", "program", "tests", "metadata", "reason", "passed"), CASES, ids=[c[0] for c in CASES]
)
def test_each_layout_judges_right_and_wrong_programs(  # noqa: PLR0917  # one row of CASES
    layout: str, program: str, tests: Any, metadata: dict[str, Any] | None, reason: str | None, passed: int
) -> None:
    verdict = _verify(program, tests, metadata, all_tests=True)
    assert (verdict.accepted, verdict.reason) == (reason is None, reason), verdict.details
    assert verdict.details["passed"] == passed, verdict.details


def test_a_call_failure_shows_the_call_and_both_values() -> None:
    verdict = _verify(PAIR_SUM.replace("return False", "return None"), TACO_CALL)
    failure = verdict.details["first_failure"]
    assert failure["input"] == "pair_sum(*[[4], 9])" and failure["expected"] == "[false]", failure
    assert "pair_sum() returned None, expected [False]" in failure["stderr"], failure


@pytest.mark.parametrize(
    ("program", "reason"),
    [
        # An object equal to everything never reaches the comparison: it is not plain data.
        (
            "class Yes:\n    def __eq__(self, other):\n        return True\n\n"
            "def pair_sum(xs, target):\n    return Yes()\n",
            "code:wrong_answer",
        ),
        ("import sys\n\ndef pair_sum(xs, target):\n    sys.exit(0)\n", "code:tests_not_run"),
        ("def pair_sum(xs, target):\n    while True:\n        pass\n", "code:timeout"),
        # True is not 1, though Python says they are equal.
        (
            "def pair_sum(xs, target):\n    return int(any(target - x in xs for x in xs))\n",
            "code:wrong_answer",
        ),
    ],
    ids=["always-equal object", "exits 0", "loops", "1 for True"],
)
def test_call_tests_refuse_what_would_fool_them(program: str, reason: str) -> None:
    verdict = _verify(program, TACO_CALL, test_timeout_s=1)
    assert verdict.reason == reason, verdict.details


def test_a_pytest_file_cannot_reach_a_program_written_file_named_like_its_imports() -> None:
    """The program writes ``pytest.py`` and ``solution.py`` into its folder (``harness_checks.py`` is not
    its to write); the tests' side has loaded what it needs before the program ran, and its folder is
    not on the import path."""
    program = (
        "for name in ('pytest.py', 'harness_checks.py', 'solution.py'):\n"
        "    try:\n"
        "        open(name, 'w').write('raise SystemExit(0)\\n')\n"
        "    except OSError:\n"
        "        pass\n" + MEAN
    )
    verdict = _verify(program, KODCODE_TEST, all_tests=True)
    assert verdict.accepted and verdict.details["passed"] == 4, verdict.details


def test_the_float_tolerance_reaches_return_values() -> None:
    tests = {"fn_name": "third", "inputs": [[1]], "outputs": [[0.3333]]}
    program = "def third(x):\n    return x / 3\n"
    assert _verify(program, tests).reason == "code:wrong_answer"
    assert _verify(program, tests, float_tolerance=1e-3).accepted


def test_json_values_compare_as_json() -> None:
    """A tuple is a list, dict keys are strings, 3 is 3.0, a list of one unwraps only in APPS's layout."""
    program = "def f(x):\n    return (x, {1: 'a'}, 3)\n"
    assert _verify(program, {"fn_name": "f", "inputs": [[2]], "outputs": [[[2, {"1": "a"}, 3.0]]]}).accepted
    lcb = [{"input": "2", "output": '[[2, {"1": "a"}, 3]]', "testtype": "functional"}]
    assert _verify(program, lcb, {"func_name": "f"}).reason == "code:wrong_answer"


@pytest.mark.parametrize(
    ("tests", "metadata", "message"),
    [
        ('{"inputs": [1, 2], "outputs": [1]', None, "tests: neither JSON"),
        ({"inputs": ["1"], "outputs": ["1", "2"]}, None, "tests: 1 inputs but 2 outputs"),
        (
            {"fn_name": "f", "inputs": [1], "outputs": [[1]]},
            None,
            "tests.inputs.0: a call's input must be its list",
        ),
        (LCB_TESTS, None, "tests.0: a functional test needs the function's name (metadata 'func_name')"),
        (
            [{"input": "[1", "output": "1", "testtype": "functional"}],
            {"func_name": "f"},
            "tests.0: a functional test's input",
        ),
        ([{"input": "1", "output": "1", "testtype": "batch"}], None, "tests.0.testtype: 'batch'"),
        ([{"type": "assert"}], None, "tests.0: a assert test needs code"),
        ([{"type": "shell", "code": "ls"}], None, "tests.0.type: 'shell' is not one of"),
        ("def test_x(tmp_path):\n    assert 1\n", None, "test_x takes fixtures (tmp_path)"),
        (
            "import pytest\n@pytest.mark.skip\ndef test_x():\n    assert 1\n",
            None,
            "test_x has @pytest.mark.skip",
        ),
        ("print('hello')\n", None, "Python code with no assert and no test_ function"),
        ([3], None, "tests.0: a test is an object or a string, not int"),
    ],
)
def test_malformed_tests_are_a_bad_test_naming_what_is_wrong(
    tests: Any, metadata: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(BadTests, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        read_tests(tests, metadata)
    verdict = _verify(PAIR_SUM, tests, metadata)
    assert verdict.reason == "code:bad_test" and message in verdict.details["error"], verdict.details


def test_compressed_tests_that_name_a_class_are_refused() -> None:
    """LiveCodeBench's compressed tests are a pickled text; a pickle that names a class is never loaded."""
    evil = base64.b64encode(zlib.compress(pickle.dumps(OSError("x")))).decode()
    with pytest.raises(BadTests, match="only plain data"):
        read_tests(evil)


def test_compressed_tests_that_inflate_past_the_bound_are_refused() -> None:
    bomb = base64.b64encode(zlib.compress(b"\0" * (MAX_INFLATED_BYTES + 1))).decode()
    with pytest.raises(BadTests, match="inflate past 256 MB"):
        read_tests(bomb)
