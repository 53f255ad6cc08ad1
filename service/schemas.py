"""What a job asks for: the request models of `POST /v1/jobs` (teacher, sampling, verifiers, prompts); a bad
field is a 422 whose message names it."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator, with_config
from pydantic import ValidationError as PydanticValidationError
from typing_extensions import TypedDict

from service.difficulty import AdaptiveBudgetIn, PromptsFromIn
from service.errors import UnknownVerifier
from verifiers.base import kind_of
from verifiers.registry import load_verifier, validate_options

MAX_PROMPTS_PER_REQUEST = 100_000
MAX_PROMPT_CHARS = 200_000
MAX_SAMPLES_PER_PROMPT = 256
MAX_TOP_LOGPROBS = 100
ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@with_config(ConfigDict(extra="forbid"))
class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]


@with_config(ConfigDict(extra="forbid"))
class PromptIn(TypedDict):
    """One prompt: text (``prompt``) or chat ``messages``, with an optional reference answer, tests (in
    a dataset's own layout: see ``verifiers/code/test_layouts.py``) and
    ``metadata`` (any JSON object, handed to verifiers as it is: a scorer's own fields).

    A TypedDict rather than a model: a job may carry 100,000 of them, and plain dicts validate about
    seven times faster than model instances.
    """

    id: Annotated[str, Field(min_length=1, max_length=200)]
    prompt: NotRequired[Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)] | None]
    messages: NotRequired[Annotated[list[Message], Field(min_length=1)] | None]
    reference: NotRequired[Annotated[str, Field(max_length=MAX_PROMPT_CHARS)] | None]
    tests: NotRequired[list[dict[str, Any] | str] | dict[str, Any] | str | None]
    metadata: NotRequired[dict[str, Any] | None]


def check_prompt_shapes(prompts: list[PromptIn]) -> None:
    """Each prompt has exactly one of text and messages (the message names the field)."""
    for index, prompt in enumerate(prompts):
        if (prompt.get("prompt") is None) == (prompt.get("messages") is None):
            raise ValueError(
                f"prompts.{index}.prompt: give exactly one of 'prompt' (text) or 'messages' (chat)"
            )


class EngineIn(Strict):
    """How a worker starts vLLM's engine in-process (teacher kind ``vllm-engine``)."""

    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    data_parallel_size: int = Field(default=1, ge=1, le=64)
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Further vLLM engine arguments (AsyncEngineArgs fields), e.g. "
        '{"max_model_len": 8192, "gpu_memory_utilization": 0.9}; checked by the worker that starts it.',
    )


class TeacherIn(Strict):
    """The teacher: an OpenAI-compatible server (kind ``openai``, the default; its API key is read by
    workers from ``api_key_env``) or vLLM's engine inside each worker (kind ``vllm-engine``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "base_url": "http://127.0.0.1:8000/v1",
                    "model": "deepseek-ai/DeepSeek-R1",
                    "api_key_env": "TEACHER_KEY",
                },
                {
                    "kind": "vllm-engine",
                    "model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                    "engine": {"tensor_parallel_size": 1, "options": {"max_model_len": 8192}},
                },
            ]
        },
    )

    kind: Literal["openai", "vllm-engine"] = Field(
        default="openai",
        description="'openai': an OpenAI-compatible server at base_url (vLLM's, or any other). "
        "'vllm-engine': each worker runs vLLM's engine on `model` (a path or Hub id) in its own "
        "process; the workers need the 'vllm' extra.",
    )
    base_url: str | list[str] | None = Field(
        default=None,
        description="Base URL ending in /v1, e.g. http://127.0.0.1:8000/v1, or a list of several servers of "
        "the same model, which are load-balanced (one that fails is skipped for a while). "
        "Required for kind 'openai'.",
    )
    model: str = Field(min_length=1, max_length=300)
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the key."
    )
    timeout_s: float = Field(default=600.0, gt=0, le=3600)
    engine: EngineIn | None = Field(default=None, description="Engine settings for kind 'vllm-engine'.")

    @model_validator(mode="before")
    @classmethod
    def _no_inline_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in ("api_key", "key", "token")):
            raise ValueError(
                "api_key: keys are never accepted inline; set the key in the workers' "
                "environment and name the variable in 'api_key_env'"
            )
        return data

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> TeacherIn:
        if self.kind == "openai":
            if self.base_url is None:
                raise ValueError("base_url: required for a teacher of kind 'openai'")
            if self.engine is not None:
                raise ValueError("engine: only for kind 'vllm-engine'")
        else:
            for name in ("base_url", "api_key_env"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: not used by kind 'vllm-engine', which runs no server")
            self.engine = self.engine or EngineIn()
        return self

    @field_validator("base_url")
    @classmethod
    def _http_urls(cls, value: str | list[str] | None) -> list[str] | None:
        """One URL or several; stored as a list."""
        from urllib.parse import urlsplit

        if value is None:
            return None
        urls = [value] if isinstance(value, str) else value
        if not urls:
            raise ValueError("give at least one URL")
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"{url!r} must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/v1"
                )
            if parts.username or parts.password:
                raise ValueError("must not carry credentials; use api_key_env")
        return [url.rstrip("/") for url in urls]

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_VAR_NAME.match(value):
            raise ValueError("must be an environment variable name such as TEACHER_API_KEY")
        return value


class SamplingIn(Strict):
    """Sampling settings sent to the teacher; R1's recommended temperature and top_p by default."""

    temperature: float = Field(default=0.6, ge=0, le=2)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_tokens: int = Field(default=4096, ge=1, le=1_000_000)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


class SoftLabelsIn(Strict):
    """Keep the teacher's top-k log-probabilities of every generated token of accepted samples."""

    top_k: int = Field(
        default=20,
        ge=1,
        le=MAX_TOP_LOGPROBS,
        description="Log-probabilities kept per token (a vLLM server gives at most its --max-logprobs, "
        "20 by default).",
    )
    tokenizer: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="The teacher's tokenizer (a Hub name or a path); the teacher model's name when empty. "
        "An export with soft labels refuses a student tokenizer that differs.",
    )


