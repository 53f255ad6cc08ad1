"""Files named over HTTP are read only from the operator's import folder; pushes go only to allowed
Hub repositories.

A path is taken relative to ``TRACEMILL_IMPORT_DIR`` (an absolute path must already lie inside it),
resolved with its symlinks, and refused if the result leaves the folder. Without an import folder no
path is accepted over HTTP; the CLI, run by the operator on the server, reads what it is given.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from pathlib import Path

from service.errors import InvalidJob

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def resolve_import(path: str, import_dir: Path | None, field: str) -> str:
    """The file ``path`` names inside the import folder, as an absolute path; a 422 otherwise."""
    if import_dir is None:
        raise InvalidJob(
            f"{field}: the server reads no files named over HTTP until the operator sets "
            "TRACEMILL_IMPORT_DIR",
            field=field,
        )
    root = import_dir.resolve()
    given = Path(path)
    if ".." in given.parts:
        raise InvalidJob(f"{field}: '..' is not allowed in a path", field=field)
    resolved = (given if given.is_absolute() else root / given).resolve()
    if not resolved.is_relative_to(root):
        raise InvalidJob(f"{field}: the path leaves the import folder (TRACEMILL_IMPORT_DIR)", field=field)
    if not resolved.exists():
        raise InvalidJob(f"{field}: no such file in the import folder: {path}", field=field)
    return str(resolved)


def resolve_imports(paths: Iterable[str], import_dir: Path | None, field: str) -> list[str]:
    return [resolve_import(path, import_dir, f"{field}.{index}") for index, path in enumerate(paths)]


def check_hub_repo(repo: str, allowed: Iterable[str]) -> None:
    """A push requested over HTTP goes only to repositories matching the operator's patterns."""
    if not any(fnmatch.fnmatchcase(repo, pattern) for pattern in allowed):
        raise InvalidJob(
            f"push_to_hub: {repo!r} is not a repository this server may push to "
            "(the operator's TRACEMILL_HUB_REPOS)",
            field="push_to_hub",
        )


def confine_model_name(name: str, import_dir: Path | None, field: str) -> str:
    """A Hub id stays a Hub id; anything a loader would take for a local folder (a path, or a name
    that exists relative to the server's working folder) is resolved inside the import folder."""
    if _HUB_ID.match(name) and ".." not in name and not Path(name).exists():
        return name
    return resolve_import(name, import_dir, field)
