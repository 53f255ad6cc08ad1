"""The one settings object: the only place that reads the environment (prefix ``TRACEMILL_``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from service.storage import ShardStore

DEFAULT_DATA_DIR = Path("tracemill-data")
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_IN_FLIGHT = 64
DEFAULT_SHARD_ROWS = 5_000


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as ``TRACEMILL_<FIELD>``.

    The defaults describe the embedded setup: SQLite and Parquet shards under ``data_dir``.
    """

    model_config = SettingsConfigDict(env_prefix="TRACEMILL_", extra="ignore", populate_by_name=True)

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = Field(default="", description="SQLAlchemy URL; SQLite under data_dir when empty.")
    shard_dir: str | None = Field(
        default=None,
        description="Where Parquet shards go: a directory, or an fsspec URL such as s3://bucket/shards "
        "(with the store's fsspec package installed); data_dir/shards when empty.",
    )
    host: str = "127.0.0.1"
    port: int = 8420
    lease_seconds: float = Field(default=DEFAULT_LEASE_SECONDS, gt=0)
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1)
    max_in_flight: int = Field(default=DEFAULT_MAX_IN_FLIGHT, ge=1)
    shard_rows: int = Field(default=DEFAULT_SHARD_ROWS, ge=1, description="Rows that make a full shard.")
    flush_interval: float = Field(
        default=2.0, gt=0, description="Seconds between shard flushes (at most 0.2 near a job's end)."
    )
    shard_max_age_s: float = Field(
        default=10.0,
        gt=0,
        description="A tenth of a shard is written once its oldest sample has waited this long, so shards "
        "are written as a job runs rather than all at its end.",
    )
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_prompt_chars: int = Field(default=200_000, ge=1, description="Longest prompt a job may carry.")
    hf_token: SecretStr | None = Field(
        default=None, validation_alias="HF_TOKEN", description="Hub token for pushing exports (HF_TOKEN)."
    )
    orphan_grace_s: float = Field(
        default=300.0, ge=0, description="Unrecorded shard files younger than this survive start-up."
    )

    @model_validator(mode="after")
    def _fill_paths(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'tracemill.db').resolve()}"
        if not self.shard_dir:
            self.shard_dir = str(self.data_dir / "shards")
        return self

    @property
    def shard_store(self) -> ShardStore:
        """The shard directory or URL, as the store that reads and writes it."""
        from service.storage import ShardStore

        assert self.shard_dir is not None
        return ShardStore(self.shard_dir)


def read_environment_variable(name: str) -> str | None:
    """Read a secret named by a job (``api_key_env``); kept here so the environment has one reader."""
    return os.environ.get(name)
