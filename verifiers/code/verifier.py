"""Code: run the answer's program against the prompt's tests in the sandbox.

The tests are read from the dataset's own layout by ``verifiers/code/test_layouts.py``. A stdin/stdout
test feeds the input and compares the output after trimming trailing whitespace (numbers within
``float_tolerance`` if set). Assert, call and pytest tests (Python only) run under a harness
(``verifiers/code/assert_harness.py``) that keeps the tests out of the program's reach and proves that
they ran to their end.
"""

from __future__ import annotations

import ast
import json
import marshal
import re
import secrets
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from itertools import groupby
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from verifiers.base import DETAIL_CHARS, Candidate, Verdict
from verifiers.code import assert_harness, harness_checks, sandbox
from verifiers.code.sandbox import Limits, RunResult
from verifiers.code.test_layouts import BadTests, read_tests

NAME = "code"
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_LANGUAGES = {
    "python": "python",
    "py": "python",
    "python3": "python",
    "cpp": "cpp",
    "c++": "cpp",
    "cc": "cpp",
    "cxx": "cpp",
}
_ISOLATION_RANK = {"rlimits": 0, "user-namespaces": 1, "namespaces+uid": 2}
_REASON_OF = {
    "timeout": "timeout",
    "memory": "memory_limit",
    "output_limit": "output_limit",
    "exit": "runtime_error",
    "signal": "runtime_error",
}
# What the harness's outcome means for the sample (None: the tests passed).
_OUTCOME_REASON = {
    "passed": None,
    "assertion": "wrong_answer",
    "not_plain": "wrong_answer",  # returned an object of its own class where a plain value was expected
    "ended": "tests_not_run",  # the program ended the interpreter before the tests did
    "load_error": "runtime_error",
    "error": "runtime_error",
}
HARNESS = "harness.py"
HARNESS_KINDS = frozenset(harness_checks.KINDS)


def _failure_of(outcome: dict[str, Any]) -> str | None:
    """The failure code of one harness outcome (None: the test passed)."""
    found = _OUTCOME_REASON[outcome["result"]]
    if found == "tests_not_run" and outcome.get("exit_code") not in (0, None):
        found = "timeout" if outcome["exit_code"] == -signal.SIGXCPU else "runtime_error"
    if outcome["result"] == "error" and str(outcome.get("message", "")).startswith("MemoryError"):
        found = "memory_limit"
    return found


COMPILE_LIMITS = Limits(cpu_s=30, wall_s=60, memory_mb=2048, processes=16, file_mb=128)


class CodeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    language: Literal["auto", "python", "cpp"] = "auto"
    whole_answer: bool = False
    test_timeout_s: float = Field(default=2.0, gt=0, le=60)
    memory_mb: int = Field(default=512, ge=32, le=16384)
    output_bytes: int = Field(default=1_000_000, ge=1024)
    all_tests: bool = False
    float_tolerance: float | None = Field(default=None, ge=0)
    require_isolation: Literal["rlimits", "user-namespaces", "namespaces+uid"] = "rlimits"
    timeout_s: float = Field(default=300, gt=0, le=3600, description="Bound on the whole verification.")


def extract_program(answer: str, options: CodeOptions) -> tuple[str, str] | None:
    """(language, source) of the last fenced block, or of the whole answer when the job says so."""
    blocks = _FENCE.findall(answer)
    if blocks:
        tag, source = blocks[-1]
        language = _LANGUAGES.get(tag.lower(), "python" if options.language == "auto" else options.language)
        return language, source
    if options.whole_answer and answer.strip():
        return ("python" if options.language == "auto" else options.language), answer
    return None


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _same_token(got: str, expected: str, tolerance: float) -> bool:
    if got == expected:
        return True
    try:
        a, b = float(got), float(expected)
    except ValueError:
        return False
    return abs(a - b) <= tolerance * max(1.0, abs(b))


def outputs_match(got: str, expected: str, tolerance: float | None) -> bool:
    """Equal after trimming trailing whitespace; with a tolerance, numbers may differ by that much."""
    got_lines, expected_lines = _lines(got), _lines(expected)
    if tolerance is None:
        return got_lines == expected_lines
    got_tokens, expected_tokens = " ".join(got_lines).split(), " ".join(expected_lines).split()
    return len(got_tokens) == len(expected_tokens) and all(
        _same_token(g, e, tolerance) for g, e in zip(got_tokens, expected_tokens, strict=True)
    )


