"""The browse pages in headless Chromium against a live stack: a finished job and a running one.

Chromium is the system's (``/usr/bin/chromium``; never ``playwright install``). Without it these tests
skip, unless ``TRACEMILL_REQUIRE_BROWSER`` is set (CI sets it), when they fail. Screenshots of the
pages go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.launch.procs import stop
from service.standin.server import DEFAULT_MODEL
from tests.conftest import start_standin
from tests.e2e.conftest import READ_TOKEN, SECRET, SUBMIT_TOKEN, Stack, wait_done

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("TRACEMILL_REQUIRE_BROWSER"),
    reason="no /usr/bin/chromium (apt-get install chromium)",
)
playwright_api = pytest.importorskip("playwright.sync_api")


def _job(stack: Stack, teacher: str, prompts: int, n: int, name: str) -> str:
    body = {
        "name": name,
        "teacher": {"base_url": teacher, "model": DEFAULT_MODEL, "api_key_env": "TEACHER_KEY"},
        "n": n,
        "sampling": {"max_tokens": 512, "seed": 7},
        "verifiers": [{"name": "format"}, {"name": "math"}, {"name": "langmix"}, {"name": "length"}],
        "prompts": [
            {"id": f"q{i}", "prompt": f"Compute ({i} + 7) * {i + 2}.", "reference": str((i + 7) * (i + 2))}
            for i in range(prompts)
        ],
    }
    response = stack.client.post("/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="module")
def finished(stack: Stack) -> str:
    job_id = _job(stack, stack.teacher, prompts=24, n=4, name="finished-job")
    wait_done(stack.client, job_id)
    return job_id


@pytest.fixture(scope="module")
def slow_teacher(stack: Stack) -> Iterator[str]:
    """A teacher slow enough (2 sequences at a time, 0.5 s each) for a job to be watched while it runs."""
    url, process = start_standin(stack.data_dir, "--ttft", "0.5", "--max-num-seqs", "2")
    yield url
    stop([process])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


def _log_in(browser: Any, stack: Stack, token: str, path: str = "/ui/jobs") -> Any:
    """A new browser session logged in through the login form, as a person would."""
    page = browser.new_page(viewport={"width": 1366, "height": 900}, base_url=stack.api)
    page.goto(path)
    assert page.url.startswith(f"{stack.api}/ui/login?next="), page.url
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{stack.api}{path}")
    return page


@pytest.fixture(scope="module")
def page(stack: Stack, browser: Any) -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = _log_in(browser, stack, SUBMIT_TOKEN)
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    page.close()


def test_the_pages_need_a_token_and_a_wrong_one_is_told_so(stack: Stack, browser: Any) -> None:
    page = browser.new_page(base_url=stack.api)
    page.goto("/ui/jobs")
    assert page.url == f"{stack.api}/ui/login?next=/ui/jobs"
    page.get_by_label("Token").fill("tm_not-a-token")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("text=That token is not valid.")
    assert page.url == f"{stack.api}/ui/login"
    assert page.context.cookies() == []
    page.close()


def test_a_read_token_browses_but_cannot_cancel(stack: Stack, browser: Any, finished: str) -> None:
    page = _log_in(browser, stack, READ_TOKEN, f"/ui/jobs/{finished}")
    assert "robin (read)" in page.locator("header").inner_text()
    answer = page.evaluate(
        "async id => (await fetch(`/v1/jobs/${id}/cancel`, {method: 'POST'})).status", finished
    )
    assert answer == 403
    cookie = page.context.cookies()[0]
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{stack.api}/ui/login")
    page.goto(f"/ui/jobs/{finished}")
    assert page.url.startswith(f"{stack.api}/ui/login?next=")
    page.close()


def _all_samples(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    page = stack.client.get(f"/v1/jobs/{job_id}/samples", params={"limit": 1000}).json()
    assert page["next_cursor"] is None
    return list(page["items"])


def _listed_ids(page: Any) -> list[int]:
    """Sample ids of the list, following its Next links to the end."""
    ids: list[int] = []
    while True:
        shown = page.locator("li.sample").evaluate_all("items => items.map(item => item.dataset.sample)")
        ids += [int(i) for i in shown]
        following = page.locator("a[rel=next]")
        if not following.count():
            return ids
        following.click()
        page.wait_for_load_state()


def test_the_jobs_page_shows_counts_and_progress_moves_without_a_reload(
    stack: Stack, finished: str, slow_teacher: str, page: Any
) -> None:
    running = _job(stack, slow_teacher, prompts=60, n=2, name="running-job")
    page.goto("/ui/jobs")
    page.evaluate("window.notReloaded = true")
    done = page.locator(f'tr[data-job="{finished}"]')
    expected = stack.client.get(f"/v1/jobs/{finished}").json()
    assert done.locator(".accepted-count").inner_text() == str(expected["samples"]["accepted"])
    assert done.locator(".rejected-count").inner_text() == str(expected["samples"]["rejected"])
    assert done.locator(".done-count").inner_text() == "24"
    assert "done" in done.inner_text()
    progress = page.locator(f'tr[data-job="{running}"] .done-count')
    first = int(progress.inner_text())
    assert first < 60
    counter = f"document.querySelector('tr[data-job=\"{running}\"] .done-count')"
    page.wait_for_function(f"() => Number({counter}.textContent) > {first}", timeout=30_000)
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=ARTIFACTS / "jobs.png", full_page=True)

    page.goto(f"/ui/jobs/{running}")  # cancel and resume it from its page
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_selector(".badge.status-cancelled")
    assert stack.client.get(f"/v1/jobs/{running}").json()["status"] == "cancelled"
    page.get_by_role("button", name="Resume").click()
    page.wait_for_selector("#job-live .badge.status-running")
    page.get_by_role("button", name="Cancel").click()  # leave the worker to the other tests
    page.wait_for_selector(".badge.status-cancelled")


def test_clicking_a_rejection_reason_lists_exactly_its_samples(
    stack: Stack, finished: str, page: Any
) -> None:
    page.goto(f"/ui/jobs/{finished}")
    page.screenshot(path=ARTIFACTS / "job.png", full_page=True)
    link = page.locator("a[data-reason]").first
    reason = link.get_attribute("data-reason")
    count = int(link.locator(".bar-count").inner_text())
    link.click()
    page.wait_for_url(re.compile(r"reason="))
    page.screenshot(path=ARTIFACTS / "samples.png", full_page=True)
    expected = [
        s["id"] for s in _all_samples(stack, finished) if reason in {v["reason"] for v in s["verdicts"]}
    ]
    assert _listed_ids(page) == expected
    assert len(expected) == count
    page.goto(f"/ui/jobs/{finished}/samples?reason={reason}")
    total = len(_all_samples(stack, finished))
    assert page.locator("h1 .counts").inner_text() == f"{count} of {total} match these filters"


def test_the_job_page_says_what_its_charts_count(stack: Stack, finished: str, page: Any) -> None:
    page.goto(f"/ui/jobs/{finished}")
    job = stack.client.get(f"/v1/jobs/{finished}").json()
    note = page.locator(".reasons-note").inner_text()
    assert f"more than the {job['samples']['rejected']} rejected samples" in note
    assert sum(job["rejection_reasons"].values()) >= job["samples"]["rejected"]
    # A job of a few seconds: bars of whole seconds, never "per 0.0 s".
    throughput = page.locator(".throughput-note").inner_text()
    assert re.match(r"samples finished per \d+ (s|min), \d+ bars?; peak [\d,.]+ samples/s", throughput)
    bars = int(throughput.split(", ")[1].split()[0])
    assert page.locator("svg.chart rect").count() == bars


def test_a_prompts_samples_side_by_side_accepted_first(stack: Stack, finished: str, page: Any) -> None:
    samples = _all_samples(stack, finished)
    prompt = next(
        p for p in sorted({s["prompt_id"] for s in samples})
        if len({s["accepted"] for s in samples if s["prompt_id"] == p}) == 2
    )  # fmt: skip
    mine = [s for s in samples if s["prompt_id"] == prompt]
    page.goto(f"/ui/jobs/{finished}/samples/{mine[0]['id']}")
    page.locator("a.prompt-link").click()
    page.wait_for_url(re.compile(r"/prompts/"))
    columns = page.locator(".side-by-side article.column")
    assert columns.count() == len(mine)
    shown = [c.get_attribute("class").split()[-1] for c in columns.all()]
    assert shown == sorted(shown, key=lambda kind: kind != "ok") and {"ok", "no"} <= set(shown)
    boxes = page.evaluate(
        "[...document.querySelectorAll('article.column')].map(c => c.getBoundingClientRect().top)"
    )
    assert boxes[0] == boxes[1]  # side by side on a laptop, not one under another
    page.screenshot(path=ARTIFACTS / "prompt.png", full_page=True)


def test_no_page_scrolls_sideways_on_a_phone(stack: Stack, browser: Any, finished: str) -> None:
    narrow = _log_in(browser, stack, SUBMIT_TOKEN)
    narrow.set_viewport_size({"width": 420, "height": 900})
    sample = _all_samples(stack, finished)[0]
    for path in (
        "/ui/jobs",
        f"/ui/jobs/{finished}",
        f"/ui/jobs/{finished}/samples",
        f"/ui/jobs/{finished}/samples/{sample['id']}",
        f"/ui/jobs/{finished}/prompts/{sample['prompt_id']}",
    ):
        narrow.goto(path)
        width = narrow.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, (path, width)
    narrow.screenshot(path=ARTIFACTS / "prompt-420px.png", full_page=True)
    narrow.close()


def test_a_sample_page_shows_the_verdict_details(stack: Stack, finished: str, page: Any) -> None:
    page.goto(f"/ui/jobs/{finished}/samples?reason=math:wrong_answer")
    page.locator(".sample-link").first.click()
    page.wait_for_url(re.compile(r"/samples/\d+"))
    sample_id = int(page.url.split("/samples/")[1].split("?")[0])
    sample = stack.client.get(f"/v1/jobs/{finished}/samples/{sample_id}").json()
    math = next(v for v in sample["verdicts"] if v["verifier"] == "math")
    row = page.locator('tr.verdict[data-verifier="math"]')
    assert "math:wrong_answer" in row.inner_text()
    details = row.locator("dd")
    assert details.count() == len(math["details"])
    for value in math["details"].values():
        assert str(value) in row.text_content()  # KaTeX keeps the TeX source in its MathML annotation
    assert page.locator(".finish-reason").inner_text() == sample["finish_reason"]
    assert page.locator(".katex").count() > 0  # KaTeX, as scripts/setup installs it, renders the maths
    assert str(sample["completion_tokens"]) in page.locator(".tokens").inner_text()
    assert page.locator("details.think").count() == (1 if sample["think"] else 0)
    page.screenshot(path=ARTIFACTS / "sample.png", full_page=True)


def test_search_finds_a_sample_by_a_word_of_its_completion(stack: Stack, finished: str, page: Any) -> None:
    samples = _all_samples(stack, finished)

    def matches(word: str) -> list[int]:
        texts = ((s["id"], s["completion"] + " ".join(m["content"] for m in s["messages"])) for s in samples)
        return [i for i, text in texts if word.lower() in text.lower()]

    target = samples[len(samples) // 2]
    word = min(set(re.findall(r"\w{3,}", target["completion"])), key=lambda w: (len(matches(w)), w))
    page.goto(f"/ui/jobs/{finished}/samples")
    page.keyboard.press("/")
    page.keyboard.type(word)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q="))
    listed = _listed_ids(page)
    assert target["id"] in listed
    assert listed == matches(word)


def test_the_keyboard_walks_the_list(stack: Stack, finished: str, page: Any) -> None:
    page.goto(f"/ui/jobs/{finished}/samples?status=rejected")
    ids = _listed_ids(page)
    page.goto(f"/ui/jobs/{finished}/samples?status=rejected")
    for key in ("j", "j", "j", "k"):
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/samples/{ids[1]}\?status=rejected"))
    page.keyboard.press("j")
    page.wait_for_url(re.compile(rf"/samples/{ids[2]}\?"))
    page.keyboard.press("u")
    page.wait_for_url(re.compile(r"/samples\?status=rejected$"))


def test_export_from_the_job_page(finished: str, page: Any) -> None:
    page.goto(f"/ui/jobs/{finished}")
    page.get_by_role("button", name="Export").click()
    page.wait_for_selector("text=/Exported \\d+ rows to /", timeout=60_000)


def test_the_teacher_secret_is_on_no_page(stack: Stack, finished: str, page: Any) -> None:
    job_ids = [j["id"] for j in stack.client.get("/v1/jobs").json()]
    paths = ["/ui/jobs", "/ui/jobs?partial=rows"]
    for job_id in job_ids:
        paths += [f"/ui/jobs/{job_id}", f"/ui/jobs/{job_id}?partial=live", f"/ui/jobs/{job_id}/samples"]
    paths += [f"/ui/jobs/{finished}/samples/{s['id']}" for s in _all_samples(stack, finished)[:20]]
    for path in paths:
        page.goto(path)
        assert SECRET not in page.content(), path
    assert SECRET in stack.env.values()  # the workers did have it
