"""Alembic migrations: the only way Tracemill's schema is created or changed."""
