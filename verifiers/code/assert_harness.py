"""Runs a Python program's assert tests so that the program can neither skip nor fake them.

This file is copied into the sandbox and run there as ``python -I -S harness.py`` (standard library
only). It forks first, before it reads anything: the fork (the *zygote*) never sees the tests; for
each test it forks a fresh child that loads the program (``main.py``) and answers calls, and it relays
frames between that child and the harness. Only then does the harness read a per-run proof token and
the tests from its stdin, run each test with every function of the program replaced by a proxy that
calls it in the child, and print ``<token> <index> <outcome as a dict literal>`` as each test ends.
So:

- a program that ends the interpreter (``sys.exit(0)``, ``os._exit(0)``, an ``atexit`` hook) ends
  only its child: the harness reports ``ended``, and the verifier rejects the sample;
- results cross as ``marshal`` data, which takes plain values of exact built-in types only, and are
  compared in the harness: an object whose ``__eq__`` always says yes, or patched builtins and
  ``assert`` helpers, reach the tests never;
- the tests are not in the program's folder nor its memory, and the harness is not dumpable, so the
  child (same uid) cannot read them, nor the token, from ``/proc``;
- each test has a child of its own with its own CPU limit, as a run of its own would, but the
  interpreter and the sandbox start once for all of a sample's tests;
- without the token line an exit status of 0 proves nothing, and the verifier says so.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal's C half: the module imports enum, a tenth of the time
import builtins
import ctypes
import marshal
import os
import struct
import sys

# Each run of the harness starts a Python: typing, json and traceback would cost it a third more time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

PR_SET_DUMPABLE = 4
_HEADER = struct.Struct(">I")
_PLAIN = (int, float, complex, str, bytes, bool, type(None), type(...), tuple, list, dict, set, frozenset)
MESSAGE_CHARS = 300


class ProgramEnded(Exception):
    """The child is gone: the program ended the interpreter instead of answering. ``args[0]``: its
    exit status, where known."""


class NotPlain(Exception):
    """A value that is not made of plain built-in types, so it cannot be compared safely."""


def _frame(message: Any) -> bytes:
    data = marshal.dumps(message)
    return _HEADER.pack(len(data)) + data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _send(fd: int, message: Any) -> None:
    _write_all(fd, _frame(message))


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise ProgramEnded
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> Any:
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    return marshal.loads(_read_exactly(fd, size))


def plain(value: Any) -> Any:
    """``value`` if it is made only of exact built-in plain types (marshal also carries code objects)."""
    if type(value) not in _PLAIN:
        raise NotPlain(type(value).__qualname__)
    if isinstance(value, dict):
        for key, item in value.items():
            plain(key)
            plain(item)
    elif isinstance(value, tuple | list | set | frozenset):
        for item in value:
            plain(item)
    return value


# -- the child: the program's side ---------------------------------------------------------------


def _described(namespace: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """The program's globals as the tests may see them: functions, modules by name, plain values."""
    described: dict[str, tuple[str, Any]] = {}
    for name, value in list(namespace.items()):
        if name.startswith("__"):
            continue
        if type(value).__name__ == "module":
            described[name] = ("module", value.__name__)
        elif callable(value):
            described[name] = ("callable", None)
        else:
            try:
                described[name] = ("value", marshal.loads(marshal.dumps(value)))
            except ValueError:
                continue
    return described


def _target(namespace: dict[str, Any], name: str) -> Any:
    """What a call names: a function of the program, or ``Class.method`` of a fresh instance (the
    LeetCode ``Solution`` form)."""
    owner, _, method = name.partition(".")
    return getattr(namespace[owner](), method) if method else namespace[name]


