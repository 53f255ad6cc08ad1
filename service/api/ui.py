"""Browse pages: jobs, a job, its samples, one prompt's samples side by side and one sample;
server-rendered, the same queries as the API.

Jinja2 templates with a little plain JavaScript (``static/app.js``): live parts of a page poll a
fragment of the same template; filters live in the URL so a view can be shared. KaTeX comes from the
npm registry (``static/package.json``, installed by ``scripts/setup``) and is served from here, so the
pages work offline; without it, math shows as TeX source.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from service.api import browse, insights
from service.api.browse import SampleFilter
from service.api.render import FOLD_CHARS, bare_tex, code_css, detail_value, rich_text
from service.database import hosts, jobs
from service.errors import JobNotFound, SampleNotFound
from service.security.auth import COOKIE, safe_next
from service.security.tokens import TokenBook

HERE = Path(__file__).parent
STATIC = HERE / "static"
KATEX = STATIC / "node_modules" / "katex" / "dist"
PAGE_SIZE = 50
PROMPT_SAMPLES = 64  # side by side on a prompt's page; more are listed in the samples browser
FINAL = ("done", "cancelled")  # a job in these states no longer changes by itself

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)


def _when(value: datetime.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"


templates.env.filters.update(when=_when, percent=_percent, rich=rich_text, detail=detail_value)
templates.env.tests.update(bare_tex=bare_tex)
templates.env.globals.update(katex=KATEX.is_dir(), fold_chars=FOLD_CHARS, final_states=FINAL)


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def is_page(request: Request) -> bool:
    """Whether the request is for a page (answered in HTML), not the API (answered in JSON)."""
    return request.url.path.startswith("/ui/")


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """The HTML answer to a bad page address: a job or sample that does not exist, a bad parameter."""
    context = {"status_code": status_code, "message": message}
    return _render(request, "error.html", context, status_code)


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, partial: Literal["rows"] | None = None) -> HTMLResponse:
    """Every job with its progress; the rows refresh themselves while jobs run."""
    listed = jobs.list_jobs(_engine(request))
    return _render(request, "_job_rows.html" if partial else "jobs.html", {"jobs": listed})


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, partial: Literal["live"] | None = None) -> HTMLResponse:
    """A job's settings, progress, throughput, acceptance per verifier, reasons and pass rates."""
    engine = _engine(request)
    try:
        job = jobs.get_job(engine, job_id)
    except JobNotFound as exc:
        return error_page(request, 404, exc.message)
    context = {
        "job": job,
        "throughput": insights.throughput(engine, job_id),
        "pass_rates": insights.pass_rates(engine, job_id),
        "workers": hosts.list_workers(engine, job_id),
    }
    return _render(request, "_job_live.html" if partial else "job.html", context)


FILTERS = ("status", "verifier", "reason", "prompt_id", "q", "min_entropy", "max_entropy")
BOUNDS = ("min_entropy", "max_entropy")  # numbers


class BadFilter(ValueError):
    """A filter in the page address that cannot be applied."""


def _filters(request: Request) -> tuple[SampleFilter, str]:
    """The sample filters in the page address, and their query string to carry along in links."""
    values = {key: request.query_params.get(key, "").strip() for key in FILTERS}
    if values["status"] not in ("", "accepted", "rejected"):
        raise BadFilter("status: must be accepted or rejected")
    for key, value in values.items():
        if len(value) > 200:
            raise BadFilter(f"{key}: longer than 200 characters")
    given: dict[str, object] = {key: value or None for key, value in values.items()}
    for key in BOUNDS:
        if values[key]:
            try:
                given[key] = float(values[key])
            except ValueError:
                raise BadFilter(f"{key}: not a number") from None
            if not 0 <= given[key] <= 1000:  # type: ignore[operator]
                raise BadFilter(f"{key}: must be from 0 to 1000")
    filters = SampleFilter(**given)  # type: ignore[arg-type]
    return filters, urlencode({key: value for key, value in values.items() if value})


