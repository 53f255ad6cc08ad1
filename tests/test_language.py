"""Language mix over the case table (Chinese and English), plus explicit languages and details."""

from __future__ import annotations

import pytest

from tests.cases.langmix_cases import CASES, EN, MIXED, ZH, trace
from tests.worker_path import as_worker_sees
from verifiers.language import LanguageMixVerifier, LanguageOptions, detect, prose_units


def _verify(prompt: str, completion: str, **options: object) -> tuple[str | None, dict[str, object]]:
    """The verdict on a completion as a worker hands it over (split, with the prompt's messages)."""
    verdict = LanguageMixVerifier(LanguageOptions.model_validate(options)).verify(
        as_worker_sees(completion, prompt=prompt)
    )
    return verdict.reason, verdict.details


ZH_WITH_CLAUSES = "\n".join(
    [
        "我们先把首尾配对。",
        "Let us see.",
        "每一对的和都是十一。",
        "So far so good.",
        "一共有五对数字。",
        "Makes sense.",
        "所以总和是五十五。",
    ]
)
# (prompt, completion, reason): scripts no language here is written in, and short runs that recur
SCRIPTS_CASES: list[tuple[str, str, str | None]] = [
    (EN, trace("We add them up. यह संख्याओं का योग है और उत्तर पचपन है। So 55."), MIXED),
    (EN, trace("We add them up. ผลรวมของตัวเลขเหล่านี้คือห้าสิบห้า So 55."), MIXED),
    (EN, trace("We add them up. הסכום של המספרים האלה הוא חמישים וחמש. So 55."), MIXED),
    (EN, trace("We add them up. مجموع هذه الأعداد هو خمسة وخمسون. So 55."), MIXED),
    (EN, trace("We add them up. Το άθροισμα αυτών των αριθμών είναι πενήντα πέντε. So 55."), MIXED),
    (ZH, trace(ZH_WITH_CLAUSES, "答案是 55。"), MIXED),
    (EN, trace("Let θ be the angle and 𝑥 the side; with α = 2 the sum is 55."), None),
    (EN, trace("The Hindi word योग means sum. Adding them gives 55."), None),
    (ZH, trace("我们先配对。 Okay then. 每一对的和都是十一，所以是 55。", "答案是 55。"), None),
    (ZH, trace("用 dynamic programming 或 brute force 都可以，结果是 55。", "答案是 55。"), None),
]


def test_the_table_has_forty_cases_in_both_languages() -> None:
    assert len(CASES) >= 40
    assert {p for p, *_ in CASES} == {EN, ZH}
    assert {r for *_, r in CASES} == {None, "langmix:mixed"}


@pytest.mark.parametrize(("prompt", "completion", "reason"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_case(prompt: str, completion: str, reason: str | None) -> None:
    assert _verify(prompt, completion)[0] == reason


@pytest.mark.parametrize(
    ("prompt", "completion", "reason"), SCRIPTS_CASES, ids=[str(i) for i in range(len(SCRIPTS_CASES))]
)
def test_other_scripts_and_recurring_runs(prompt: str, completion: str, reason: str | None) -> None:
    assert _verify(prompt, completion)[0] == reason


def test_the_language_can_be_set() -> None:
    chinese = trace("我们把首尾配对，每对的和是十一，一共五对。", "答案是 55。")
    assert _verify(EN, chinese)[0] == "langmix:mixed"
    assert _verify(EN, chinese, language="zh")[0] is None


def test_details_report_the_share() -> None:
    reason, details = _verify(EN, trace("We add them up. 我们先把这个表达式拆开来计算。 Done, 55."))
    assert reason == "langmix:mixed"
    assert details["language"] == "en" and 0 < float(details["foreign_share"]) < 1  # type: ignore[arg-type]
    assert str(details["first_run"]).startswith("我们")


def test_detect_and_units() -> None:
    assert detect(EN) == "en" and detect(ZH) == "zh" and detect("12 + 5 = ?") == "en"
    assert prose_units("We use $\\alpha + x$ and `code()` here") == ["We", "use", "and", "here"]
