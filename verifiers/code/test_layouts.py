"""A prompt's code tests in the layouts datasets store them, read into the code verifier's own kinds.

The verifier runs four kinds of test:

- ``{"type": "stdin_stdout", "input": str, "output": str}``: the program's output for that input;
- ``{"type": "assert", "code": str, "entry_point": str | None}``: test code (HumanEval, MBPP);
- ``{"type": "call", "fn_name": str, "args": list, "expected": any, "unwrap": bool}``: one call of the
  function (or of ``Solution().<fn_name>``), its return value compared (``verifiers/code/harness_checks.py``);
- ``{"type": "pytest", "code": str}``: a pytest file that does ``from solution import …`` (KodCode);
  each ``test_*`` function is a test.

Read from, as the datasets give them (a JSON text of any of these is read too):

- a list of the above; a list of strings (MBPP's ``test_list``: each an assert test);
- APPS/TACO ``{"inputs": [...], "outputs": [...], "fn_name"?: str}``: stdin tests, or with ``fn_name``
  call tests, each input being the argument list (and ``unwrap`` on, as APPS stores each return
  value in a list of one);
- CodeContests ``{"input": [...], "output": [...]}``; Codeforces' ``[{"input", "output"}]``;
- LiveCodeBench ``[{"input", "output", "testtype": "stdin" | "functional"}]``, also in its compressed
  form (base64 of zlib of a pickled JSON text); a functional test's arguments are its input's lines,
  each a JSON value, the function's name is the prompt metadata's ``func_name`` (or ``fn_name``);
- a Python text: a pytest file when it defines ``test_*`` functions, else assert code.

What does not read is a ``BadTests`` naming the test and what is wrong.
"""

from __future__ import annotations

import ast
import base64
import binascii
import io
import json
import pickle
import zlib
from functools import lru_cache
from typing import Any

KINDS = ("stdin_stdout", "assert", "call", "pytest")
MAX_INFLATED_BYTES = 256 << 20  # LiveCodeBench's largest compressed tests inflate to tens of MB
_REQUIRED = {
    "stdin_stdout": ("input", "output"),
    "assert": ("code",),
    "call": ("fn_name", "args", "expected"),
    "pytest": ("code",),
}


class BadTests(ValueError):
    """The tests do not read; the message says which and why."""


class _TextOnly(pickle.Unpickler):
    """Unpickles plain data only: LiveCodeBench's compressed tests are a pickled string."""

    def find_class(self, module: str, name: str) -> Any:
        raise BadTests(f"compressed tests name a class ({module}.{name}); only plain data is read")


def _decompressed(text: str) -> str | None:
    try:
        inflate = zlib.decompressobj()
        data = inflate.decompress(base64.b64decode(text, validate=True), MAX_INFLATED_BYTES)
    except (binascii.Error, ValueError, zlib.error):
        return None
    if inflate.unconsumed_tail:  # a submitter's few kilobytes must not inflate to gigabytes in a worker
        raise BadTests(f"compressed tests inflate past {MAX_INFLATED_BYTES >> 20} MB")
    try:
        value = _TextOnly(io.BytesIO(data)).load()
    except BadTests:
        raise
    except Exception as exc:
        raise BadTests(f"compressed tests do not unpickle: {exc}") from exc
    return value if isinstance(value, str) else None


@lru_cache(maxsize=8)
def _from_text(text: str, fn_name: str | None) -> tuple[dict[str, Any], ...]:
    """Tests given as a text, read once per process for a prompt's samples (a TACO text runs to
    megabytes; a LiveCodeBench one is compressed). The tests are never changed by their readers."""
    try:
        return tuple(_read(json.loads(text), fn_name))
    except json.JSONDecodeError as error:
        unpacked = _decompressed(text.strip())
        if unpacked is not None:
            return _from_text(unpacked, fn_name)
        try:
            return tuple(_python(text, "tests"))
        except SyntaxError:
            raise BadTests(f"tests: neither JSON ({error}) nor Python test code") from None


