"""Engine and transactions: the same code on SQLite (embedded) and PostgreSQL (many workers)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import QueryableAttribute

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A pooled PostgreSQL connection idle this long is pinged before use (see make_engine).
PING_AFTER_IDLE_S = 2.0
_WRITE = "tracemill_write"


def utcnow() -> datetime:
    """Naive UTC: both dialects store it the same way and compare it correctly."""
    return datetime.now(UTC).replace(tzinfo=None)


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def among(conn: Connection, column: QueryableAttribute[int], ids: Sequence[int]) -> ColumnElement[bool]:
    """``column IN ids`` with the ids in one bound value: an array on PostgreSQL, a JSON list that
    ``json_each`` reads on SQLite. The statement's text is then the same for any number of ids, so
    neither SQLAlchemy nor psycopg renders and parses a new one with a placeholder per id (which cost
    a shard flush more than writing its Parquet file), and no list needs cutting under SQLite's limit
    on bound parameters."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))
    listed = func.json_each(json.dumps(list(ids))).table_valued("value")
    return column.in_(select(listed.c.value))


def make_engine(url: str) -> Engine:
    """Create an engine; on SQLite, turn on WAL and take write locks up front.

    pysqlite's own transaction handling starts a deferred transaction lazily, so two writers can both
    read and then fail to upgrade their lock (``database is locked``). We switch it off and emit
    ``BEGIN IMMEDIATE`` for write transactions, ``BEGIN`` for reads, so readers never block in WAL mode.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _pinging_when_idle(create_engine(url, pool_size=10, max_overflow=20, pool_use_lifo=True))
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _pinging_when_idle(engine: Engine) -> Engine:
    """Ping a pooled connection before use only if it sat idle for ``PING_AFTER_IDLE_S``, and replace
    it if the server no longer answers on it.

    ``pool_pre_ping`` pings at every checkout: a round trip, and a statement for the server, before
    each claim and each commit, which a worker makes several of a second. A connection used a moment
    ago is alive but for a server restart in that moment; then its statement fails, the pool drops
    every connection made before (SQLAlchemy invalidates the pool on a disconnect), and the caller's
    retry gets a fresh one. The pool is last in, first out, so the connections in use stay the same
    few and the spare ones age into a ping.
    """

    def note_use(_dbapi_connection: Any, record: Any) -> None:
        record.info["last_used"] = time.monotonic()  # info lives as long as the DBAPI connection

    event.listen(engine, "connect", note_use)
    event.listen(engine, "checkin", note_use)

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info["last_used"] < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:  # the pool discards it and connects again
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc

    return engine


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction: committed on success, rolled back on any exception."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (deferred on SQLite, so it never waits for a writer)."""
    with engine.connect() as conn, conn.begin():
        yield conn


def upgrade_schema(url: str, revision: str = "head") -> None:
    """Run Alembic migrations; the schema is only ever created this way."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade_schema(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def schema_is_current(engine: Engine) -> bool:
    """Whether the database is migrated to the newest revision this code knows."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(False))).get_heads())
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads()) == heads


def alembic_config(url: str) -> Any:
    """Alembic config pointing at the installed ``migrations`` package, so no alembic.ini is needed."""
    from alembic.config import Config

    import migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