def _serve(calls: int, replies: int, module_name: str) -> None:
    namespace: dict[str, Any] = {"__name__": module_name, "__file__": "main.py", "__builtins__": builtins}
    with open("main.py", encoding="utf-8") as handle:
        source = handle.read()
    try:
        exec(compile(source, "main.py", "exec"), namespace)
    except Exception:
        import traceback

        _send(replies, ("load_error", traceback.format_exc()[-MESSAGE_CHARS:]))
        return
    _send(replies, ("ready", _described(namespace)))
    while True:
        name, args, kwargs = _receive(calls)
        try:
            result = _target(namespace, name)(*args, **kwargs)
        except Exception as exc:
            _send(replies, ("raise", type(exc).__name__, str(exc)[:MESSAGE_CHARS]))
            continue
        try:
            _send(replies, ("ok", result))
        except ValueError:
            _send(replies, ("not_plain", type(result).__qualname__))


def _child(calls: int, replies: int, module_name: str) -> None:
    code = 0
    try:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(2, 1)  # not a share of the harness's stdout, where the outcomes go
        sys.stdout = sys.stderr
        _serve(calls, replies, module_name)
    except ProgramEnded:
        pass
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os._exit(code)


# -- the zygote: forks a child per test, relays between it and the harness ----------------------


class _Child:
    """One test's program, seen from the zygote."""

    def __init__(self, cpu_s: float, module_name: str, zygote_fds: tuple[int, int]) -> None:
        calls_r, self.calls = os.pipe()
        self.replies, replies_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            for fd in (self.calls, self.replies, *zygote_fds):  # the harness's channel is not its
                os.close(fd)
            import resource

            seconds = max(1, int(cpu_s + 0.999))
            resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
            _child(calls_r, replies_w, module_name)
        os.close(calls_r)
        os.close(replies_w)

    def reply(self) -> bytes:
        """The child's next frame as it sent it, or a ``gone`` frame with its exit status."""
        try:
            (size,) = _HEADER.unpack(header := _read_exactly(self.replies, _HEADER.size))
            return header + _read_exactly(self.replies, size)
        except ProgramEnded:
            return _frame(("gone", self.end(ending=True)))

    def ask(self, frame: bytes) -> bytes:
        try:
            _write_all(self.calls, frame)
        except BrokenPipeError:
            return _frame(("gone", self.end(ending=True)))
        return self.reply()

    def end(self, *, ending: bool = False) -> int:
        """Its exit status: waited for when it is ``ending`` (its pipe closed), else it is killed,
        its test being over."""
        pid, status = os.waitpid(self.pid, 0 if ending else os.WNOHANG)
        if pid == 0:
            os.kill(self.pid, _signal.SIGKILL)
            pid, status = os.waitpid(self.pid, 0)
        os.close(self.calls)
        os.close(self.replies)
        self.pid = 0
        return os.waitstatus_to_exitcode(status)


def _zygote(requests: int, replies: int) -> None:
    child: _Child | None = None
    try:
        while True:
            header = _read_exactly(requests, _HEADER.size)
            frame = header + _read_exactly(requests, _HEADER.unpack(header)[0])
            message = marshal.loads(frame[_HEADER.size :])
            if message[0] == "start":
                if child is not None and child.pid:
                    child.end()
                child = _Child(message[1], message[2], (requests, replies))
                _write_all(replies, child.reply())
            elif child is None or not child.pid:
                _send(replies, ("gone", None))
            else:
                answer = child.ask(frame)
                _write_all(replies, answer)
    except ProgramEnded:  # the harness is done
        if child is not None and child.pid:
            child.end()
        os._exit(0)


# -- the harness: the tests' side -------------------------------------------------------------------


class Program:
    """The program of the current test, seen from the tests (through the zygote)."""

    def __init__(self, requests: int, replies: int) -> None:
        self.requests, self.replies = requests, replies

    def start(self, cpu_s: float, module_name: str) -> Any:
        """A fresh child for the next test, the program loaded under ``module_name``: its first word
        (``ready`` with its names, or ``load_error``)."""
        _send(self.requests, ("start", cpu_s, module_name))
        return self._reply()

    def _reply(self) -> Any:
        reply = _receive(self.replies)
        if reply[0] == "gone":
            raise ProgramEnded(reply[1])
        return reply

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            plain((args, kwargs))
        except NotPlain as exc:
            raise TypeError(f"the tests passed {name}() a {exc}, which cannot reach the program") from None
        _send(self.requests, (name, args, kwargs))
        reply = self._reply()
        if reply[0] == "ok":
            return plain(reply[1])
        if reply[0] == "not_plain":
            raise NotPlain(reply[1])
        _, kind, message = reply
        error = getattr(builtins, str(kind), None)
        if isinstance(error, type) and issubclass(error, Exception):
            raise error(message)
        raise RuntimeError(f"{kind}: {message}")

    def proxy(self, name: str) -> Callable[..., Any]:
        def remote(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, args, kwargs)

        remote.__name__ = remote.__qualname__ = name
        return remote


