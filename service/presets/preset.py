"""A preset: how one dataset's rows become prompts, and the helpers its mappings share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Preset:
    """How one dataset's rows become prompts."""

    name: str
    source: str  # where it lives on the Hub
    licence: str  # as the dataset's card states it; check it before you publish what you make
    columns: tuple[str, ...]  # every row must have these
    prompt: Callable[[Row], str]
    reference: Callable[[Row], str | None] = lambda _row: None
    tests: Callable[[Row], Any] = lambda _row: None
    id: str | None = None
    metadata: tuple[str, ...] = ()
    skip: Callable[[Row], str | None] = lambda _row: None  # why a row is left out, or None
    # Why a row is left out when what its verifier needs (the reference; the tests where the verifiers
    # include code) comes out empty; None keeps such rows.
    missing: str | None = None
    verifiers: tuple[str, ...] = ("format", "math")
    template: str | None = None
    metadata_of: Callable[[Row], dict[str, Any]] = lambda _row: {}  # more metadata, from one column

    @property
    def needs(self) -> str:
        """The prompt field its verifiers check: ``tests`` for code sets, else ``reference``."""
        return "tests" if "code" in self.verifiers else "reference"


def text_of(value: Any) -> str | None:
    """A cell as stripped text; None when it is empty."""
    return None if value is None or str(value).strip() == "" else str(value).strip()
