"""Alembic environment: the URL comes from the caller's config, else from Tracemill's settings."""

from __future__ import annotations

from alembic import context

from service.database.db import make_engine
from service.database.models import metadata
from service.settings import Settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds tables on SQLite, whose ALTER TABLE cannot change constraints, by
            # dropping the old one: with foreign keys on, that would delete the rows that reference it
            # (a sample's verdicts). SQLite's own procedure turns them off outside the transaction
            # and checks every reference before the commit.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
            if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                raise RuntimeError("the migration left rows referring to rows that do not exist")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