def _test_namespace(
    program: Program, described: dict[str, tuple[str, Any]], entry_point: str | None
) -> dict[str, Any]:
    """The program's names for the tests, but never one that would shadow a builtin the tests use (a
    program's own ``abs`` or ``isinstance`` stays its own), save the entry point itself."""
    namespace: dict[str, Any] = {"__name__": "__tests__", "__builtins__": builtins}
    for name, (kind, value) in described.items():
        if hasattr(builtins, name) and name != entry_point:
            continue
        if kind == "callable":
            namespace[name] = program.proxy(name)
        elif kind == "module" and value in sys.stdlib_module_names:
            namespace[name] = __import__(value)
        elif kind == "value":
            try:
                namespace[name] = plain(value)
            except NotPlain:
                continue
    return namespace


def run_tests(program: Program, test: tuple[Any, ...], cpu_s: float, checks: Any) -> dict[str, Any]:
    """The outcome of one test (``(kind, *its fields)``, run by ``harness_checks``), in a fresh child:
    passed, or how it failed."""
    kind, *fields = test
    try:
        first = program.start(cpu_s, checks.MODULE_NAME[kind])
        if first[0] == "load_error":
            return {"result": "load_error", "message": first[1]}
        names = first[1]

        def namespace(entry_point: str | None) -> dict[str, Any]:
            return _test_namespace(program, names, entry_point)

        checks.KINDS[kind](namespace, names, program.call, fields)
    except ProgramEnded as exc:
        return {"result": "ended", "exit_code": exc.args[0] if exc.args else None}
    except NotPlain as exc:
        return {"result": "not_plain", "type": str(exc)}
    except AssertionError as exc:
        return {"result": "assertion", "message": str(exc)[:MESSAGE_CHARS]}
    except Exception as exc:
        return {"result": "error", "message": f"{type(exc).__name__}: {exc}"[:MESSAGE_CHARS]}
    return {"result": "passed"}


def _load_checks() -> Any:
    """``harness_checks.py`` from beside this file, imported before the program runs (after that the
    program may write files there, so the folder leaves ``sys.path`` at once)."""
    sys.dont_write_bytecode = True  # -I ignores PYTHONDONTWRITEBYTECODE; the folder is the program's
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import harness_checks as checks  # type: ignore[import-not-found]
    finally:
        del sys.path[0]
    sys.modules["pytest"] = checks.pytest_module()
    return checks


def main() -> None:
    """Forks the zygote, then reads ``token`` and ``(tests, all_tests, cpu_s)``; prints
    ``<token> <index> <outcome>`` as each test ends and stops at the first failure unless ``all_tests``."""
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    checks = _load_checks()
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)  # inherited as ignored, a child's end goes unseen
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    if os.fork() == 0:
        os.close(requests_w)
        os.close(replies_r)
        _zygote(requests_r, replies_w)
    os.close(requests_r)
    os.close(replies_w)
    token = sys.stdin.buffer.readline().decode().strip()
    tests, all_tests, cpu_s = marshal.loads(sys.stdin.buffer.read())
    program = Program(requests_w, replies_r)
    for index, test in enumerate(tests):
        outcome = run_tests(program, test, cpu_s, checks)
        sys.stdout.write(f"\n{token} {index} {outcome!r}\n")
        sys.stdout.flush()
        if outcome["result"] != "passed" and not all_tests:
            break
    os.close(requests_w)  # the zygote ends its last child and itself
    os.wait()


if __name__ == "__main__":
    main()
