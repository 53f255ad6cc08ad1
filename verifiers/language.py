"""Language mix: reject reasoning that switches languages (R1-Zero's Chinese-in-English traces).

Prose is measured by Unicode script; any script outside the target language's is foreign, whether
or not a language here is written in it. LaTeX, code, URLs, numbers and identifiers are removed
first, and so are short quoted terms; a foreign run counts when it is prose-sized (several CJK
characters, or several words in a row), or when shorter runs recur, so a variable name or a
technical term is not mixing but a clause every other line is.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from verifiers.base import Candidate, Verdict

NAME = "langmix"
SCRIPTS_OF = {
    "en": {"latin"},
    "zh": {"han"},
    "ja": {"han", "kana"},
    "ko": {"hangul", "han"},
    "ru": {"cyrillic"},
}
CJK = {"han", "kana", "hangul"}

_REMOVE = re.compile(
    r"```.*?(?:```|$)|`[^`\n]*`"  # code
    r"|\$\$.*?\$\$|\$[^$\n]*\$|\\\[.*?\\\]|\\\(.*?\\\)"  # LaTeX
    r"|\\[A-Za-z]+(?:\{[^}]*\})?"  # stray LaTeX commands
    r"|https?://\S+"  # URLs
    r"|</?(?:think|answer)>",
    re.DOTALL,
)
# What closes every span ``_REMOVE`` can leave open at a line break: display maths, \\[ \\], \\( \\),
# a command's braces, then a code fence last (it would swallow the others).
_CLOSERS = "$$\\]\\)}```"
_QUOTED = re.compile(r"[\"“«「『]([^\"”»」』\n]{1,40})[\"”»」』]")
_ASCII_WORD = re.compile(r"[A-Za-z]{2,}")
_UNIT = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W\d_]+", re.UNICODE)


def script_of(unit: str) -> str:
    """The script of a character or word: latin, han, kana, hangul, cyrillic, or any other script's
    own name (devanagari, thai, hebrew, …), so that prose in a script no language here knows counts as
    foreign all the same; ``other`` for what is no script's letter (digits, symbols, maths letters)."""
    return _script_of_character(unit[0])


@functools.lru_cache(maxsize=8192)
def _script_of_character(character: str) -> str:
    # Cached: a trace has a few hundred distinct first letters but thousands of words.
    name = unicodedata.name(character, "")
    for script, marker in (
        ("han", "CJK"),
        ("kana", "HIRAGANA"),
        ("kana", "KATAKANA"),
        ("hangul", "HANGUL"),
        ("latin", "LATIN"),
        ("cyrillic", "CYRILLIC"),
    ):
        if marker in name:
            return script
    if not unicodedata.category(character).startswith("L") or name.startswith("MATHEMATICAL"):
        return "other"
    return name.split(" ", 1)[0].lower() or "other"


