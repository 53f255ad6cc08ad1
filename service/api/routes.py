"""The HTTP API's routes under ``/v1``: thin over ``database/jobs.py``, ``browse.py`` and ``exports.py``, each
checking what its caller's token may do before it acts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy import Engine

from service.api import browse, exports
from service.api.browse import SampleFilter
from service.database import hosts, jobs
from service.database.selection import PAGE_LIMIT, difficulty_buckets, pass_rates, select_prompts
from service.errors import (
    InvalidJob,
)
from service.export.request import ExportIn, ExportOut
from service.responses import (
    DifficultyBucket,
    JobCreated,
    JobOut,
    JobSummary,
    PassRatePage,
    SampleOut,
    SamplePage,
    ShardOut,
    WorkerOut,
)
from service.schemas import JobIn, PromptIn, PromptsIn
from service.security import access
from service.security.auth import principal_of
from service.security.limits import JobRate
from service.security.paths import check_hub_repo, confine_model_name, resolve_imports
from service.security.teachers import TeacherPolicy
from service.security.tokens import Principal
from service.settings import Settings


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(_engine)]


SettingsDep = Annotated[Settings, Depends(_settings)]


PrincipalDep = Annotated[Principal, Depends(principal_of)]


router = APIRouter(prefix="/v1")


@router.get("/health", tags=["service"])
def health(engine: EngineDep) -> dict[str, str]:
    """Liveness: answers once the API is up and its database reachable."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    return {"status": "ok"}


def _check_lengths(prompts: list[PromptIn], limit: int, base: str = "prompts") -> None:
    """Refuse prompts longer than the configured limit, naming the first."""
    for index, prompt in enumerate(prompts):
        text = prompt.get("prompt")
        texts = [text] if text is not None else [m["content"] for m in prompt.get("messages") or []]
        if sum(len(t) for t in texts) > limit:
            field = f"{base}.{index}.{'prompt' if text is not None else 'messages'}"
            raise InvalidJob(
                f"{field}: longer than {limit} characters (TRACEMILL_MAX_PROMPT_CHARS)", field=field
            )


@router.post("/jobs", status_code=status.HTTP_201_CREATED, tags=["jobs"])
def create_job(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    job: JobIn,
    *,
    response: Response,
) -> JobCreated:
    """Create a job and queue one task per prompt (with ``start: false``, a draft to fill in pages).

    A job with an ``idempotency_key`` already used returns that job (200) instead of a second one.
    The teacher, and any judge its verifiers ask, must be one the operator allows (hosts, keys,
    engine models).
    """
    _check_lengths(job.prompts, settings.max_prompt_chars)
    policy: TeacherPolicy = request.app.state.teacher_policy
    refusal = policy.job_refusal(job.spec())
    if refusal is not None:
        raise InvalidJob(f"{refusal.field}: {refusal.message}", field=refusal.field)
    selection = select_prompts(engine, job.prompts_from) if job.prompts_from else None
    access.check_new_job(
        engine,
        principal,
        len(selection.prompts) if selection else len(job.prompts),
        max_active=settings.max_active_jobs_per_token,
        max_prompts=settings.max_prompts_per_job,
    )
    rate: JobRate = request.app.state.job_rate
    rate.take(principal.name)
    created = jobs.create_job(engine, job, owner=principal.name, selection=selection)
    if not created.created:
        response.status_code = status.HTTP_200_OK
    return created


