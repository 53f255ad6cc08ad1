"""Run untrusted programs: own process tree, rlimits, no network, no secrets, no trace left.

Isolation, strongest first (``isolation()`` says which this machine gives; it is probed once):

- ``namespaces+uid`` (running as root): fresh mount, network and PID namespaces; a private, size-capped
  tmpfs over ``/tmp``, ``/var/tmp`` and ``/dev/shm``; the work folder bind-mounted at ``/tmp/work``; the
  program runs under a uid of its own (one per concurrent slot), so it can write nowhere else and
  signal no one else.
- ``user-namespaces`` (not root, user namespaces allowed): the same namespaces inside a user namespace
  that maps only our own uid; the work folder is used in place.
- ``rlimits``: resource limits and a process group only.

Under every level: a new session, limits on CPU seconds, address space, processes, file size and open
files; an environment with nothing inherited (no secrets); stdout and stderr to files, truncated.
The program is PID 1 of its namespace (under ``unshare --fork --kill-child``), so when it ends or is
killed, everything it started dies with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_CHILD_SUBREAPER = 36
SLOT_UID_BASE = 61_000
SLOTS = 256
SLOT_LOCKS = Path(tempfile.gettempdir()) / "tracemill-sandbox-slots"
INSIDE_WORKDIR = "/tmp/work"
CLEAN_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": INSIDE_WORKDIR,
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
}
KILL_GRACE_S = 1.0
CPU_SLACK_S = 0.05

Isolation = Literal["namespaces+uid", "user-namespaces", "rlimits"]
Status = Literal["ok", "exit", "timeout", "memory", "output_limit", "signal"]
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Limits:
    cpu_s: float = 2.0
    wall_s: float | None = None  # default: twice the CPU time plus a second
    memory_mb: int = 512
    processes: int = 32
    file_mb: int = 16
    open_files: int = 64
    output_bytes: int = 1_000_000
    tmpfs_mb: int = 64

    @property
    def wall(self) -> float:
        return self.wall_s if self.wall_s is not None else 2 * self.cpu_s + 1


@dataclass(frozen=True)
class RunResult:
    status: Status
    exit_code: int | None
    stdout: str
    stderr: str
    wall_s: float
    signal: int | None = None
    truncated: bool = False
    stdin_read: int = 0  # bytes of its input the program read (the file offset it left)


@dataclass
class _Plan:
    """What the child does between fork and exec (see ``_enter``)."""

    level: Isolation
    host_dir: str
    uid: int | None
    limits: Limits
    own_ids: tuple[int, int] = field(default_factory=lambda: (os.getuid(), os.getgid()))


def _check(result: int, what: str) -> None:
    if result != 0:
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def _private_mounts(plan: _Plan) -> None:
    folder = os.open(plan.host_dir, os.O_RDONLY | os.O_DIRECTORY)  # still reachable once /tmp is covered
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    size = f"size={plan.limits.tmpfs_mb}m,mode=1777".encode()
    for target in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(target):
            _check(_libc.mount(b"tmpfs", target.encode(), b"tmpfs", 0, size), f"tmpfs on {target}")
    os.mkdir(INSIDE_WORKDIR)
    source = f"/proc/self/fd/{folder}".encode()
    _check(_libc.mount(source, INSIDE_WORKDIR.encode(), None, MS_BIND, None), "bind the work folder")
    os.close(folder)
    os.chdir(INSIDE_WORKDIR)


def _set_limits(limits: Limits) -> None:
    cpu = max(1, int(limits.cpu_s + 0.999))
    memory = limits.memory_mb * 1024 * 1024
    files = max(limits.file_mb * 1024 * 1024, limits.output_bytes + 1)
    for kind, value in (
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_NPROC, limits.processes),
        (resource.RLIMIT_FSIZE, files),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(kind, (value, value))


def _enter(plan: _Plan) -> None:
    """In the child, after fork and before exec: new session, namespaces, limits, unprivileged uid."""
    os.setsid()
    if plan.level == "namespaces+uid":
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID), "unshare")
        _private_mounts(plan)
    elif plan.level == "user-namespaces":
        uid, gid = plan.own_ids
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID), "unshare")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
        os.chdir(plan.host_dir)
    else:
        os.chdir(plan.host_dir)
    _set_limits(plan.limits)
    if plan.uid is not None:
        os.setgroups([])
        os.setgid(plan.uid)
        os.setuid(plan.uid)


@contextlib.contextmanager
def _slot() -> Iterator[int]:
    """A uid no other concurrent run on this host uses (a lock file per slot)."""
    SLOT_LOCKS.mkdir(mode=0o700, exist_ok=True)
    start = os.getpid() % SLOTS
    for offset in range(SLOTS):
        number = (start + offset) % SLOTS
        handle = open(SLOT_LOCKS / str(number), "w")  # noqa: SIM115 (held for the run)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            yield SLOT_UID_BASE + number
        finally:
            handle.close()
        return
    raise RuntimeError(f"all {SLOTS} sandbox slots are busy")


def _kill_uid(uid: int) -> None:
    """SIGKILL every live process running as ``uid`` (a slot's own uid: nothing else runs as it)."""
    for _ in range(50):
        found = False
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat().st_uid == uid and not _is_zombie(entry.path):
                    found = True
                    os.kill(int(entry.name), signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                continue
        _reap()
        if not found:
            return
        time.sleep(0.01)


def _reap() -> None:
    """Collect orphans reparented to us (we are their subreaper), so none lingers as a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _is_zombie(proc_path: str) -> bool:
    with open(f"{proc_path}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"


def _read(path: Path, limit: int) -> tuple[str, bool]:
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    return data[:limit].decode("utf-8", errors="replace"), len(data) > limit


_OUT_OF_MEMORY = ("MemoryError", "bad_alloc", "Cannot allocate memory")


def _classify(
    code: int | None, out_of_time: bool, stderr: str, over_output: bool
) -> tuple[Status, int | None]:
    """What ended the run. Time is judged by the clock and the CPU seconds the tree used, not by the
    signal seen, since the ``unshare`` wrapper reports its child's death in its own way."""
    sig = -code if code is not None and code < 0 else None
    if out_of_time or sig == signal.SIGXCPU or code == 128 + signal.SIGXCPU:  # killed at RLIMIT_CPU
        return "timeout", sig
    if over_output or sig == signal.SIGXFSZ or code == 128 + signal.SIGXFSZ or "File too large" in stderr:
        return "output_limit", sig
    if code != 0 and any(marker in stderr for marker in _OUT_OF_MEMORY):
        return "memory", sig
    if sig is not None:
        return "signal", sig
    return ("exit", None) if code != 0 else ("ok", None)


def _wait(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait for the process to end; False if it outlives ``timeout_s``.

    A pidfd wakes us the moment it exits; ``Popen.wait(timeout)`` polls with growing sleeps that
    would add milliseconds to every run.
    """
    try:
        pidfd = os.pidfd_open(process.pid)
    except OSError:  # kernels before 5.3
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        if not select.select([pidfd], [], [], timeout_s)[0]:
            return False
    finally:
        os.close(pidfd)
    process.wait()
    return True


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@cache
def _become_subreaper() -> None:
    """Orphans of a sandboxed program (its parent killed) come to us to be reaped, not to PID 1."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def run(argv: Sequence[str], workdir: Path, stdin: bytes = b"", limits: Limits = Limits()) -> RunResult:
    """Run ``argv`` in ``workdir`` (seen as /tmp/work inside) under ``limits`` and the best isolation.

    Meant for single-threaded processes (the verifier pool's): it forks with a ``preexec_fn`` and reaps
    every child of the calling process.
    """
    level = isolation()
    _become_subreaper()
    with _slot() as uid, tempfile.TemporaryDirectory(prefix="tracemill-io-") as io_dir:
        io = Path(io_dir)
        (io / "stdin").write_bytes(stdin)
        use_uid = uid if level == "namespaces+uid" else None
        if use_uid is not None:
            os.chown(workdir, use_uid, use_uid)
        plan = _Plan(level, str(workdir), use_uid, limits)
        command = [*_init_prefix(level), *argv]
        start = time.monotonic()
        cpu_before = _children_cpu()
        timed_out = False
        with (
            open(io / "stdin", "rb") as fin,
            open(io / "stdout", "wb") as fout,
            open(io / "stderr", "wb") as ferr,
        ):
            (io / "stdin").unlink()  # the program has its input on fd 0 and nowhere else
            # preexec_fn is safe here: runs happen in the verifier pool's single-threaded processes.
            process = subprocess.Popen(
                command,
                stdin=fin,
                stdout=fout,
                stderr=ferr,
                env=CLEAN_ENV,
                preexec_fn=lambda: _enter(plan),  # noqa: PLW1509 (single-threaded caller, see run)
                close_fds=True,
            )
            try:
                timed_out = not _wait(process, limits.wall)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(KILL_GRACE_S)
                if use_uid is not None:
                    _kill_uid(use_uid)
                _reap()
            stdin_read = os.lseek(fin.fileno(), 0, os.SEEK_CUR)  # the offset the program shared with us
        wall = time.monotonic() - start
        # The kernel stops a program at RLIMIT_CPU by its own tick accounting, which rusage can report
        # a few milliseconds short of the limit: a run killed that close to it ran out of time.
        out_of_time = timed_out or _children_cpu() - cpu_before >= limits.cpu_s - CPU_SLACK_S
        stdout, over = _read(io / "stdout", limits.output_bytes)
        stderr, _ = _read(io / "stderr", limits.output_bytes)
    status, sig = _classify(process.returncode, out_of_time, stderr, over)
    return RunResult(status, process.returncode, stdout, stderr, round(wall, 4), sig, over, stdin_read)


def _init_prefix(level: Isolation) -> list[str]:
    """Under PID namespaces, ``unshare --fork`` makes the program PID 1, so its end ends every descendant."""
    unshare = shutil.which("unshare")
    if level == "rlimits" or unshare is None:
        return []
    return [unshare, "--fork", "--kill-child"]


@cache
def python_executable() -> str:
    """An interpreter the sandbox can run: the system's when ours sits where other uids cannot reach."""
    for candidate in (shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin"), sys.executable):
        if candidate and all(os.stat(p).st_mode & 0o001 for p in Path(os.path.realpath(candidate)).parents):
            return candidate
    return sys.executable


@cache
def isolation() -> Isolation:
    """The strongest level that works here, found by running a probe under each in turn."""
    levels: list[Isolation] = ["namespaces+uid"] if os.geteuid() == 0 else []
    levels += ["user-namespaces", "rlimits"]
    for level in levels:
        with tempfile.TemporaryDirectory(prefix="tracemill-probe-") as folder:
            if os.geteuid() == 0:
                os.chown(folder, SLOT_UID_BASE, SLOT_UID_BASE)
            plan = _Plan(level, folder, SLOT_UID_BASE if level == "namespaces+uid" else None, Limits())
            try:
                done = subprocess.run(
                    [*_init_prefix(level), python_executable(), "-I", "-S", "-c", "pass"],
                    preexec_fn=lambda plan=plan: _enter(plan),  # type: ignore[misc]
                    env=CLEAN_ENV,
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
            except (OSError, subprocess.SubprocessError):
                continue
            if done.returncode == 0:
                return level
    return "rlimits"