class LanguageOptions(BaseModel):
    """``language``: the trace's expected language, or ``auto``: the row's own (``Candidate.extra``
    ``language``, set by ``tracemill verify --language-field``), else the prompt's. A foreign run is
    prose once it has ``min_cjk_run`` CJK characters or ``min_word_run`` words in a row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    language: Literal["auto", "en", "zh", "ja", "ko", "ru"] = "auto"
    min_cjk_run: int = Field(default=3, ge=1)
    min_word_run: int = Field(default=3, ge=1)
    recurring_runs: int = Field(
        default=3,
        ge=1,
        description="Shorter foreign runs of two units or more that add up to mixing: a Chinese trace "
        "with an English clause every other line is mixed though no one clause is prose-sized.",
    )


def target_language(value: str) -> str | None:
    """The language code ``value`` names, if langmix knows it: ``zh``, ``zh-CN``, ``zh_Hans`` are ``zh``."""
    code = value.strip().lower().replace("_", "-").split("-", 1)[0]
    return code if code in SCRIPTS_OF else None


def prose_units(text: str) -> list[str]:
    """Characters (CJK) and words (other scripts) of the prose, identifiers and one-letter names excluded."""
    text = _QUOTED.sub(" ", _REMOVE.sub(" ", text))
    if text.isascii():  # the common case, in C: Latin words of two letters or more
        return _ASCII_WORD.findall(text)
    units = []
    for unit in _UNIT.findall(text):
        script = script_of(unit)
        if script in CJK or script == "other" or len(unit) > 1:
            units.append(unit)
    return units


def detect(text: str) -> str:
    """The language whose scripts cover most of the prose (en when there is none)."""
    units = prose_units(text)
    counts = {lang: sum(1 for u in units if script_of(u) in scripts) for lang, scripts in SCRIPTS_OF.items()}
    # CJK counts characters, other scripts count words: weigh them alike.
    counts["en"] *= 2
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] else "en"


@functools.lru_cache(maxsize=256)
def _prompt_language(prompt: str) -> str:
    """``detect`` for a prompt, which its samples' checks ask about again and again (each partial
    check of each of its n samples)."""
    return detect(prompt)


def foreign_runs(units: list[str], allowed: set[str]) -> list[list[str]]:
    """Maximal runs of consecutive units outside the allowed scripts."""
    runs: list[list[str]] = []
    current: list[str] = []
    for unit in units:
        script = script_of(unit)
        if script in allowed or script == "other":
            if current:
                runs.append(current)
            current = []
        else:
            current.append(unit)
    if current:
        runs.append(current)
    return runs


class LanguageMixVerifier:
    """Rejects a completion whose prose switches into another language."""

    name: ClassVar[str] = NAME
    Options: ClassVar[type[BaseModel]] = LanguageOptions

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, LanguageOptions)
        self.options = options

    def _is_prose(self, run: list[str]) -> bool:
        if script_of(run[0]) in CJK:
            return len(run) >= self.options.min_cjk_run
        return len(run) >= self.options.min_word_run

    def verify_partial(self, candidate: Candidate, seen: int) -> Verdict | None:
        """The full check on the text up to its last line break, once that text is settled: no code
        block, display maths or command argument left open that a later closing mark would remove."""
        text = candidate.completion
        cut = text.rfind("\n") + 1
        language = self._language(candidate)
        if cut <= 0 or (text.isascii() and "latin" in SCRIPTS_OF[language]):
            return None  # ASCII prose in a Latin-script language has no foreign run, nor will this part
        units = prose_units(text[:cut])
        if units != prose_units(text[:cut] + _CLOSERS):
            return None
        verdict = self._judge(units, language)
        return None if verdict.accepted else verdict

    def _language(self, candidate: Candidate) -> str:
        language: str = self.options.language
        if language == "auto" and candidate.extra.get("language") in SCRIPTS_OF:
            language = candidate.extra["language"]  # the row's own, where its source gives one
        elif language == "auto":
            prompt = "\n".join(m.get("content", "") for m in candidate.messages if m.get("role") == "user")
            language = _prompt_language(prompt)
        return language

    def verify(self, candidate: Candidate) -> Verdict:
        return self._judge(prose_units(candidate.completion), self._language(candidate))

    def _judge(self, units: list[str], language: str) -> Verdict:
        """The verdict on a text's prose units, read in ``language``."""
        runs = foreign_runs(units, SCRIPTS_OF[language])
        foreign = sum(len(r) for r in runs)
        share = round(foreign / len(units), 4) if units else 0.0
        prose = [r for r in runs if self._is_prose(r)]
        short = [r for r in runs if len(r) >= 2 and not self._is_prose(r)]
        details = {"language": language, "foreign_share": share, "units": len(units)}
        if prose or len(short) >= self.options.recurring_runs:
            first = (prose or short)[0]
            sample = ("" if script_of(first[0]) in CJK else " ").join(first)[:80]
            return Verdict.reject(
                NAME, "mixed", runs=len(prose), short_runs=len(short), first_run=sample, **details
            )
        return Verdict.accept(**details)