@router.get("/jobs", tags=["jobs"])
def list_jobs(engine: EngineDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[JobSummary]:
    """Jobs, newest first."""
    return jobs.list_jobs(engine, limit)


@router.get("/jobs/{job_id}", tags=["jobs"])
def get_job(engine: EngineDep, job_id: str) -> JobOut:
    """Status, tasks done/total, samples accepted/rejected, acceptance per verifier, reasons."""
    return jobs.get_job(engine, job_id)


@router.post("/jobs/{job_id}/prompts", tags=["jobs"])
def add_prompts(
    engine: EngineDep, settings: SettingsDep, principal: PrincipalDep, job_id: str, page: PromptsIn
) -> dict[str, int]:
    """Add a page of prompts to a draft job of this token's."""
    access.require_owner(engine, job_id, principal)
    _check_lengths(page.prompts, settings.max_prompt_chars)
    held = access.prompts_after_adding(engine, job_id, len(page.prompts))
    access.check_prompt_count(held, settings.max_prompts_per_job)
    return {"num_tasks": jobs.add_prompts(engine, job_id, page.prompts)}


@router.post("/jobs/{job_id}/start", tags=["jobs"])
def start_job(engine: EngineDep, principal: PrincipalDep, job_id: str) -> JobOut:
    """Queue a draft job's tasks."""
    access.require_owner(engine, job_id, principal)
    jobs.start_job(engine, job_id)
    return jobs.get_job(engine, job_id)


@router.post("/jobs/{job_id}/cancel", tags=["jobs"])
def cancel_job(engine: EngineDep, principal: PrincipalDep, job_id: str) -> JobOut:
    """Stop new claims; running tasks finish and accepted samples are kept."""
    access.require_owner(engine, job_id, principal)
    jobs.cancel_job(engine, job_id)
    return jobs.get_job(engine, job_id)


@router.post("/jobs/{job_id}/resume", tags=["jobs"])
def resume_job(engine: EngineDep, principal: PrincipalDep, job_id: str) -> JobOut:
    """Queue again what a paused or cancelled job left unfinished."""
    access.require_owner(engine, job_id, principal)
    jobs.resume_job(engine, job_id)
    return jobs.get_job(engine, job_id)


@router.get("/jobs/{job_id}/samples", tags=["samples"])
def list_samples(
    engine: EngineDep,
    job_id: str,
    *,
    status: Literal["accepted", "rejected"] | None = None,
    verifier: Annotated[str | None, Query(max_length=64, description="rejected by this verifier")] = None,
    reason: Annotated[str | None, Query(max_length=120, description="e.g. format:unclosed_think")] = None,
    prompt_id: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200, description="text in the prompt or completion")] = None,
    min_entropy: Annotated[
        float | None, Query(ge=0, le=1000, description="teacher's entropy, at least")
    ] = None,
    max_entropy: Annotated[
        float | None, Query(ge=0, le=1000, description="teacher's entropy, at most")
    ] = None,
    cursor: Annotated[int | None, Query(ge=0, description="next_cursor of the previous page")] = None,
    before: Annotated[int | None, Query(ge=0, description="prev_cursor of the next page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> SamplePage:
    """A page of samples with their verdicts, filtered; keyset-paginated in id order."""
    filters = SampleFilter(status, verifier, reason, prompt_id, q, min_entropy, max_entropy)
    return browse.list_samples(engine, job_id, filters, after=cursor, before=before, limit=limit)


@router.get("/jobs/{job_id}/samples/{sample_id}", tags=["samples"])
def get_sample(engine: EngineDep, job_id: str, sample_id: int) -> SampleOut:
    """One sample with its prompt, reasoning, answer and every verdict."""
    return browse.get_sample(engine, job_id, sample_id)


@router.get("/jobs/{job_id}/shards", tags=["samples"])
def list_shards(engine: EngineDep, settings: SettingsDep, job_id: str) -> list[ShardOut]:
    """The job's Parquet shards (paths relative to the shard directory)."""
    return jobs.list_shards(engine, job_id, settings.shard_store)


@router.get("/jobs/{job_id}/pass-rates", tags=["jobs"])
def list_pass_rates(
    engine: EngineDep,
    job_id: str,
    *,
    min_pass_rate: Annotated[float, Query(ge=0, le=1)] = 0.0,
    max_pass_rate: Annotated[float, Query(ge=0, le=1)] = 1.0,
    cursor: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="the last next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = PAGE_LIMIT,
) -> PassRatePage:
    """Each finished prompt's pass rate (accepted over samples), in task order: a student probe's
    are the student's; ``prompts_from`` selects by them."""
    return pass_rates(
        engine,
        job_id,
        min_pass_rate=min_pass_rate,
        max_pass_rate=max_pass_rate,
        cursor=cursor,
        limit=limit,
    )


@router.get("/jobs/{job_id}/difficulty", tags=["jobs"])
def get_difficulty(engine: EngineDep, job_id: str) -> list[DifficultyBucket]:
    """The job's finished prompts by pass rate bucket (0, up to 0.25, 0.5, 0.75, 1), with the samples,
    teacher tokens and tokens per accepted sample each bucket cost."""
    return difficulty_buckets(engine, job_id)


@router.get("/workers", tags=["service"])
def list_workers(
    engine: EngineDep, job: Annotated[str | None, Query(max_length=64)] = None
) -> list[WorkerOut]:
    """Worker processes seen in the last day, by host, with ``live`` while their heartbeat keeps
    coming; with ``job``, only those holding that job's tasks now."""
    return hosts.list_workers(engine, job)


@router.post("/exports", status_code=status.HTTP_202_ACCEPTED, tags=["exports"])
def start_export(engine: EngineDep, settings: SettingsDep, request: ExportIn) -> ExportOut:
    """Export jobs' accepted samples as an SFT dataset, in the background; poll GET /v1/exports/{id}.

    Files it names are read from the operator's import folder only; a push goes only to the Hub
    repositories the operator allows.
    """
    return exports.start_export(engine, settings, _confined(request, settings))


def _confined(request: ExportIn, settings: Settings) -> ExportIn:
    """The export with every path it names resolved inside the import folder (422 where one is not)."""
    if request.push_to_hub is not None:
        check_hub_repo(request.push_to_hub, settings.hub_repos)
    update: dict[str, Any] = {
        "general": resolve_imports(request.general, settings.import_dir, "general"),
        "decontaminate": resolve_imports(request.decontaminate, settings.import_dir, "decontaminate"),
    }
    if request.student_tokenizer is not None:
        update["student_tokenizer"] = confine_model_name(
            request.student_tokenizer, settings.import_dir, "student_tokenizer"
        )
    return request.model_copy(update=update)


@router.get("/exports/{export_id}", tags=["exports"])
def get_export(engine: EngineDep, export_id: str) -> ExportOut:
    """An export's status, rows written so far, and its report once done."""
    return exports.get_export(engine, export_id)
