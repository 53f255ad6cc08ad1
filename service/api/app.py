"""HTTP API under ``/v1``: thin routes over ``jobs.py``; errors mapped to status codes in one place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api import browse, exports, ui
from service.api.browse import SampleFilter
from service.database import jobs
from service.database.db import make_engine, upgrade_schema
from service.errors import (
    ExportNotFound,
    Forbidden,
    InvalidJob,
    JobNotFound,
    JobStateConflict,
    SampleNotFound,
    TracemillError,
    UnknownVerifier,
)
from service.schemas import (
    ExportIn,
    ExportOut,
    JobCreated,
    JobIn,
    JobOut,
    JobSummary,
    PromptIn,
    PromptsIn,
    SampleOut,
    SamplePage,
    ShardOut,
)
from service.security import access
from service.security.auth import Authenticator, principal_of
from service.security.limits import JobRate, TooManyRequests
from service.security.paths import check_hub_repo, confine_model_name, resolve_imports
from service.security.teachers import TeacherPolicy
from service.security.tokens import Principal
from service.settings import Settings
from service.storage import shards

log = logging.getLogger(__name__)

STATUS_OF: dict[type[TracemillError], int] = {
    JobNotFound: status.HTTP_404_NOT_FOUND,
    ExportNotFound: status.HTTP_404_NOT_FOUND,
    SampleNotFound: status.HTTP_404_NOT_FOUND,
    InvalidJob: status.HTTP_422_UNPROCESSABLE_CONTENT,
    UnknownVerifier: status.HTTP_422_UNPROCESSABLE_CONTENT,
    JobStateConflict: status.HTTP_409_CONFLICT,
    Forbidden: status.HTTP_403_FORBIDDEN,
    TooManyRequests: status.HTTP_429_TOO_MANY_REQUESTS,
}


_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.]*): (.+)$", re.DOTALL)
FINISHING_FLUSH_INTERVAL_S = 0.2  # flusher passes near a job's end (else TRACEMILL_FLUSH_INTERVAL)
# A pass that writes nothing still counts each active job's tasks by status, which grows with the job:
# on PostgreSQL, 2 ms a pass for 1,000 prompts, 20 ms for 100,000 (16 of them the server's CPU).
# Waiting at least this many times a pass's duration before the next keeps such passes to a tenth of
# the time at any job size, where 0.2 s pauses near the end of a million-prompt job would not.
IDLE_PASS_PAUSE_FACTOR = 9.0


def _field_error(error: Any) -> dict[str, str]:
    """One validation error as {field, message, type}.

    Validators that check several fields at once start their message with ``<field>: ``; that part
    extends the location, so every 422 names the very field at fault.
    """
    loc = tuple(error["loc"])
    if error["type"] == "json_invalid":  # its location is ("body", the character where it broke)
        reason = (error.get("ctx") or {}).get("error") or "cannot be parsed"
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return {"field": "body", "message": f"invalid JSON{at}: {reason}", "type": "json_invalid"}
    if loc == ("body",) and error["type"] in ("model_attributes_type", "dict_type", "missing"):
        got = "nothing" if error["type"] == "missing" else _json_kind(error.get("input"))
        return {"field": "body", "message": f"expected a JSON object, got {got}", "type": str(error["type"])}
    field = ".".join(str(part) for part in loc if part != "body")
    message = str(error["msg"]).removeprefix("Value error, ")
    match = _FIELD_PREFIX.match(message)
    if error["type"] == "value_error" and match:
        field = f"{field}.{match.group(1)}" if field else match.group(1)
        message = match.group(2)
    # "body" itself when the body as a whole is at fault (missing, or not a JSON object).
    return {"field": field or str(error["loc"][0]), "message": message, "type": str(error["type"])}


def _json_kind(value: Any) -> str:
    """What a body that is not a JSON object was, in JSON's words (a form body arrives as text)."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, (str, bytes)):
        return "a string (a JSON object is sent with Content-Type: application/json)"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return "a number" if isinstance(value, (int, float)) else "something else"


def _body_error(message: str) -> JSONResponse:
    errors = [{"field": "body", "message": message, "type": "invalid_body"}]
    return JSONResponse({"message": message, "errors": errors}, status_code=400)


def flush_pause(interval: float, result: shards.FlushResult, seconds: float) -> float:
    """How long the flusher waits after a pass that took ``seconds``: ``interval``, or less near a
    job's end (looked at often, a job is done a moment after its last reply), but after a pass that
    wrote nothing never less than ``IDLE_PASS_PAUSE_FACTOR`` times its duration."""
    pause = min(interval, FINISHING_FLUSH_INTERVAL_S) if result.finishing else interval
    return pause if result.shards else max(pause, IDLE_PASS_PAUSE_FACTOR * seconds)


