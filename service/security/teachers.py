"""Which teacher hosts a job may make workers call, and which keys may go to which of them.

A host rule is a name (``vllm``, ``*.example.com``), an address or a network (``10.0.0.0/8``). A
network matches addresses written in the URL; a name is trusted as the operator's DNS resolves it, so
list names only for hosts whose DNS you trust. A key (an environment variable of the workers) is
offered to jobs only where the operator bound it, and only to URLs whose host its rules match: the
rest of the workers' environment is out of a job's reach. A job of kind ``vllm-engine`` makes each
worker load a model itself: only models the operator listed, with no engine option that names files,
hosts or code to trust.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# Loopback, and the teacher the compose file defines.
DEFAULT_TEACHER_HOSTS = ("127.0.0.0/8", "::1", "localhost", "vllm")
# Engine options whose names hold one of these load code, read files or reach hosts of the job's choice.
UNSAFE_ENGINE_OPTION_PARTS = (
    "trust_remote_code",
    "code",
    "path",
    "dir",
    "file",
    "url",
    "token",
    "download",
    "plugin",
    "tokenizer",
    "revision",
    "loader",
    "override",
    "worker",
    "config",
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class HostRules:
    """Host names (with ``*`` wildcards) and networks."""

    names: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, rules: Iterable[str]) -> HostRules:
        names, networks = [], []
        for given in rules:
            rule = given.strip().lower()
            try:
                networks.append(ipaddress.ip_network(rule.strip("[]"), strict=False))
            except ValueError:
                names.append(rule)
        return cls(tuple(names), tuple(networks))

    def allow(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return any(fnmatch.fnmatchcase(host, name) for name in self.names)
        return any(address in network for network in self.networks) or host in self.names


@dataclass(frozen=True)
class Refusal:
    """Why a job's teacher is not allowed: the field at fault and a message saying which setting."""

    field: str
    message: str


@dataclass(frozen=True)
class TeacherPolicy:
    """The operator's rules for teachers: hosts any job may use, and each key's hosts."""

    hosts: HostRules = field(default_factory=lambda: HostRules.parse(DEFAULT_TEACHER_HOSTS))
    keys: Mapping[str, HostRules] = field(default_factory=dict)
    engine_models: tuple[str, ...] = ()  # fnmatch patterns of the models vllm-engine jobs may load

    @classmethod
    def from_lists(
        cls, hosts: Iterable[str], keys: Mapping[str, Iterable[str]], engine_models: Iterable[str] = ()
    ) -> TeacherPolicy:
        return cls(
            HostRules.parse(hosts),
            {name: HostRules.parse(rules) for name, rules in keys.items()},
            tuple(engine_models),
        )

    def job_refusal(self, spec: Mapping[str, Any]) -> Refusal | None:
        """None if a job may use its teacher and every model its verifiers ask (a judge); else why not."""
        for where, settings in model_settings(spec):
            refusal = self.refusal(settings, where)
            if refusal is not None:
                return refusal
        return None

    def refusal(self, teacher: Mapping[str, Any], where: str = "teacher") -> Refusal | None:
        """None if a job may use this teacher (its ``teacher`` settings, as stored, or a judge's at
        ``where``); else why not."""
        if teacher.get("kind") == "vllm-engine":
            return self._engine_refusal(teacher, where)
        given = teacher.get("base_url") or []
        urls = [given] if isinstance(given, str) else list(given)
        hosts = [urlsplit(url).hostname or "" for url in urls]
        for index, host in enumerate(hosts):
            if not self.hosts.allow(host):
                return Refusal(
                    f"{where}.base_url" if len(urls) == 1 else f"{where}.base_url.{index}",
                    f"host {host!r} is not an allowed teacher host (the operator's TRACEMILL_TEACHER_HOSTS)",
                )
        key = teacher.get("api_key_env")
        if key is None:
            return None
        rules = self.keys.get(key)
        if rules is None:
            return Refusal(
                f"{where}.api_key_env",
                f"{key!r} is not a key offered to jobs (the operator's TRACEMILL_TEACHER_KEYS)",
            )
        for host in hosts:
            if not rules.allow(host):
                return Refusal(
                    f"{where}.api_key_env",
                    f"the key {key!r} may not be sent to host {host!r} (its hosts in TRACEMILL_TEACHER_KEYS)",
                )
        return None

    def _engine_refusal(self, teacher: Mapping[str, Any], where: str) -> Refusal | None:
        model = str(teacher.get("model", ""))
        if not any(fnmatch.fnmatchcase(model, pattern) for pattern in self.engine_models):
            return Refusal(
                f"{where}.model",
                f"{model!r} is not a model vllm-engine jobs may load (TRACEMILL_ENGINE_MODELS)",
            )
        for name in (teacher.get("engine") or {}).get("options") or {}:
            if any(part in name.lower() for part in UNSAFE_ENGINE_OPTION_PARTS):
                return Refusal(
                    f"{where}.engine.options.{name}",
                    "engine options that name files, hosts or code are not accepted from jobs; "
                    "the operator sets them on the workers",
                )
        return None


def model_settings(spec: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every model a job makes workers call, as (the field that names it, its teacher-shaped settings):
    the teacher, then each model verifier's (a judge's ``options.judge``)."""
    from verifiers.base import kind_of
    from verifiers.registry import load_verifier

    found = [("teacher", dict(spec["teacher"]))]
    for index, verifier in enumerate(spec.get("verifiers") or []):
        cls = load_verifier(verifier["name"])
        if kind_of(cls) == "model":
            option = getattr(cls, "endpoint_option", "judge")
            settings = cls(cls.Options.model_validate(verifier.get("options") or {})).endpoint()  # type: ignore[attr-defined]
            found.append((f"verifiers.{index}.options.{option}", settings))
    return found
