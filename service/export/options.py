"""What an export is asked for (``ExportOptions``, from the API's request or the command line) and what it
reports back (``ExportReport``: the counts at each step, which the card shows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from service.export.decontaminate import (
    DEFAULT_N,
    DEFAULT_TEMPLATE_MIN_ROWS,
    DEFAULT_TEMPLATE_SHARE,
)
from service.export.request import ExportIn

DEFAULT_SHARD_ROWS = 20_000  # a shard is shuffled in memory: this bounds the export's footprint


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how; ``reasoning_share`` is reasoning / (reasoning + general)."""

    jobs: tuple[str, ...]
    output: Path
    general: tuple[Path, ...] = ()
    reasoning_share: float = 0.8
    keep_per_prompt: int = 1
    template: Literal["think", "answer_tag"] = "think"
    format: Literal["messages", "prompt-completion"] = "messages"
    order: Literal["shuffled", "curriculum"] = "shuffled"
    difficulty: Literal["teacher", "student", "entropy"] = "teacher"
    min_pass_rate: float = 0.0
    max_pass_rate: float = 1.0
    seed: int = 0
    test_size: float = 0.0
    decontaminate: tuple[Path, ...] = ()
    ngram: int = DEFAULT_N
    template_share: float = DEFAULT_TEMPLATE_SHARE
    template_min_rows: int = DEFAULT_TEMPLATE_MIN_ROWS
    shard_rows: int = DEFAULT_SHARD_ROWS
    license: str = "other"
    student_tokenizer: str | None = None  # set: soft labels are exported too (soft_labels/)

    @property
    def difficulty_column(self) -> str:
        """The row column that the curriculum and the pass-rate bounds read."""
        return {"teacher": "pass_rate", "student": "student_pass_rate", "entropy": "entropy"}[self.difficulty]

    @property
    def difficulty_label(self) -> str:
        """The difficulty measure, as the card says it."""
        return "teacher's entropy" if self.difficulty == "entropy" else f"{self.difficulty}'s pass rate"

    @classmethod
    def from_request(cls, request: ExportIn, output: Path) -> ExportOptions:
        """The options of a validated request (from the API or the command line)."""
        return cls(
            jobs=tuple(request.jobs),
            output=output,
            general=tuple(Path(p) for p in request.general),
            reasoning_share=request.reasoning_share,
            keep_per_prompt=request.keep_per_prompt,
            template=request.template,
            format=request.format,
            order=request.order,
            difficulty=request.difficulty,
            min_pass_rate=request.min_pass_rate,
            max_pass_rate=request.max_pass_rate,
            seed=request.seed,
            test_size=request.test_size,
            decontaminate=tuple(Path(p) for p in request.decontaminate),
            ngram=request.ngram,
            template_share=request.template_share,
            template_min_rows=request.template_min_rows,
            shard_rows=request.shard_rows,
            license=request.license,
            student_tokenizer=request.student_tokenizer if request.soft_labels else None,
        )


@dataclass
class ExportReport:
    """Counts at each step; the card shows them."""

    accepted: int = 0
    kept_per_prompt: int = 0
    reasoning_duplicates: int = 0
    reasoning_contaminated: int = 0
    reasoning: int = 0
    general_available: int = 0
    general_duplicates: int = 0
    general_contaminated: int = 0
    general: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    soft_labeled: int = 0
    out_of_range: int = 0  # reasoning rows whose difficulty fell outside the pass-rate bounds
    difficulty: dict[str, int] = field(default_factory=dict)  # reasoning rows by pass rate ("0.25")
    note: str = ""
    contamination: dict[str, Any] = field(default_factory=dict)  # Decontaminator.report()

    def add_note(self, text: str) -> None:
        """A warning for the export's reader: printed, and quoted at the top of the card."""
        self.note = f"{self.note} {text}" if self.note else text