class VerifierIn(Strict):
    name: str
    options: dict[str, Any] = {}
    fallback_for: list[Annotated[str, Field(pattern=r"^[\w.-]+:[\w.-]+$")]] | None = Field(
        default=None,
        min_length=1,
        description="Run only on samples that an earlier verifier rejected with one of these reasons "
        "(e.g. ['math:unparseable_answer', 'math:no_reference']); there this verifier decides in that "
        "one's place, whose verdict is kept with details.superseded_by.",
    )
    abort_early: bool = Field(
        default=True,
        description="With the job's abort_early, whether this verifier's early check may end a sample "
        "while the teacher streams it.",
    )

    @model_validator(mode="after")
    def _known_and_valid(self) -> VerifierIn:
        try:
            validate_options(self.name, self.options)
        except UnknownVerifier as exc:
            raise ValueError(f"name: {exc.message}") from None
        except PydanticValidationError as exc:
            problems = "; ".join(
                f"options.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(f"{problems} (verifier {self.name!r})") from None
        return self


class JobIn(Strict):
    """A generation job. ``start: false`` creates a draft to which prompts are added in pages."""

    name: str | None = Field(default=None, max_length=200)
    teacher: TeacherIn
    role: Literal["teacher", "student"] = Field(
        default="teacher",
        description="'student': a probe job, whose model (given as `teacher`) is the student, to measure "
        "its pass rate on each prompt with the job's verifiers; its samples are kept as any job's, and "
        "are not exported as training data.",
    )
    prompts_from: PromptsFromIn | None = Field(
        default=None,
        description="Take the prompts from another job's results instead of `prompts`; the rule, the "
        "source job's role and how many were selected are stored with the job.",
    )
    adaptive_budget: AdaptiveBudgetIn | None = Field(
        default=None,
        description="A budget in samples for the whole job, spent by rounds where prompts are still "
        "unsolved: see docs/difficulty.md. Stops each prompt at stop_after_accepted (1 unless set).",
    )
    sampling: SamplingIn = SamplingIn()
    n: int = Field(default=4, ge=1, le=MAX_SAMPLES_PER_PROMPT, description="Samples per prompt.")
    verifiers: list[VerifierIn] = Field(default_factory=lambda: [VerifierIn(name="format")])
    stop_after_accepted: int | None = Field(
        default=None,
        ge=1,
        description="Early stop: once a prompt has this many accepted samples, its remaining samples are "
        "not requested (samples are then asked for in rounds of what is still missing).",
    )
    abort_early: bool = Field(
        default=False,
        description="Stream each sample and stop it as soon as a verifier's early check rejects it (a "
        "loop, a language drift, a length budget passed), so the teacher does not finish samples already "
        "lost. Samples are then separate requests. Not with soft_labels, which are read from whole replies.",
    )
    soft_labels: SoftLabelsIn | None = Field(
        default=None,
        description="Off by default. When set, the teacher is asked for the top-k log-probabilities of "
        "every token it generates; accepted samples keep them, rejected samples drop them.",
    )
    system_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    prompt_template: str | None = Field(
        default=None,
        max_length=MAX_PROMPT_CHARS,
        description="Wraps text prompts; must contain '{prompt}'.",
    )
    prompts: list[PromptIn] = Field(default_factory=list, max_length=MAX_PROMPTS_PER_REQUEST)
    start: bool = True
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("prompt_template")
    @classmethod
    def _has_placeholder(cls, value: str | None) -> str | None:
        if value is not None and "{prompt}" not in value:
            raise ValueError("must contain the placeholder '{prompt}'")
        return value

    @field_validator("verifiers")
    @classmethod
    def _distinct(cls, value: list[VerifierIn]) -> list[VerifierIn]:
        names = [v.name for v in value]
        if len(set(names)) != len(names):
            raise ValueError("each verifier may be named once")
        return value

    @model_validator(mode="after")
    def _fallbacks_follow_their_verifiers(self) -> JobIn:
        """A fallback names reasons of sample verifiers listed before it, and is not a group verifier
        (those judge every sample at the end)."""
        for index, verifier in enumerate(self.verifiers):
            if not verifier.fallback_for:
                continue
            field = f"verifiers.{index}.fallback_for"
            if kind_of(load_verifier(verifier.name)) == "group":
                raise ValueError(f"{field}: a group verifier judges every sample; it cannot be a fallback")
            earlier = {v.name for v in self.verifiers[:index] if kind_of(load_verifier(v.name)) == "sample"}
            for reason in verifier.fallback_for:
                if reason.partition(":")[0] not in earlier:
                    raise ValueError(
                        f"{field}: {reason!r} is not a reason of a sample verifier listed before "
                        f"{verifier.name!r} (listed before it: {', '.join(sorted(earlier)) or 'none'})"
                    )
        return self

    @model_validator(mode="after")
    def _rounds_within_n(self) -> JobIn:
        if self.adaptive_budget is not None:
            if self.adaptive_budget.first_round > self.n:
                raise ValueError(
                    "adaptive_budget.first_round: must not exceed n (the samples a prompt may get)"
                )
            if self.stop_after_accepted is None:
                self.stop_after_accepted = 1
        return self

    @model_validator(mode="after")
    def _stop_within_n(self) -> JobIn:
        if self.stop_after_accepted is not None and self.stop_after_accepted > self.n:
            raise ValueError("stop_after_accepted: must not exceed n")
        return self

    @model_validator(mode="after")
    def _abort_without_soft_labels(self) -> JobIn:
        if self.abort_early and self.soft_labels is not None:
            raise ValueError("abort_early: soft labels are read from whole replies; turn one of them off")
        return self

    @model_validator(mode="after")
    def _tokenizer_named(self) -> JobIn:
        if self.soft_labels is not None and self.soft_labels.tokenizer is None:
            self.soft_labels.tokenizer = self.teacher.model
        return self

    @model_validator(mode="after")
    def _prompts_when_starting(self) -> JobIn:
        check_prompt_shapes(self.prompts)
        if self.prompts_from is not None:
            if self.prompts:
                raise ValueError(
                    "prompts_from: a job takes its prompts from `prompts` or from a job, not both"
                )
            return self
        if self.start and not self.prompts:
            raise ValueError("prompts: at least one prompt is needed to start a job (or send start=false)")
        return self

    def spec(self) -> dict[str, Any]:
        """What is stored with the job: everything but the prompts."""
        return self.model_dump(exclude={"prompts", "start", "idempotency_key", "name"})


class PromptsIn(Strict):
    prompts: list[PromptIn] = Field(min_length=1, max_length=MAX_PROMPTS_PER_REQUEST)

    @model_validator(mode="after")
    def _shapes(self) -> PromptsIn:
        check_prompt_shapes(self.prompts)
        return self