def _shown(test: dict[str, Any], what: str) -> str:
    """A test's input or expected output as the first failure shows it."""
    if test["type"] == "call":
        value = test["args"] if what == "input" else test["expected"]
        return json.dumps(value) if what == "expected" else f"{test['fn_name']}(*{json.dumps(value)})"
    if test["type"] == "stdin_stdout":
        return str(test["input" if what == "input" else "output"])
    return str(test.get("function") or test["code"]) if what == "input" else ""


def _cut(text: str) -> str:
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "…"


class CodeVerifier:
    """Accepts a sample whose program passes all of the prompt's tests."""

    name: ClassVar[str] = NAME
    Options: ClassVar[type[BaseModel]] = CodeOptions

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, CodeOptions)
        self.options = options
        self.limits = Limits(
            cpu_s=options.test_timeout_s, memory_mb=options.memory_mb, output_bytes=options.output_bytes
        )

    def verify(self, candidate: Candidate) -> Verdict:
        level = sandbox.isolation()
        if _ISOLATION_RANK[level] < _ISOLATION_RANK[self.options.require_isolation]:
            return Verdict.reject(
                NAME, "isolation_unavailable", isolation=level, required=self.options.require_isolation
            )
        try:
            tests = read_tests(candidate.tests, candidate.metadata)
        except BadTests as exc:
            return Verdict.reject(NAME, "bad_test", error=_cut(str(exc)), isolation=level)
        if not tests:
            return Verdict.reject(NAME, "no_tests", isolation=level)
        program = extract_program(candidate.answer or "", self.options)
        if program is None:
            return Verdict.reject(NAME, "no_code", isolation=level)
        workdir = Path(tempfile.mkdtemp(prefix="tracemill-code-"))
        try:
            return self._judge(program, tests, workdir, level)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _prepare(self, language: str, source: str, workdir: Path) -> list[str] | Verdict:
        """The command that runs the program, or the verdict when it does not even build."""
        if language == "python":
            try:
                compile(source, "main.py", "exec")
            except (SyntaxError, ValueError) as exc:
                return Verdict.reject(NAME, "syntax_error", language=language, error=_cut(str(exc)))
            (workdir / "main.py").write_text(source)
            shutil.copyfile(assert_harness.__file__, workdir / HARNESS)
            shutil.copyfile(harness_checks.__file__, workdir / "harness_checks.py")
            return [sandbox.python_executable(), "-I", "-S", "main.py"]
        compiler = shutil.which("g++")
        if compiler is None:
            return Verdict.reject(
                NAME, "unsupported_language", language=language, error="g++ is not installed"
            )
        (workdir / "main.cpp").write_text(source)
        built = sandbox.run(
            [compiler, "-O2", "-std=c++17", "-o", "main", "main.cpp"], workdir, b"", COMPILE_LIMITS
        )
        if built.status != "ok":
            return Verdict.reject(NAME, "syntax_error", language=language, error=_cut(built.stderr))
        return ["./main"]

    def _outcomes(
        self, command: list[str], tests: list[dict[str, Any]], language: str, workdir: Path
    ) -> Iterator[tuple[int, RunResult, str | None]]:
        """Each test's run and, when the run itself went fine, its failure code or None. A stretch
        of the harness's tests goes to the harness in one run."""
        position = 0
        for in_harness, group in groupby(tests, key=lambda t: t["type"] in HARNESS_KINDS):
            stretch = list(group)
            if in_harness and language == "python":
                for offset, result, failure in self._run_harness(command, stretch, workdir):
                    yield position + offset, result, failure
            else:
                for offset, test in enumerate(stretch):
                    yield position + offset, *self._run_test(command, test, workdir)
            position += len(stretch)

    def _run_test(
        self, command: list[str], test: dict[str, Any], workdir: Path
    ) -> tuple[RunResult, str | None]:
        """One stdin/stdout test: the run and, when the run itself went fine, the failure code or None."""
        given = str(test.get("input", "")).encode()
        result = sandbox.run(command, workdir, given, self.limits)
        if result.status != "ok":
            return result, None
        if not outputs_match(result.stdout, str(test.get("output", "")), self.options.float_tolerance):
            return result, "wrong_answer"
        # The right output without a byte of the input read: the expected output, printed as is.
        return result, "ignores_input" if given.strip() and result.stdin_read == 0 else None

    def _harness_test(self, test: dict[str, Any]) -> tuple[Any, ...]:
        """A test as the harness takes it: ``(kind, *its fields)``."""
        if test["type"] == "call":
            tolerance = self.options.float_tolerance
            return (
                "call",
                str(test["fn_name"]),
                list(test["args"]),
                test["expected"],
                bool(test.get("unwrap")),
                tolerance,
            )
        if test["type"] == "pytest":
            return ("pytest", str(test["code"]), str(test["function"]))
        entry_point = test.get("entry_point")
        return ("assert", str(test["code"]), None if entry_point is None else str(entry_point))

    def _run_harness(
        self, command: list[str], tests: list[dict[str, Any]], workdir: Path
    ) -> list[tuple[int, RunResult, str | None]]:
        """Assert, call and pytest tests under the harness (``verifiers/code/assert_harness.py``), one run
        for them all, each test in a child of its own. A line led by this run's token is the only
        proof that a test ran to its end."""
        token = secrets.token_hex(16)
        given = [self._harness_test(t) for t in tests]
        stdin = f"{token}\n".encode() + marshal.dumps((given, self.options.all_tests, self.limits.cpu_s))
        count = len(tests)
        limits = replace(
            self.limits, cpu_s=self.limits.cpu_s * count + 1, wall_s=self.limits.wall * count + 1
        )
        result = sandbox.run([*command[:-1], HARNESS], workdir, stdin, limits)
        proofs: dict[int, dict[str, Any]] = {}
        for line in result.stdout.splitlines():
            if line.startswith(token + " "):
                position, said = line.removeprefix(token + " ").split(" ", 1)
                proofs[int(position)] = ast.literal_eval(said)
        stdout = "\n".join(line for line in result.stdout.splitlines() if not line.startswith(token)).strip()
        found: list[tuple[int, RunResult, str | None]] = []
        for index in range(count):
            outcome = proofs.get(index)
            if outcome is None:  # the run ended before this test did
                failure = None if result.status != "ok" else "reward_hack"  # a 0 not the harness's
                found.append((index, replace(result, stdout=stdout), failure))
                break
            failure = _failure_of(outcome)
            detail = outcome.get("message") or outcome.get("type") or ""
            run = replace(result, status="ok", stdout=stdout, stderr=f"{result.stderr}\n{detail}".strip())
            found.append((index, run, failure))
            if failure and not self.options.all_tests:
                break
        return found

    def _judge(
        self, program: tuple[str, str], tests: list[dict[str, Any]], workdir: Path, level: str
    ) -> Verdict:
        language, source = program
        prepared = self._prepare(language, source, workdir)
        if isinstance(prepared, Verdict):
            return prepared
        unsupported = [
            f"test {i}: {kind!r} tests are not supported for {language}"
            for i, kind in enumerate(t["type"] for t in tests)
            if kind != "stdin_stdout" and language != "python"
        ]
        if unsupported:
            return Verdict.reject(NAME, "bad_test", error=unsupported[0], isolation=level)
        passed, first_failure, first_code = 0, None, None
        for index, result, failure in self._outcomes(prepared, tests, language, workdir):
            test = tests[index]
            code = failure or (None if result.status == "ok" else _REASON_OF[result.status])
            if code is None:
                passed += 1
                continue
            if first_code is None:
                first_code = code
                first_failure = {
                    "test": index,
                    "input": _cut(_shown(test, "input")),
                    "expected": _cut(_shown(test, "expected")),
                    "got": _cut(result.stdout),
                    "stderr": _cut(result.stderr[-DETAIL_CHARS:]),
                    "seconds": result.wall_s,
                }
            if not self.options.all_tests:
                break
        details = {"passed": passed, "total": len(tests), "language": language, "isolation": level}
        if first_code is None:
            return Verdict.accept(**details)
        return Verdict.reject(NAME, first_code, first_failure=first_failure, **details)
