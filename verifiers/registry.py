"""Find verifiers through the ``tracemill.verifiers`` entry-point group, built-ins included."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel

from service.errors import UnknownVerifier
from verifiers.base import Verifier

ENTRY_POINT_GROUP = "tracemill.verifiers"


@cache
def _registered() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def verifier_names() -> list[str]:
    """Names of every installed verifier, sorted."""
    return sorted(_registered())


@cache
def load_verifier(name: str) -> type[Verifier]:
    """The verifier class registered under ``name``.

    Raises:
        UnknownVerifier: nothing is registered under that name.
    """
    entry = _registered().get(name)
    if entry is None:
        raise UnknownVerifier(
            f"unknown verifier {name!r}; installed: {', '.join(verifier_names())}; restart the server and "
            "workers after installing a plugin (they read the installed verifiers once, at start)"
        )
    cls: type[Verifier] = entry.load()
    return cls


def validate_options(name: str, options: dict[str, Any]) -> BaseModel:
    """Check a job's options for one verifier (raises pydantic's ValidationError when they are bad)."""
    return load_verifier(name).Options.model_validate(options)
