"""Engine helpers, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete, select

from service.db import among, reading, writing
from service.models import Task
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
