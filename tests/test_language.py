"""Language mix over the case table (Chinese and English), plus explicit languages and details."""

from __future__ import annotations

import pytest

from tests.cases.langmix_cases import CASES, EN, ZH, trace
from verifiers.base import Candidate
from verifiers.language import LanguageMixVerifier, LanguageOptions, detect, prose_units


def _verify(prompt: str, completion: str, **options: object) -> tuple[str | None, dict[str, object]]:
    verdict = LanguageMixVerifier(LanguageOptions.model_validate(options)).verify(
        Candidate(
            completion=completion, think=None, answer=None, messages=({"role": "user", "content": prompt},)
        )
    )
    return verdict.reason, verdict.details


def test_the_table_has_forty_cases_in_both_languages() -> None:
    assert len(CASES) >= 40
    assert {p for p, *_ in CASES} == {EN, ZH}
    assert {r for *_, r in CASES} == {None, "langmix:mixed"}


@pytest.mark.parametrize(("prompt", "completion", "reason"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_case(prompt: str, completion: str, reason: str | None) -> None:
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
