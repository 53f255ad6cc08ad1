"""Fixtures with real parts: SQLite files, a throwaway PostgreSQL, the stand-in teacher on loopback."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from service.database import jobs
from service.database.db import make_engine, upgrade_schema
from service.launch.procs import free_port, spawn, stop, wait_http
from service.schemas import JobIn
from tests.pg import create_database, postgres_server
from verifiers.runner import VerifierRunner
from workers.loop import Worker

_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres_base_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tracemill.db'}"


@pytest.fixture
def postgres_url(postgres_base_url: str) -> str:
    return create_database(postgres_base_url, f"test_{next(_database_numbers)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database on each dialect in turn."""
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    upgrade_schema(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def simple_job(engine: Engine, prompts: int = 5) -> str:
    """A queued job of ``prompts`` one-line prompts whose teacher is never called (queue and database
    tests drive its tasks themselves); its id."""
    job = JobIn.model_validate(
        {
            "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
            "prompts": [{"id": f"p{i}", "prompt": f"Compute {i} + 1."} for i in range(prompts)],
        }
    )
    return jobs.create_job(engine, job).id


def start_standin(log_dir: Path, *extra: str) -> tuple[str, subprocess.Popen[bytes]]:
    """A stand-in teacher process on loopback; returns its /v1 URL."""
    port = free_port()
    log = log_dir / f"standin-{port}.log"
    process = spawn(["teacher-standin", "--port", str(port), *extra], log)
    wait_http(f"http://127.0.0.1:{port}/health", process, log)
    return f"http://127.0.0.1:{port}/v1", process


@pytest.fixture(scope="session")
def standin_teacher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fault-free stand-in teacher shared by the session."""
    url, process = start_standin(tmp_path_factory.mktemp("standin"))
    yield url
    stop([process])


def work_until_idle(engine: Engine, max_in_flight: int = 8) -> None:
    """One worker in this process over the queue until it is empty, with a verifier pool of one."""
    runner = VerifierRunner(processes=1)
    try:
        worker = Worker(engine, runner, 30, max_attempts=2, max_in_flight=max_in_flight, exit_when_idle=True)
        asyncio.run(worker.run())
    finally:
        runner.close()
