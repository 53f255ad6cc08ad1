"""A model judge, as DeepSeek-R1's generative reward model: a sample's final answer and the
reference (or, without one, the problem alone) go to a judge model, whose reply decides.

The worker sends the question with the teacher's client (``kind = "model"``): the judge is retried,
load-balanced and paused on like a teacher, and its tokens are counted in the job's usage. Only the
answer is shown by default: the think part is long and sways judges toward long reasoning.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.schemas import TeacherIn
from verifiers.base import Candidate, Verdict, VerifierKind

NAME = "judge"
REPLY_CHARS = 2000

WITH_REFERENCE = """You are grading a candidate's final answer to a problem against the reference answer.

<problem>
{prompt}
</problem>

<reference>
{reference}
</reference>

<candidate>
{answer}
</candidate>

The candidate is correct when its final answer means the same as the reference (equivalent forms, \
such as 1/2 and 0.5, count as the same). Judge the final answer only, not the reasoning that led to it.
{instructions}"""

WITHOUT_REFERENCE = """You are grading a candidate's answer to a problem. No reference answer is given: \
work out whether the candidate's final answer is correct.

<problem>
{prompt}
</problem>

<candidate>
{answer}
</candidate>

{instructions}"""

INSTRUCTIONS = {
    "tags": "Think briefly, then end your reply with [[YES]] if the candidate is correct or [[NO]] if not.",
    "json": 'Reply with one JSON object and nothing else: {"reasoning": "<one or two sentences>", '
    '"correct": true or false}.',
}
_PLACEHOLDER = re.compile(r"\{(prompt|reference|answer|instructions)\}")
_TAG = re.compile(r"\[\[\s*(YES|NO)\s*\]\]", re.IGNORECASE)


class JudgeOptions(BaseModel):
    """Which model judges, what it is shown and how its verdict is read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    judge: TeacherIn = Field(
        description="The judge model, in a teacher's shape and under the same rules: base_url (one or "
        "several servers), model, api_key_env (a key the operator bound to the judge's host)."
    )
    show: Literal["answer", "trace"] = Field(
        default="answer", description="answer: the part after </think>; trace: the whole completion."
    )
    verdict: Literal["tags", "json"] = Field(
        default="tags", description='tags: the reply ends with [[YES]] or [[NO]]; json: {"correct": bool}.'
    )
    template: str | None = Field(
        default=None,
        max_length=20_000,
        description="The question when the prompt has a reference; placeholders {prompt}, {reference}, "
        "{answer} and {instructions} (how to state the verdict; appended when left out).",
    )
    template_without_reference: str | None = Field(default=None, max_length=20_000)
    max_tokens: int = Field(default=1024, ge=1, le=65_536)
    temperature: float = Field(default=0.0, ge=0, le=2)

    @field_validator("template", "template_without_reference")
    @classmethod
    def _has_answer(cls, value: str | None) -> str | None:
        if value is not None and "{answer}" not in value:
            raise ValueError("must contain the placeholder '{answer}'")
        return value


def fill(template: str, values: dict[str, str]) -> str:
    """The template with its placeholders replaced; other braces are left alone (templates show JSON)."""
    if "{instructions}" not in template:
        template += "\n\n{instructions}"
    # One pass, so that a placeholder inside the model's answer or the prompt stays text.
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)


def final_part(reply: str) -> str:
    """A reasoning judge's reply after its own think part."""
    end = reply.rfind("</think>")
    return reply[end + len("</think>") :] if end >= 0 else reply


def read_tags(reply: str) -> bool | None:
    """The last [[YES]] or [[NO]] of the reply; None without one."""
    found = _TAG.findall(final_part(reply))
    return found[-1].upper() == "YES" if found else None


def read_json(reply: str) -> tuple[bool, str] | None:
    """The last JSON object of the reply with a boolean ``correct`` (or a verdict of yes/no), and its
    reasoning; None without one."""
    text, decoder, found = final_part(reply), json.JSONDecoder(), None
    for start in (i for i, char in enumerate(text) if char == "{"):
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            correct = value.get("correct", value.get("verdict"))
            if isinstance(correct, str) and correct.strip().lower() in ("yes", "no", "true", "false"):
                correct = correct.strip().lower() in ("yes", "true")
            if isinstance(correct, bool):
                found = (correct, str(value.get("reasoning", ""))[:REPLY_CHARS])
    return found


def problem_of(candidate: Candidate) -> str:
    """The prompt as the teacher saw it: its last user message."""
    users = [m.get("content", "") for m in candidate.messages if m.get("role") == "user"]
    return users[-1] if users else ""


class JudgeVerifier:
    """Accepts a sample the judge model calls correct."""

    name: ClassVar[str] = NAME
    Options: ClassVar[type[BaseModel]] = JudgeOptions
    kind: ClassVar[VerifierKind] = "model"
    endpoint_option: ClassVar[str] = "judge"

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, JudgeOptions)
        self.options = options

    def endpoint(self) -> dict[str, Any]:
        return self.options.judge.model_dump()

    def sampling(self) -> dict[str, Any]:
        return {"temperature": self.options.temperature, "max_tokens": self.options.max_tokens}

    def question(self, candidate: Candidate) -> list[dict[str, str]] | Verdict:
        shown = candidate.completion if self.options.show == "trace" else candidate.answer
        if not shown or not shown.strip():
            return Verdict.reject(NAME, "no_answer")
        values = {
            "prompt": problem_of(candidate),
            "reference": candidate.reference or "",
            "answer": shown,
            "instructions": INSTRUCTIONS[self.options.verdict],
        }
        if candidate.reference:
            template = self.options.template or WITH_REFERENCE
        else:
            template = self.options.template_without_reference or WITHOUT_REFERENCE
        return [{"role": "user", "content": fill(template, values)}]

    def read(self, candidate: Candidate, reply: str) -> Verdict:
        details: dict[str, Any] = {"model": self.options.judge.model, "reply": reply[-REPLY_CHARS:]}
        if self.options.verdict == "json":
            parsed = read_json(reply)
            correct = parsed[0] if parsed else None
            if parsed:
                details["reasoning"] = parsed[1]
        else:
            correct = read_tags(reply)
        if correct is None:
            return Verdict.reject(NAME, "unparseable", expected=self.options.verdict, **details)
        if not correct:
            return Verdict.reject(NAME, "incorrect", **details)
        return Verdict.accept(**details)
