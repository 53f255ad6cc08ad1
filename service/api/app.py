"""The FastAPI app: the `/v1` routes and the pages, errors mapped to status codes in one place, and the
shard flusher that runs beside them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api import exports, routes, ui
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
from service.security.auth import Authenticator
from service.security.limits import JobRate, TooManyRequests
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

    app.include_router(routes.router)
    ui.mount(app)
    return app
