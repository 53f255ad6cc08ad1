"""reasoning_gym: a procedural task's own scorer, applied to the sample's final answer.

reasoning-gym (the ``tracemill[reasoning-gym]`` extra) makes prompts of 100+ tasks, each with a
``score_answer`` that knows its task's answers (a sorted word list, a grid, a number). A prompt made
by ``tracemill submit --reasoning-gym`` carries its entry (question, answer, metadata) in its
metadata under ``reasoning_gym``; this verifier hands that entry and the extracted answer to the
task's scorer. Scorers give partial credit (``-30`` for ``30`` may score 0.67), so a sample is
accepted only at ``min_score`` (a full score by default).

The answer is the last ``<answer>…</answer>`` of the part after the reasoning (the form
reasoning-gym's prompts ask for), else its last ``\\boxed{}``, else that whole part, stripped.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from verifiers.answers import last_boxed
from verifiers.base import DETAIL_CHARS, Candidate, Verdict

NAME = "reasoning_gym"
METADATA_KEY = "reasoning_gym"
_ANSWER_TAG = re.compile(r"<answer>\s?(.*?)\s?</answer>", re.DOTALL)


class ProceduralOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_score: float = Field(default=1.0, ge=0, le=1, description="The scorer's score a sample needs.")
    extract: Literal["auto", "answer_tag", "boxed", "whole"] = "auto"


def extract(answer_part: str, how: str = "auto") -> str | None:
    """The final answer by the rule above (``how`` keeps to one of its steps)."""
    if how in ("auto", "answer_tag"):
        tags = _ANSWER_TAG.findall(answer_part)
        if tags:
            return str(tags[-1]).strip()
    if how in ("auto", "boxed"):
        boxed = last_boxed(answer_part)
        if boxed is not None:
            return boxed.strip()
    if how in ("auto", "whole"):
        return answer_part.strip() or None
    return None


def scorer(task: str) -> Any:
    """The task's ``score_answer(answer, entry)``."""
    try:
        import reasoning_gym
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError("the reasoning_gym verifier needs tracemill[reasoning-gym]") from exc
    return reasoning_gym.get_score_answer_fn(task)


class ReasoningGymVerifier:
    """Accepts a sample whose answer the task's own scorer scores at ``min_score`` or more."""

    name: ClassVar[str] = NAME
    Options: ClassVar[type[BaseModel]] = ProceduralOptions

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, ProceduralOptions)
        self.options = options

    def verify(self, candidate: Candidate) -> Verdict:
        entry = (candidate.metadata or {}).get(METADATA_KEY)
        if not isinstance(entry, dict) or not isinstance(entry.get("metadata"), dict):
            return Verdict.reject(
                NAME, "no_entry", error=f"the prompt's metadata has no {METADATA_KEY!r} entry"
            )
        task = entry["metadata"].get("source_dataset")
        answer = extract(candidate.answer or "", self.options.extract)
        if answer is None:
            return Verdict.reject(NAME, "no_answer", task=task)
        score = float(scorer(str(task))(answer=answer, entry=entry))
        details = {"task": task, "score": round(score, 4), "extracted": answer[:DETAIL_CHARS]}
        if score >= self.options.min_score:
            return Verdict.accept(**details)
        return Verdict.reject(NAME, "wrong_answer", **details)
