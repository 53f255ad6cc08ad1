"""Engine helpers, on SQLite and on PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Engine, delete, select, text
from sqlalchemy.exc import OperationalError

from service.database import db
from service.database.db import among, make_engine, reading, writing
from service.database.models import Task
from tests.conftest import simple_job


def _task_ids(engine: Engine, prompts: int) -> list[int]:
    job_id = simple_job(engine, prompts)
    with reading(engine) as conn:
        return list(conn.execute(select(Task.id).where(Task.job_id == job_id).order_by(Task.id)).scalars())


@pytest.mark.parametrize("pick", ["none", "some", "beyond_sqlite_parameter_limit"])
def test_among_selects_and_deletes_exactly_the_listed_ids(engine: Engine, pick: str) -> None:
    ids = _task_ids(engine, 6)
    listed = {
        "none": [],
        "some": [ids[1], ids[4], ids[4] + 1000],  # one that no row has
        # SQLite allows 32,766 bound parameters: one value holds them all
        "beyond_sqlite_parameter_limit": [*range(ids[-1] + 1, ids[-1] + 40_000), ids[0], ids[2]],
    }[pick]
    expected = sorted(set(ids) & set(listed))
    with reading(engine) as conn:
        found = conn.execute(select(Task.id).where(among(conn, Task.id, listed)).order_by(Task.id)).scalars()
        assert list(found) == expected
    with writing(engine) as conn:
        assert conn.execute(delete(Task).where(among(conn, Task.id, listed))).rowcount == len(expected)
    with reading(engine) as conn:
        left = conn.execute(select(Task.id).order_by(Task.id)).scalars()
        assert list(left) == sorted(set(ids) - set(expected))


def _backend(engine: Engine) -> int:
    """The server process behind the pooled connection a transaction gets."""
    with reading(engine) as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(url: str, pid: int) -> None:
    """End a server process as a restart would, and wait until it is gone."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone() == (True,)


def test_a_pooled_connection_the_server_closed_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(postgres_url)
    try:
        first = _backend(engine)
        _terminate(postgres_url, first)
        # Used a moment ago, it is not pinged: its statement fails once, and the pool lets it go.
        with pytest.raises(OperationalError):
            _backend(engine)
        second = _backend(engine)
        assert second != first
        # Idle past the ping interval, it is pinged and replaced before use: nothing fails.
        monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
        _terminate(postgres_url, second)
        assert _backend(engine) not in (first, second)
    finally:
        engine.dispose()
