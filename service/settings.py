"""The one settings object: the only place that reads the environment (prefix ``TRACEMILL_``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.security.teachers import DEFAULT_TEACHER_HOSTS, TeacherPolicy
from service.security.tokens import TokenBook

if TYPE_CHECKING:
    from service.storage.stores import ShardStore

DEFAULT_DATA_DIR = Path("tracemill-data")
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_IN_FLIGHT = 64
DEFAULT_SHARD_ROWS = 5_000
DEFAULT_JOBS_PER_MINUTE = 30
DEFAULT_MAX_PROMPTS_PER_JOB = 1_000_000
DEFAULT_MAX_ACTIVE_JOBS_PER_TOKEN = 50


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
    tokens: str = Field(
        default="",
        description="API tokens as name:role:sha256:<hex> entries, separated by commas or newlines "
        "(`tracemill token new` makes one). With none here nor in tokens_file, `serve` listens on "
        "loopback only.",
    )
    tokens_file: Path | None = Field(default=None, description="A file of token entries, one a line.")
    teacher_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_TEACHER_HOSTS),
        description="Hosts, *.wildcards, addresses and networks that jobs' teacher URLs may name "
        "(comma-separated or a JSON list).",
    )
    teacher_keys: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Keys jobs may name in teacher.api_key_env, each with the hosts it may be sent to, "
        'as JSON: {"TEACHER_API_KEY": ["vllm"]}. Any other variable of the workers is out of reach.',
    )
    engine_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Models (names or paths, fnmatch patterns) that vllm-engine jobs may make workers load.",
    )
    import_dir: Path | None = Field(
        default=None, description="The only folder files named over HTTP (export general, ...) are read from."
    )
    hub_repos: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hub repositories (fnmatch patterns such as my-org/*) exports over HTTP may push to.",
    )
    jobs_per_minute: int = Field(
        default=DEFAULT_JOBS_PER_MINUTE, ge=0, description="Jobs a token may create a minute (0: no limit)."
    )
    max_prompts_per_job: int = Field(default=DEFAULT_MAX_PROMPTS_PER_JOB, ge=1)
    max_active_jobs_per_token: int = Field(
        default=DEFAULT_MAX_ACTIVE_JOBS_PER_TOKEN,
        ge=1,
        description="Draft, running and paused jobs a token may have.",
    )

    @field_validator("teacher_hosts", "hub_repos", "engine_models", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        """A JSON list, or the friendlier comma-separated form."""
        if isinstance(value, str):
            text = value.strip()
            return (
                json.loads(text)
                if text.startswith("[")
                else [v.strip() for v in text.split(",") if v.strip()]
            )
        return value

    @model_validator(mode="after")
    def _fill_paths(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'tracemill.db').resolve()}"
        if not self.shard_dir:
            self.shard_dir = str(self.data_dir / "shards")
        return self

    @property
    def token_book(self) -> TokenBook:
        """The configured API tokens (read from the file each time this is asked, at start-up)."""
        return TokenBook.load(self.tokens, self.tokens_file)

    @property
    def teacher_policy(self) -> TeacherPolicy:
        return TeacherPolicy.from_lists(self.teacher_hosts, self.teacher_keys, self.engine_models)

    @property
    def shard_store(self) -> ShardStore:
        """The shard directory or URL, as the store that reads and writes it."""
        from service.storage.stores import ShardStore

        assert self.shard_dir is not None
        return ShardStore(self.shard_dir)


def read_environment_variable(name: str) -> str | None:
    """Read a secret named by a job (``api_key_env``), once the operator's policy allowed it; kept
    here so the environment has one reader."""
    return os.environ.get(name)


def api_token() -> str | None:
    """The token the CLI sends to the API (``TRACEMILL_TOKEN``), never a setting that is shown."""
    return os.environ.get("TRACEMILL_TOKEN") or None
