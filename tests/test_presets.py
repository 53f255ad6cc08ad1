"""Every dataset preset: its hand-written rows (``tests/cases/preset_rows.py``) through
``tracemill submit --preset`` to a live ``tracemill serve``, and what the database then holds."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, select

from service.database.models import Task
from service.launch.procs import free_port, spawn, stop, wait_http
from service.presets import PRESETS
from tests.cases.preset_rows import EXPECTED, ROWS
from verifiers.base import Candidate
from verifiers.code.verifier import CodeOptions, CodeVerifier

CLI = [sys.executable, "-m", "service.cli"]
TEACHER = ["--teacher-url", "http://127.0.0.1:9/v1", "--model", "m"]  # no worker runs: never called
PARQUET = {"codecontests", "livecodebench"}  # nested columns and the like, as the Hub's files hold them


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("presets")
    port = free_port()
    server = spawn(
        ["serve", "--port", str(port)], data_dir / "api.log", {"TRACEMILL_DATA_DIR": str(data_dir)}
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/health", server, data_dir / "api.log")
        yield f"http://127.0.0.1:{port}", data_dir
    finally:
        stop([server])


def _dataset_file(name: str, folder: Path) -> Path:
    if name in PARQUET:
        path = folder / f"{name}.parquet"
        pq.write_table(pa.Table.from_pylist(ROWS[name]), path)
    else:
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in ROWS[name]))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


def _submit(api: str, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _cli("submit", str(path), "--api", api, *TEACHER, "--no-follow", *args)


def _stored(data_dir: Path, job_id: str) -> dict[str, Task]:
    engine = create_engine(f"sqlite:///{data_dir / 'tracemill.db'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Task).where(Task.job_id == job_id)).all()
    finally:
        engine.dispose()
    return {row.prompt_id: row for row in rows}


def _judged(program: str, task: Any) -> bool:
    answer = f"```python\n{program}```"
    candidate = Candidate(
        f"<think>x</think>{answer}", "x", answer, tests=task.tests, metadata=task.prompt_metadata
    )
    return CodeVerifier(CodeOptions()).verify(candidate).accepted


def test_every_preset_has_rows_and_expectations() -> None:
    assert set(ROWS) == set(EXPECTED) == set(PRESETS)


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_submits_its_rows_as_the_dataset_means_them(
    name: str, api: tuple[str, Path], tmp_path: Path
) -> None:
    url, data_dir = api
    kept, references, skipped, programs = EXPECTED[name]
    done = _submit(url, _dataset_file(name, tmp_path), "--preset", name)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert f"queued {len(kept)} prompts" in done.stderr
    for reason, count in skipped.items():
        assert f"{reason} ({count})" in done.stderr, done.stderr

    job = httpx.get(f"{url}/v1/jobs/{job_id}").json()
    preset = PRESETS[name]
    assert [v["name"] for v in job["spec"]["verifiers"]] == list(preset.verifiers)
    assert job["spec"].get("prompt_template") == preset.template

    tasks = _stored(data_dir, job_id)
    assert sorted(tasks) == sorted(kept)
    for prompt_id, task in tasks.items():
        assert task.prompt and task.messages is None
        assert task.reference == references.get(prompt_id), prompt_id
        assert (task.tests is not None) == (preset.verifiers[-1] == "code"), prompt_id
    for prompt_id, program in programs.items():
        assert _judged(program, tasks[prompt_id]), (prompt_id, tasks[prompt_id].tests)
        assert not _judged("print(0)\n", tasks[prompt_id]), prompt_id


def test_livecodebench_keeps_its_metadata_and_reads_both_test_columns(
    api: tuple[str, Path], tmp_path: Path
) -> None:
    url, data_dir = api
    done = _submit(url, _dataset_file("livecodebench", tmp_path), "--preset", "livecodebench")
    task = _stored(data_dir, done.stdout.strip())["1"]
    assert task.prompt_metadata == {
        "platform": "leetcode",
        "difficulty": "easy",
        "contest_date": "2023-08-01T00:00:00",
        "func_name": "twoSum",
    }
    assert [t["args"] for t in task.tests] == [[[2, 7, 11, 15], 9], [[3, 3], 6]]  # public, then private
    assert "class Solution" in task.prompt and "Complete this code" in task.prompt


def test_the_job_config_may_name_the_preset_and_explicit_verifiers_win(
    api: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = api
    config = tmp_path / "job.json"
    config.write_text(json.dumps({"preset": "gsm8k", "n": 2}))
    done = _submit(url, _dataset_file("gsm8k", tmp_path), "--config", str(config), "--verifier", "math")
    assert done.returncode == 0, done.stderr
    job = httpx.get(f"{url}/v1/jobs/{done.stdout.strip()}").json()
    assert [v["name"] for v in job["spec"]["verifiers"]] == ["math"] and job["spec"]["n"] == 2


def test_a_row_without_the_presets_column_is_named(api: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = api
    path = tmp_path / "wrong.jsonl"
    path.write_text(json.dumps({"question": "What is 2 + 2?", "solution": "4"}) + "\n")
    done = _submit(url, path, "--preset", "gsm8k")
    assert done.returncode != 0
    assert "preset 'gsm8k': row 0 has no column 'answer' (it needs question, answer" in done.stderr
    unknown = _submit(url, path, "--preset", "gsm9k")
    assert "unknown preset 'gsm9k'; presets: numinamath-1.5" in unknown.stderr


def test_malformed_tests_in_a_presets_columns_fail_at_submission(
    api: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = api
    row = dict(
        ROWS["livecodebench"][0],
        public_test_cases='[{"input": "[1", "output": "1", "testtype": "functional"}]',
    )
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n")
    done = _submit(url, path, "--preset", "livecodebench")
    assert done.returncode != 0
    assert (
        "preset 'livecodebench': row 0: tests.0: a functional test's input lines and output must be JSON"
        in done.stderr
    )


def test_the_presets_command_lists_each_with_its_source_and_licence() -> None:
    listed = subprocess.run([*CLI, "presets"], capture_output=True, text=True, check=True).stdout
    for preset in PRESETS.values():
        line = next(line for line in listed.splitlines() if line.startswith(preset.name + " "))
        assert preset.source in line and preset.licence in line


def test_submit_options_reach_the_presets_verifiers(api: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = api
    path = _dataset_file("gsm8k", tmp_path)
    done = _submit(url, path, "--preset", "gsm8k", "--options", 'math={"timeout_s": 2.5}')
    assert done.returncode == 0, done.stderr
    job = httpx.get(f"{url}/v1/jobs/{done.stdout.strip()}").json()
    options = {v["name"]: v.get("options") for v in job["spec"]["verifiers"]}
    assert options["math"]["timeout_s"] == 2.5 and not options["format"]

    unnamed = _submit(url, path, "--preset", "gsm8k", "--options", 'code={"timeout_s": 1}')
    assert unnamed.returncode != 0
    assert "--options for code, which the job's verifiers do not name (format, math)" in unnamed.stderr
    wrong = _submit(url, path, "--preset", "gsm8k", "--options", 'math={"timeout_s": "soon"}')
    assert wrong.returncode != 0 and "verifiers.1.options.timeout_s" in wrong.stderr, wrong.stderr


def test_reasoning_gym_takes_no_preset(api: tuple[str, Path]) -> None:
    url, _ = api
    done = _cli(
        "submit", "--reasoning-gym", "basic_arithmetic:3", "--preset", "gsm8k", "--api", url, *TEACHER
    )
    assert done.returncode != 0
    assert "--reasoning-gym makes its own prompts: it takes no preset (got 'gsm8k')" in done.stderr
