"""What the commands' flags carry: ``NAME=JSON`` items, and a pydantic error as one line."""

from __future__ import annotations

import json
from typing import Any

from service.errors import TracemillError


def first_error(exc: Any) -> str:
    """A pydantic ValidationError's first problem as ``field: message``."""
    first = exc.errors()[0]
    return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"


def json_objects(flag: str, items: list[str]) -> dict[str, Any]:
    """``NAME=JSON`` items (``--options``, ``--reasoning-gym-config``), each a JSON object, by name."""
    found: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise TracemillError(f"{flag} takes NAME=JSON, got {item!r}")
        try:
            found[name] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TracemillError(f"{flag} {name}: not JSON: {exc}") from exc
        if not isinstance(found[name], dict):
            raise TracemillError(f"{flag} {name}: expected a JSON object")
    return found
