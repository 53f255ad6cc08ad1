"""Hosts on one machine: each a network namespace of its own, with its own loopback and name, joined
to the machine's own namespace by a veth on one bridge (where PostgreSQL, the API and Slurm's
controller listen on the bridge's address). For tests and benches that need several hosts.

Only addresses of the namespaces made here are used, and every namespace, veth and the bridge are
removed on the way out, whatever happened.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (iproute2, util-linux)"
    probe = f"tmprobe{os.getpid() % 100000}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class Hosts:
    """The namespaces made: ``names[i]`` is at ``addresses[i]``; the machine is at ``gateway``."""

    tag: str
    names: tuple[str, ...]
    addresses: tuple[str, ...]
    gateway: str
    subnet: str

    def namespace(self, host: str) -> str:
        return f"{self.tag}{host}"

    def veth(self, host: str) -> str:
        return f"{self.tag}v{self.names.index(host)}"

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` as run on ``host``: in its network namespace, under its own host name."""
        inner = 'hostname "$0" && exec "$@"'
        net = f"--net=/run/netns/{self.namespace(host)}"
        return ["nsenter", net, "unshare", "--uts", "sh", "-c", inner, host, *argv]

    def cut(self, host: str) -> None:
        """Take the host's link down: it still reaches its own loopback (its teacher), nothing else
        (PostgreSQL, the API)."""
        _ip("link", "set", self.veth(host), "down")

    def mend(self, host: str) -> None:
        _ip("link", "set", self.veth(host), "up")


def _free_subnet() -> ipaddress.IPv4Network:
    taken = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    for third in [(os.getpid() + i) % 250 for i in range(250)]:
        subnet = ipaddress.ip_network(f"10.231.{third}.0/24")
        if f"10.231.{third}." not in taken:
            return subnet
    raise RuntimeError("no free 10.231.X.0/24 subnet for the test hosts")


@contextmanager
def network_hosts(names: Sequence[str]) -> Iterator[Hosts]:
    """Make one namespace per name; remove them all after."""
    tag = f"tm{os.getpid() % 100000}"
    subnet = _free_subnet()
    gateway, *addresses = [str(a) for a in list(subnet.hosts())[: len(names) + 1]]
    hosts = Hosts(tag, tuple(names), tuple(addresses), gateway, str(subnet))
    bridge = f"{tag}br"
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{gateway}/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for name, address in zip(names, addresses, strict=True):
            namespace, veth = hosts.namespace(name), hosts.veth(name)
            _ip("netns", "add", namespace)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            _ip("link", "set", veth, "master", bridge)
            _ip("link", "set", veth, "up")
            for args in (["addr", "add", f"{address}/24", "dev", "eth0"], ["link", "set", "eth0", "up"]):
                _ip("-n", namespace, *args)
            _ip("-n", namespace, "link", "set", "lo", "up")
        yield hosts
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", hosts.namespace(name)], capture_output=True, check=False)
            subprocess.run(["ip", "link", "del", hosts.veth(name)], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
