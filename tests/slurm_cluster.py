"""A throwaway Slurm cluster on this machine: munge, slurmctld, and one slurmd per host, each host a
network namespace of its own (``tests/netns.py``), so every node has its own loopback as real nodes
do. Everything lives in a temporary folder and dies after, like the throwaway PostgreSQL.

Debian's ``slurm-wlm`` and ``munge`` are enough; the daemons run as root, which they need.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from service.launch.procs import free_port
from tests.netns import Hosts

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
READY_TIMEOUT_S = 60.0

_CONF = """\
ClusterName=tracemill-test
SlurmctldHost={controller}({gateway})
MailProg=/bin/true
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
KillWait=10
{nodes}
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def unavailable() -> str | None:
    """Why a Slurm cluster cannot run here, or None."""
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)"
    return None


@dataclass(frozen=True)
class Slurm:
    root: Path
    env: dict[str, str]  # SLURM_CONF, for sbatch, squeue and scancel

    def run(self, *argv: str) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=30, check=True)
        return done.stdout

    def tasks(self) -> dict[str, tuple[str, str]]:
        """Array task id (``JOB_TASK``) -> (state, node) of every job Slurm still knows."""
        listed = self.run("squeue", "--noheader", "--array", "--format=%i %T %N")
        return {
            fields[0]: (fields[1], fields[2] if len(fields) > 2 else "")
            for fields in (line.split() for line in listed.splitlines())
        }


def _start(argv: list[str], env: dict[str, str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, env=env, timeout=30)


def _wait_idle(slurm: Slurm, count: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    states: list[str] = []
    while time.monotonic() < deadline:
        with suppress(subprocess.CalledProcessError):  # the controller is not listening yet
            states = slurm.run("sinfo", "--noheader", "--Node", "--format=%N %t").split()
            if states[1::2].count("idle") == count:
                return
        time.sleep(0.5)
    log = (slurm.root / "slurmctld.log").read_text()[-2000:]
    raise RuntimeError(f"the Slurm nodes did not come up in {READY_TIMEOUT_S} s: {states}\n{log}")


def _kill_from(pid_file: Path) -> None:
    with suppress(OSError, ValueError):
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)


@contextmanager
def slurm_cluster(root: Path, hosts: Hosts, cpus: int = 2) -> Iterator[Slurm]:
    """Slurm's controller on the machine (at the bridge's address), a node on each host."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    for folder in ("state", "spool"):
        (root / folder).mkdir()
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    nodes = "\n".join(
        f"NodeName={name} NodeHostname={name} NodeAddr={address} CPUs={cpus} RealMemory=2000 State=UNKNOWN"
        for name, address in zip(hosts.names, hosts.addresses, strict=True)
    )
    conf = root / "slurm.conf"
    conf.write_text(
        _CONF.format(
            controller=socket.gethostname().split(".")[0],
            gateway=hosts.gateway,
            ctld_port=free_port(),
            slurmd_port=free_port(),
            root=root,
            nodes=nodes,
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    slurm = Slurm(root, env)
    munge = [f"--key-file={key}", f"--socket={root}/munge.socket", f"--pid-file={root}/munged.pid"]
    munge += [f"--log-file={root}/munged.log", f"--seed-file={root}/munged.seed"]
    try:
        _start(["munged", "--force", *munge], env)
        _start(["slurmctld", "-i"], env)
        for name in hosts.names:
            _start(hosts.command(name, ["slurmd", "-N", name]), env)
        _wait_idle(slurm, len(hosts.names))
        yield slurm
    finally:
        with suppress(subprocess.SubprocessError, OSError):
            slurm.run("scancel", "--full", "--user=root")
        time.sleep(1)
        for name in hosts.names:
            _kill_from(root / f"slurmd-{name}.pid")
        _kill_from(root / "slurmctld.pid")
        _kill_from(root / "munged.pid")
        time.sleep(0.5)
        shutil.rmtree(root, ignore_errors=True)
