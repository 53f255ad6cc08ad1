"""Exports over the API: recorded in the database, run in a background thread, progress kept current."""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid

from sqlalchemy import Engine, insert, select, update

from service.database.db import reading, utcnow, writing
from service.database.models import Export
from service.errors import ExportNotFound, TracemillError
from service.export.hub import push_to_hub
from service.export.inputs import check_inputs
from service.export.mixing import export
from service.export.options import ExportOptions
from service.export.request import ExportIn, ExportOut
from service.export.selection import check_jobs
from service.settings import Settings

log = logging.getLogger(__name__)


def start_export(engine: Engine, settings: Settings, request: ExportIn) -> ExportOut:
    """Record the export and start it in a thread; the answer comes at once."""
    export_id = uuid.uuid4().hex
    location = settings.data_dir.resolve() / "exports" / export_id
    options = ExportOptions.from_request(request, location)
    check_jobs(engine, options)  # a 404 or 422 now, not a failed export later
    check_inputs(options.general, options.decontaminate)  # and a 422 for a file it could not read
    with writing(engine) as conn:
        conn.execute(
            insert(Export).values(
                id=export_id,
                status="running",
                request=request.model_dump(),
                location=str(location),
                rows_written=0,
                created_at=utcnow(),
            )
        )
    token = settings.hf_token.get_secret_value() if settings.hf_token else None
    thread = threading.Thread(
        target=_run,
        args=(engine, settings, export_id, options),
        kwargs={"request": request, "token": token},
        daemon=True,
    )
    thread.start()
    return get_export(engine, export_id)


def _run(
    engine: Engine,
    settings: Settings,
    export_id: str,
    options: ExportOptions,
    *,
    request: ExportIn,
    token: str | None,
) -> None:
    def progress(rows: int) -> None:
        with writing(engine) as conn:
            conn.execute(update(Export).where(Export.id == export_id).values(rows_written=rows))

    try:
        report = export(engine, settings.shard_store, options, progress)
        if request.push_to_hub:
            push_to_hub(options.output, request.push_to_hub, token, private=request.private)
        values = {
            "status": "done",
            "report": dataclasses.asdict(report),
            "rows_written": sum(report.splits.values()),
        }
    except TracemillError as exc:
        values = {"status": "failed", "error": exc.message}
    except Exception as exc:  # the thread's last resort: the failure is recorded, not lost in a log
        log.exception("export %s failed", export_id)
        values = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000]}
    with writing(engine) as conn:
        conn.execute(update(Export).where(Export.id == export_id).values(finished_at=utcnow(), **values))


def get_export(engine: Engine, export_id: str) -> ExportOut:
    with reading(engine) as conn:
        row = conn.execute(select(Export).where(Export.id == export_id)).first()
    if row is None:
        raise ExportNotFound(f"no export with id {export_id!r}")
    return ExportOut.model_validate(row, from_attributes=True)


def fail_interrupted(engine: Engine) -> None:
    """At start-up: exports a stopped server was running will not finish; say so."""
    with writing(engine) as conn:
        conn.execute(
            update(Export)
            .where(Export.status == "running")
            .values(
                status="failed",
                error="the server stopped during the export; start it again",
                finished_at=utcnow(),
            )
        )
