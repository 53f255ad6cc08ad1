"""A job of synthetic prompts with every task done, for benches that then write its samples directly."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, update

from service.database import jobs
from service.database.db import writing
from service.database.models import Task
from service.schemas import JobIn, PromptsIn

PAGE = 50_000


def finished_job(engine: Engine, prompts: int, per_prompt: int, **spec: Any) -> str:
    """Prompts ``p0``... added in pages to a draft job; each task marked done with ``per_prompt`` samples."""
    body = {"teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "teacher"}, "n": per_prompt, **spec}
    job_id = jobs.create_job(engine, JobIn.model_validate({**body, "start": False})).id
    for start in range(0, prompts, PAGE):
        page = [
            {"id": f"p{i}", "prompt": f"Problem {i}: compute {i} * 7 + 3 and explain."}
            for i in range(start, min(prompts, start + PAGE))
        ]
        jobs.add_prompts(engine, job_id, PromptsIn.model_validate({"prompts": page}).prompts)
    with writing(engine) as conn:
        conn.execute(update(Task).where(Task.job_id == job_id).values(status="done", n_samples=per_prompt))
    return job_id
