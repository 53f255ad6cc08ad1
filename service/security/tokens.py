"""API tokens: the operator keeps only their SHA-256 hashes, each with a name and a role.

A token is 32 random bytes (``tracemill token new``), so a plain SHA-256 is enough to keep it secret:
a slow password hash protects guessable secrets, and would cost every request its time for nothing.
Entries are ``name:role:sha256:<hex>``, one per line in ``TRACEMILL_TOKENS_FILE`` or separated by
commas or newlines in ``TRACEMILL_TOKENS``; ``#`` starts a comment. Rotating a token is adding the
new entry, handing it out, then removing the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from service.errors import TracemillError

TOKEN_PREFIX = "tm_"
_ENTRY = re.compile(r"^(?P<name>[\w.@-]{1,64}):(?P<role>\w+):sha256:(?P<digest>[0-9a-f]{64})$")


class Role(IntEnum):
    """What a token may do; each role may do all that the roles below it may."""

    read = 1  # browse jobs, samples, shards and exports
    submit = 2  # create, fill, start, cancel and resume its own jobs; start exports
    admin = 3  # cancel and resume anyone's jobs


class BadTokenConfig(TracemillError):
    """The operator's token list cannot be read."""


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: the token's name and role (``local`` when no tokens are set)."""

    name: str
    role: Role

    def may(self, role: Role) -> bool:
        return self.role >= role


LOCAL = Principal("local", Role.admin)  # no tokens configured: the API listens on loopback only


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def entry_for(name: str, role: Role, token: str) -> str:
    """The line the operator adds for a token (it holds the hash, not the token)."""
    return f"{name}:{role.name}:sha256:{digest(token)}"


@dataclass(frozen=True)
class TokenBook:
    """The configured tokens, by hash."""

    entries: tuple[tuple[str, Principal], ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.entries)

    def identify(self, token: str) -> Principal | None:
        """The principal a presented token belongs to, or None. Every entry is compared, in constant
        time, so how long it takes says nothing of which entry (or how much of one) matched."""
        presented = digest(token).encode()
        found = None
        for known, principal in self.entries:
            if hmac.compare_digest(presented, known.encode()):
                found = principal
        return found

    @classmethod
    def parse(cls, text: str, source: str) -> TokenBook:
        entries = []
        for number, raw in enumerate(re.split(r"[\n,]", text), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            match = _ENTRY.match(line)
            if match is None:
                raise BadTokenConfig(
                    f"{source}, entry {number}: expected name:role:sha256:<64 hex digits> "
                    "(made by `tracemill token new`)"
                )
            role = match["role"]
            if role not in Role.__members__:
                raise BadTokenConfig(
                    f"{source}, entry {number}: role {role!r} is not one of read, submit, admin"
                )
            entries.append((match["digest"], Principal(match["name"], Role[role])))
        return cls(tuple(entries))

    @classmethod
    def load(cls, inline: str, path: Path | None) -> TokenBook:
        """The tokens of ``TRACEMILL_TOKENS`` and of ``TRACEMILL_TOKENS_FILE`` together."""
        book = cls.parse(inline, "TRACEMILL_TOKENS")
        if path is not None:
            try:
                text = path.read_text()
            except OSError as exc:
                raise BadTokenConfig(f"TRACEMILL_TOKENS_FILE: cannot read {path}: {exc.strerror}") from exc
            book = cls(book.entries + cls.parse(text, f"TRACEMILL_TOKENS_FILE ({path})").entries)
        return book
