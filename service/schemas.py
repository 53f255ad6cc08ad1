"""API request and response models; a bad field is a 422 whose message names it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator, with_config
from pydantic import ValidationError as PydanticValidationError
from typing_extensions import TypedDict

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
    a dataset's own layout: see ``verifiers/test_layouts.py``) and
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


class JobCreated(BaseModel):
    id: str
    status: str
    num_tasks: int
    created: bool = Field(description="False when an equal idempotency key returned an existing job.")


class TaskCounts(BaseModel):
    total: int = 0
    draft: int = 0
    queued: int = 0
    running: int = 0
    paused: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0


class SampleCounts(BaseModel):
    total: int
    accepted: int
    rejected: int
    acceptance_rate: float | None


class VerifierStats(BaseModel):
    name: str
    accepted: int
    rejected: int
    acceptance_rate: float | None
    seconds: float = Field(default=0.0, description="Time its verdicts took, summed over samples.")
    tokens: int = Field(default=0, description="Tokens of the model it asks (a judge), prompt and reply.")


class ModelUsage(BaseModel):
    """Tokens one model spent on a job, in its role: the teacher, or the verifier that asked it."""

    model: str
    role: str
    prompt_tokens: int
    completion_tokens: int


class FailedTask(BaseModel):
    prompt_id: str
    attempt: int
    last_error: str | None


class JobOut(BaseModel):
    id: str
    name: str | None
    owner: str | None = Field(description="The name of the API token that created the job.")
    status: str
    status_reason: str | None = Field(description="Why the job is paused, when it is.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any]
    tasks: TaskCounts
    samples: SampleCounts
    verifiers: list[VerifierStats]
    rejection_reasons: dict[str, int]
    tokens: dict[str, int]
    usage: list[ModelUsage] = Field(default_factory=list, description="Tokens by model: teacher, judges.")
    failed_tasks: list[FailedTask]
    shards: int


class JobSummary(BaseModel):
    id: str
    name: str | None
    owner: str | None
    status: str
    status_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    tasks: TaskCounts
    samples: SampleCounts
    tokens: dict[str, int]


class VerdictOut(BaseModel):
    verifier: str
    accepted: bool
    reason: str | None
    details: dict[str, Any]


class SampleOut(BaseModel):
    id: int
    prompt_id: str
    sample_index: int
    messages: list[dict[str, str]]
    reference: str | None
    completion: str
    think: str | None
    answer: str | None
    finish_reason: str | None
    completion_tokens: int
    accepted: bool
    reason: str | None
    verdicts: list[VerdictOut]


class SamplePage(BaseModel):
    items: list[SampleOut]
    next_cursor: int | None = Field(description="Pass as ?cursor= for the next page; null at the end.")
    prev_cursor: int | None = Field(
        default=None, description="Pass as ?before= for the previous page; null on the first."
    )


class ShardOut(BaseModel):
    id: int
    kind: str
    path: str = Field(description="Relative to the shard directory.")
    location: str = Field(description="Where the server wrote it: an absolute path.")
    num_rows: int
    num_bytes: int


class ExportIn(Strict):
    """An export of jobs' accepted samples. Over HTTP, the files it names are read from the operator's
    import folder (TRACEMILL_IMPORT_DIR) only, and a push goes only to repositories TRACEMILL_HUB_REPOS
    allows."""

    jobs: list[str] = Field(min_length=1)
    general: list[str] = []
    reasoning_share: float = Field(default=0.8, gt=0, le=1)
    keep_per_prompt: int = Field(default=1, ge=1)
    template: Literal["think", "answer_tag"] = "think"
    format: Literal["messages", "prompt-completion"] = Field(
        default="messages",
        description="messages: one `messages` column; prompt-completion: `prompt` (the turns before the "
        "assistant's) and `completion` (the assistant turn), TRL's conversational prompt-completion form, "
        "whose loss SFTTrainer takes on the completion only.",
    )
    seed: int = 0
    test_size: float = Field(default=0.0, ge=0, lt=1)
    decontaminate: list[str] = []
    ngram: int = Field(default=8, ge=1, le=64)
    template_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="An evaluation n-gram in more than this share of one task's training prompts is a "
        "template (a fixed instruction), ignored by decontamination; 1 ignores none.",
    )
    template_min_rows: int = Field(default=10, ge=1, description="…and in at least this many of them.")
    shard_rows: int = Field(default=20_000, ge=100)
    license: str = Field(default="other", max_length=100)
    push_to_hub: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    private: bool = True
    soft_labels: bool = Field(
        default=False,
        description="Also write soft_labels/: per reasoning row the student's token ids of prompt and "
        "completion, a loss mask and the teacher's top-k ids and log-probabilities.",
    )
    student_tokenizer: str | None = Field(
        default=None,
        max_length=300,
        description="The student's tokenizer (Hub name or path); must be the jobs' teacher tokenizer.",
    )

    @model_validator(mode="after")
    def _tokenizer_for_soft_labels(self) -> ExportIn:
        if self.soft_labels and not self.student_tokenizer:
            raise ValueError(
                "student_tokenizer: required with soft_labels (the student's tokenizer name or path)"
            )
        return self


class ExportOut(BaseModel):
    id: str
    status: str
    location: str = Field(description="The dataset folder on the server.")
    rows_written: int
    report: dict[str, Any] | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