async def _flusher(engine: Engine, settings: Settings) -> None:
    """Turn committed samples into shards, and finished jobs into done ones, until cancelled."""
    await asyncio.to_thread(shards.warm_up)
    while True:
        pause = settings.flush_interval
        try:
            started = time.perf_counter()
            result = await asyncio.to_thread(
                shards.flush_all,
                engine,
                settings.shard_store,
                shard_rows=settings.shard_rows,
                max_age_s=settings.shard_max_age_s,
            )
            seconds = time.perf_counter() - started
            if result.shards:
                log.info("wrote %d shards (%d samples) in %.2f s", result.shards, result.rows, seconds)
            pause = flush_pause(settings.flush_interval, result, seconds)
        except Exception:  # a bad pass must not end the flusher; the next pass retries
            log.exception("shard flush failed; retrying")
        await asyncio.sleep(pause)


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
    access.check_new_job(
        engine,
        principal,
        len(job.prompts),
        max_active=settings.max_active_jobs_per_token,
        max_prompts=settings.max_prompts_per_job,
    )
    rate: JobRate = request.app.state.job_rate
    rate.take(principal.name)
    created = jobs.create_job(engine, job, owner=principal.name)
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
    cursor: Annotated[int | None, Query(ge=0, description="next_cursor of the previous page")] = None,
    before: Annotated[int | None, Query(ge=0, description="prev_cursor of the next page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> SamplePage:
    """A page of samples with their verdicts, filtered; keyset-paginated in id order."""
    filters = SampleFilter(status=status, verifier=verifier, reason=reason, prompt_id=prompt_id, q=q)
    return browse.list_samples(engine, job_id, filters, after=cursor, before=before, limit=limit)


@router.get("/jobs/{job_id}/samples/{sample_id}", tags=["samples"])
def get_sample(engine: EngineDep, job_id: str, sample_id: int) -> SampleOut:
    """One sample with its prompt, reasoning, answer and every verdict."""
    return browse.get_sample(engine, job_id, sample_id)


@router.get("/jobs/{job_id}/shards", tags=["samples"])
def list_shards(engine: EngineDep, settings: SettingsDep, job_id: str) -> list[ShardOut]:
    """The job's Parquet shards (paths relative to the shard directory)."""
    return jobs.list_shards(engine, job_id, settings.shard_store)


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


def create_app(settings: Settings | None = None, *, run_flusher: bool = True) -> FastAPI:
    """The FastAPI app; migrations run and orphaned shard files are removed on start-up."""
    settings = settings or Settings()
    engine = make_engine(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(upgrade_schema, settings.database_url)
        await asyncio.to_thread(shards.remove_orphans, engine, settings.shard_store, settings.orphan_grace_s)
        await asyncio.to_thread(exports.fail_interrupted, engine)
        flusher = asyncio.create_task(_flusher(engine, settings)) if run_flusher else None
        yield
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        engine.dispose()

    app = FastAPI(
        title="Tracemill",
        summary="Rejection sampling from a reasoning teacher into SFT data for a student.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.token_book = settings.token_book
    app.state.teacher_policy = settings.teacher_policy
    app.state.job_rate = JobRate(settings.jobs_per_minute)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_request_bytes:
            return JSONResponse(
                {
                    "message": f"request body over {settings.max_request_bytes} bytes; send prompts in pages "
                    "with POST /v1/jobs/{id}/prompts"
                },
                status_code=status.HTTP_413_CONTENT_TOO_LARGE,
            )
        return await call_next(request)

    # Added last, so it runs first: no other code sees a request it refuses.
    app.middleware("http")(Authenticator(app.state.token_book))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [_field_error(e) for e in exc.errors()]
        message = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
        if ui.is_page(request):
            return ui.error_page(request, 400, message)
        return JSONResponse({"message": message, "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if ui.is_page(request):
            return ui.error_page(request, exc.status_code, str(exc.detail))
        if exc.status_code == 400:  # the framework's 400s are all a body it cannot parse
            return _body_error(str(exc.detail))
        return JSONResponse({"message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RecursionError)
    async def too_deep(_request: Request, _exc: RecursionError) -> JSONResponse:
        return _body_error("request body is nested too deeply")

    @app.exception_handler(TracemillError)
    async def tracemill_error(_request: Request, exc: TracemillError) -> JSONResponse:
        code = next((c for cls, c in STATUS_OF.items() if isinstance(exc, cls)), 500)
        body: dict[str, Any] = {"message": exc.message}
        if isinstance(exc, InvalidJob) and exc.field:
            body["errors"] = [{"field": exc.field, "message": exc.message, "type": "invalid_job"}]
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, TooManyRequests) else None
        return JSONResponse(body, status_code=code, headers=headers)

    app.include_router(router)
    ui.mount(app)
    return app
