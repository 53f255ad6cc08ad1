"""The kinds of test the harness runs (assert code, one call, a pytest function), what it compares by,
and the little of pytest that dataset test files use.

Copied into the sandbox beside ``harness.py``, which loads it before the program runs (standard library
only). All of it runs on the tests' side, never in the program's process: a returned value arrives as
plain data, and ``approx`` and ``raises`` are the harness's own objects.

Return values of call-based tests (APPS/TACO ``fn_name``, LiveCodeBench ``functional``) match when:

- they are equal as JSON values: a tuple counts as a list, a dict's keys as strings (JSON has no
  tuples and only string keys), ``True`` is not ``1``;
- numbers differ by at most ``tolerance`` (relative, or absolute below 1) where the job sets
  ``float_tolerance``;
- with ``unwrap`` (the APPS layout, which stores each return value in a list of one): the expected
  ``[x]`` also matches a returned ``x``.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _json_like(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_json_like(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_like(item) for key, item in value.items()}
    return value


def _same(got: Any, expected: Any, tolerance: float | None) -> bool:
    if isinstance(got, bool) or isinstance(expected, bool):
        return type(got) is type(expected) and got == expected
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(
            _same(g, e, tolerance) for g, e in zip(got, expected, strict=True)
        )
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(_same(got[k], expected[k], tolerance) for k in got)
    numbers = (int, float)
    if isinstance(got, numbers) and isinstance(expected, numbers):  # JSON has one kind of number
        if tolerance is not None:
            return abs(got - expected) <= tolerance * max(1.0, abs(expected))
        return got == expected
    return type(got) is type(expected) and got == expected


def values_match(got: Any, expected: Any, unwrap: bool, tolerance: float | None) -> bool:
    """Whether a returned value is the expected one, by the rules above."""
    got, expected = _json_like(got), _json_like(expected)
    if _same(got, expected, tolerance):
        return True
    return unwrap and isinstance(expected, list) and len(expected) == 1 and _same(got, expected[0], tolerance)


# -- pytest, the part dataset test files use -------------------------------------------------------


class _Raises:
    def __init__(self, expected: type[BaseException] | tuple[type[BaseException], ...], match: str | None):
        self.expected, self.match = expected, match
        self.value: BaseException | None = None

    def __enter__(self) -> _Raises:
        return self

    def __exit__(self, kind: Any, value: Any, _traceback: Any) -> bool:
        if kind is None:
            raise AssertionError(f"DID NOT RAISE {self.expected}")
        if not issubclass(kind, self.expected):
            return False
        if self.match is not None:
            import re

            if not re.search(self.match, str(value)):
                raise AssertionError(f"{str(value)!r} does not match {self.match!r}")
        self.value = value
        return True


class _Approx:
    __hash__ = None  # type: ignore[assignment]  # compared, never hashed

    def __init__(self, expected: Any, rel: float | None, absolute: float | None) -> None:
        self.expected, self.rel, self.abs = (
            expected,
            1e-6 if rel is None else rel,
            1e-12 if absolute is None else absolute,
        )

    def _close(self, got: Any, expected: Any) -> bool:
        if isinstance(expected, list | tuple):
            return (
                isinstance(got, list | tuple)
                and len(got) == len(expected)
                and all(self._close(g, e) for g, e in zip(got, expected, strict=True))
            )
        if isinstance(expected, dict):
            return (
                isinstance(got, dict)
                and got.keys() == expected.keys()
                and all(self._close(got[k], expected[k]) for k in expected)
            )
        if isinstance(got, bool) or not isinstance(got, int | float | complex):
            return bool(got == expected)
        return bool(abs(got - expected) <= max(self.rel * abs(expected), self.abs))

    def __eq__(self, got: object) -> bool:
        return self._close(got, self.expected)

    def __repr__(self) -> str:
        return f"approx({self.expected!r})"


def _parametrize(names: str | list[str] | tuple[str, ...], cases: Any, **_ignored: Any) -> Callable[..., Any]:
    """Records the cases on the test function; the harness calls it once with each."""
    keys = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)

    def mark(function: Any) -> Any:
        rows = [dict(zip(keys, case if len(keys) > 1 else (case,), strict=True)) for case in cases]
        function.tracemill_cases = rows + list(getattr(function, "tracemill_cases", []))
        return function

    return mark


def pytest_module() -> Any:
    """A module named ``pytest`` with ``raises``, ``approx`` and ``mark.parametrize``."""
    module: Any = type(sys)("pytest")
    module.raises = lambda expected, match=None: _Raises(expected, match)
    module.approx = lambda expected, rel=None, abs=None: _Approx(expected, rel, abs)
    mark: Any = type(sys)("pytest.mark")
    mark.parametrize = _parametrize
    module.mark = mark
    return module


def test_cases(function: Any) -> list[dict[str, Any]]:
    """The keyword arguments of each call of a test function: one empty call unless parametrized."""
    return list(getattr(function, "tracemill_cases", None) or [{}])


# -- the kinds of test ------------------------------------------------------------------------------
# Each takes ``namespace(entry_point)`` (the program's names as proxies, for test code), ``names`` (what
# the program defines: name -> (kind, value)), ``call(name, args, kwargs)`` and the test's fields.


def run_assert(
    namespace: Callable[[str | None], dict[str, Any]], _names: Any, _call: Any, fields: Any
) -> None:
    """Test code run against the program's functions, and ``check(entry_point)`` where it defines one."""
    code, entry_point = fields
    scope = namespace(entry_point)
    exec(compile(code, "tests.py", "exec"), scope)
    if entry_point and callable(scope.get("check")):
        if entry_point not in scope:
            raise LookupError(f"the program defines no {entry_point}()")
        scope["check"](scope[entry_point])


def run_call(_namespace: Any, names: dict[str, Any], call: Callable[..., Any], fields: Any) -> None:
    """One call of ``fn_name`` (or of ``Solution().<fn_name>``), its return value compared."""
    fn_name, args, expected, unwrap, tolerance = fields
    if names.get(fn_name, ("",))[0] == "callable":
        target = fn_name
    elif names.get("Solution", ("",))[0] == "callable":
        target = f"Solution.{fn_name}"
    else:
        raise LookupError(f"the program defines no {fn_name}() nor a Solution class")
    got = call(target, tuple(args), {})
    if not values_match(got, expected, unwrap, tolerance):
        raise AssertionError(f"{fn_name}() returned {got!r:.120}, expected {expected!r:.120}")


def run_pytest(
    namespace: Callable[[str | None], dict[str, Any]], _names: Any, _call: Any, fields: Any
) -> None:
    """One ``test_*`` function of a pytest file, which imports the program as ``solution``."""
    code, function = fields
    solution = type(sys)("solution")
    solution.__dict__.update({k: v for k, v in namespace(None).items() if not k.startswith("__")})
    sys.modules["solution"] = solution
    scope: dict[str, Any] = {"__name__": "__tests__"}
    exec(compile(code, "test_solution.py", "exec"), scope)
    for arguments in test_cases(scope[function]):
        scope[function](**arguments)


KINDS = {"assert": run_assert, "call": run_call, "pytest": run_pytest}
# The program's ``__name__``: HumanEval-style programs run as a script, imported ones as a module.
MODULE_NAME = {"assert": "__main__", "call": "solution", "pytest": "solution"}