def _parametrized(decorator: ast.expr) -> list[str] | None:
    """The argument names of ``@pytest.mark.parametrize("a, b", …)``; None for any other decorator."""
    if not (isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "pytest.mark.parametrize"):
        return None
    names = decorator.args[0] if decorator.args else None
    if isinstance(names, ast.Constant) and isinstance(names.value, str):
        return [n.strip() for n in names.value.split(",")]
    if isinstance(names, ast.List | ast.Tuple):
        return [n.value for n in names.elts if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return None


def _python(code: str, where: str) -> list[dict[str, Any]]:
    """Python test code: one pytest test per ``test_*`` function, else one assert test."""
    tree = ast.parse(code)
    tests = []
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test")):
            continue
        given: list[str] = []
        for decorator in node.decorator_list:
            names = _parametrized(decorator)
            if names is None:
                raise BadTests(f"{where}: {node.name} has @{ast.unparse(decorator)}, which is not run here")
            given += names
        fixtures = [a.arg for a in node.args.args if a.arg not in given]
        if fixtures:
            raise BadTests(
                f"{where}: {node.name} takes fixtures ({', '.join(fixtures)}), which are not run here"
            )
        tests.append({"type": "pytest", "code": code, "function": node.name})
    if tests:
        return tests
    if not any(isinstance(node, ast.Assert) for node in ast.walk(tree)) and "check" not in code:
        raise BadTests(f"{where}: Python code with no assert and no test_ function")
    return [{"type": "assert", "code": code}]


def _function_name(metadata: dict[str, Any] | None) -> str | None:
    for key in ("func_name", "fn_name"):
        value = (metadata or {}).get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _lines(value: Any) -> str:
    """A stdin test's text; APPS sometimes stores it as a list of lines."""
    return "\n".join(map(str, value)) if isinstance(value, list) else str(value)


def _paired(inputs: Any, outputs: Any, where: str) -> list[tuple[Any, Any]]:
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise BadTests(f"{where}: inputs and outputs must be lists")
    if len(inputs) != len(outputs):
        raise BadTests(f"{where}: {len(inputs)} inputs but {len(outputs)} outputs")
    return list(zip(inputs, outputs, strict=True))


def _apps(test: dict[str, Any], where: str) -> list[dict[str, Any]]:
    pairs = _paired(test["inputs"], test["outputs"], where)
    fn_name = test.get("fn_name")
    if not fn_name:
        return [{"type": "stdin_stdout", "input": _lines(i), "output": _lines(o)} for i, o in pairs]
    for index, (arguments, _) in enumerate(pairs):
        if not isinstance(arguments, list):
            raise BadTests(f"{where}.inputs.{index}: a call's input must be its list of arguments")
    return [
        {"type": "call", "fn_name": str(fn_name), "args": i, "expected": o, "unwrap": True} for i, o in pairs
    ]


def _functional(test: dict[str, Any], where: str, fn_name: str | None) -> dict[str, Any]:
    fn_name = test.get("fn_name") or fn_name
    if fn_name is None:
        raise BadTests(f"{where}: a functional test needs the function's name (metadata 'func_name')")
    try:
        args = [json.loads(line) for line in str(test["input"]).split("\n") if line.strip()]
        expected = json.loads(str(test["output"]))
    except json.JSONDecodeError as exc:
        raise BadTests(f"{where}: a functional test's input lines and output must be JSON ({exc})") from None
    return {"type": "call", "fn_name": fn_name, "args": args, "expected": expected, "unwrap": False}


def _one(test: Any, where: str, fn_name: str | None) -> list[dict[str, Any]]:
    if isinstance(test, str):  # MBPP's test_list
        return [{"type": "assert", "code": test}]
    if not isinstance(test, dict):
        raise BadTests(f"{where}: a test is an object or a string, not {type(test).__name__}")
    if "inputs" in test and "outputs" in test:
        return _apps(test, where)
    if "testtype" in test:
        if test["testtype"] == "functional":
            return [_functional(test, where, fn_name)]
        if test["testtype"] != "stdin":
            raise BadTests(f"{where}.testtype: {test['testtype']!r} is neither 'stdin' nor 'functional'")
        test = {"type": "stdin_stdout", "input": test.get("input"), "output": test.get("output")}
    kind = test.get("type", "stdin_stdout")
    if kind not in KINDS:
        raise BadTests(f"{where}.type: {kind!r} is not one of {', '.join(KINDS)}")
    missing = [key for key in _REQUIRED[kind] if test.get(key) is None]
    if missing:
        raise BadTests(
            f"{where}: a {kind} test needs {', '.join(missing)} (it has {', '.join(test) or 'none'})"
        )
    if kind == "stdin_stdout" and isinstance(test["input"], list) and isinstance(test["output"], list):
        return [  # CodeContests: {"input": [...], "output": [...]}
            {"type": kind, "input": str(i), "output": str(o)}
            for i, o in _paired(test["input"], test["output"], where)
        ]
    if kind == "pytest" and "function" not in test:
        try:
            found = _python(str(test["code"]), where)
        except SyntaxError as exc:
            raise BadTests(f"{where}.code: not Python ({exc})") from None
        if found[0]["type"] != "pytest":
            raise BadTests(f"{where}.code: a pytest file with no test_ function")
        return found
    return [{**test, "type": kind}]


def _read(raw: Any, fn_name: str | None) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return list(_from_text(raw, fn_name))
    if isinstance(raw, dict):
        return _one(raw, "tests", fn_name)
    if not isinstance(raw, list | tuple):
        raise BadTests(f"tests: expected a list, an object or a text, not {type(raw).__name__}")
    return [test for index, item in enumerate(raw) for test in _one(item, f"tests.{index}", fn_name)]


def read_tests(raw: Any, metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The tests of a prompt, in the verifier's kinds; ``BadTests`` where they do not read."""
    return _read(raw, _function_name(metadata))