@router.get("/jobs/{job_id}/samples", response_class=HTMLResponse)
def samples_page(
    request: Request,
    job_id: str,
    after: Annotated[int | None, Query(ge=0)] = None,
    before: Annotated[int | None, Query(ge=0)] = None,
) -> HTMLResponse:
    """A page of samples under the filters in the URL, keyset-paginated."""
    engine = _engine(request)
    try:
        filters, query = _filters(request)
        job = browse.job_header(engine, job_id)
        page = browse.list_samples(engine, job_id, filters, after=after, before=before, limit=PAGE_SIZE)
        matching = browse.count_matching(engine, job, filters)
    except BadFilter as exc:
        return error_page(request, 400, str(exc))
    except JobNotFound as exc:
        return error_page(request, 404, exc.message)
    context = {"job": job, "page": page, "filters": filters, "query": query, "matching": matching}
    return _render(request, "samples.html", context)


@router.get("/jobs/{job_id}/samples/{sample_id}", response_class=HTMLResponse)
def sample_page(request: Request, job_id: str, sample_id: int) -> HTMLResponse:
    """One sample in full: prompt, reference, reasoning (folded when long), answer and every verdict.

    The filters of the list it was opened from stay in the address, for the way back and for the
    previous and next sample under them.
    """
    engine = _engine(request)
    try:
        filters, query = _filters(request)
        job = browse.job_header(engine, job_id)
        sample = browse.get_sample(engine, job_id, sample_id)
        older = browse.list_samples(engine, job_id, filters, before=sample_id, limit=1).items
        newer = browse.list_samples(engine, job_id, filters, after=sample_id, limit=1).items
    except BadFilter as exc:
        return error_page(request, 400, str(exc))
    except (JobNotFound, SampleNotFound) as exc:
        return error_page(request, 404, exc.message)
    context = {
        "job": job,
        "sample": sample,
        "query": query,
        "previous": older[0].id if older else None,
        "next": newer[0].id if newer else None,
    }
    return _render(request, "sample.html", context)


@router.get("/jobs/{job_id}/prompts/{prompt_id}", response_class=HTMLResponse)
def prompt_page(request: Request, job_id: str, prompt_id: str) -> HTMLResponse:
    """One prompt's samples side by side, accepted first: how a verifier's calls are judged, an
    accepted answer next to the rejected ones."""
    engine = _engine(request)
    try:
        job = browse.job_header(engine, job_id)
        found = browse.list_samples(engine, job_id, SampleFilter(prompt_id=prompt_id), limit=PROMPT_SAMPLES)
    except JobNotFound as exc:
        return error_page(request, 404, exc.message)
    if not found.items:
        return error_page(request, 404, f"job {job_id} has no sample of prompt {prompt_id!r}")
    samples = sorted(found.items, key=lambda s: (not s.accepted, s.sample_index))
    context = {"job": job, "prompt_id": prompt_id, "samples": samples, "more": found.next_cursor is not None}
    return _render(request, "prompt.html", context)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    """The login form: a token, kept in a cookie the pages send back."""
    return _render(request, "login.html", {"next": safe_next(next), "message": None})


@router.post("/login", response_class=HTMLResponse)
async def log_in(request: Request) -> Response:
    """Check the token and set it as an HttpOnly, SameSite=Strict cookie; back to the form if wrong."""
    form = parse_qs((await request.body()).decode(errors="replace"))
    token = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or [""])[0])
    book: TokenBook = request.app.state.token_book
    if not book.configured:
        return RedirectResponse(target, status_code=303)
    if not token or book.identify(token) is None:
        context = {"next": target, "message": "That token is not valid."}
        return _render(request, "login.html", context, status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/"
    )
    return response


@router.post("/logout")
def log_out() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/static/pygments.css")
def pygments_css() -> Response:
    return PlainTextResponse(code_css(), media_type="text/css")


def mount(app: FastAPI) -> None:
    """Add the pages, their assets, and ``/`` leading to the jobs page, to the app."""
    app.include_router(router)
    if KATEX.is_dir():
        app.mount("/ui/static/katex", StaticFiles(directory=KATEX), name="katex")
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="static")

    app.add_api_route("/", _home, include_in_schema=False)


def _home() -> RedirectResponse:
    return RedirectResponse("/ui/jobs")
