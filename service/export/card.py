"""The dataset card: YAML metadata the Hub reads, and a body that says how the data was made."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple

from service.export.figure import FILE
from service.responses import JobOut

if TYPE_CHECKING:
    from service.export.options import ExportOptions, ExportReport


def _size_category(rows: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if rows < limit:
            return name
    return "1M<n<10M"


class _Form(NamedTuple):
    """How the card speaks of an export form (``--format``): its name, columns and loss."""

    name: str
    columns: str
    loss_argument: str  # for SFTConfig in the snippet
    loss_note: str


FORMS = {
    "messages": _Form(
        "`messages`",
        "`messages` (user turn, then the assistant's `<think>` reasoning and answer)",
        "",
        "The loss is on every token, the prompt's too. For a loss on the assistant's turn only, export "
        "with `--format prompt-completion` (TRL's `assistant_only_loss` needs a chat template with "
        "`{% generation %}` markers, which most lack).",
    ),
    "prompt-completion": _Form(
        "conversational prompt-completion",
        "`prompt` (the turns before the assistant's) and `completion` (the assistant's `<think>` "
        "reasoning and answer)",
        ", completion_only_loss=True",
        "The loss is on the completion only: SFTTrainer masks the prompt of a prompt-completion dataset "
        "(`completion_only_loss`, on by default for this form).",
    ),
}


def render_card(options: ExportOptions, report: ExportReport, job_views: list[JobOut]) -> str:
    total, form = sum(report.splits.values()), FORMS[options.format]
    splits = "\n".join(f"  - split: {split}\n    path: data/{split}-*" for split in sorted(report.splits))
    lines = [
        "---",
        f"license: {options.license}",
        "task_categories:\n- text-generation",
        "tags:\n- reasoning\n- distillation\n- synthetic\n- tracemill",
        f"size_categories:\n- {_size_category(total)}",
        f"configs:\n- config_name: default\n  data_files:\n{splits}",
        "---",
        "",
        "# Reasoning traces distilled with Tracemill",
        "",
        f"{total} rows in {form.name} form: {report.reasoning} reasoning traces from a teacher, "
        "accepted by "
        f"rule-based verifiers, and {report.general} general samples "
        f"({report.reasoning / max(1, total):.1%} reasoning, asked for {options.reasoning_share:.0%}).",
        "",
    ]
    if report.note:
        lines += [f"> {report.note}", ""]
    for job in job_views:
        teacher, sampling = job.spec["teacher"], job.spec["sampling"]
        lines += [
            f"## Job `{job.id}`",
            "",
            f"- Teacher: `{teacher['model']}`; sampling: `{json.dumps(sampling, sort_keys=True)}`; "
            f"{job.spec['n']} samples per prompt; {job.tasks.total} prompts.",
            f"- Samples: {job.samples.total}, accepted {job.samples.accepted} "
            f"({(job.samples.acceptance_rate or 0):.1%}).",
            *_selection_lines(job.spec.get("prompts_from")),
            "",
            "| verifier | accepted | rejected | acceptance |",
            "|---|---|---|---|",
            *[
                f"| {v.name} | {v.accepted} | {v.rejected} | {(v.acceptance_rate or 0):.1%} |"
                for v in job.verifiers
            ],
            "",
        ]
    lines += [
        "## How the rows were chosen",
        "",
        "| step | reasoning | general |",
        "|---|---|---|",
        f"| available | {report.accepted} accepted samples | {report.general_available} rows |",
        f"| kept per prompt (best {options.keep_per_prompt}, the shortest) | {report.kept_per_prompt} | |",
        f"| exact duplicates removed | {report.reasoning_duplicates} | {report.general_duplicates} |",
        f"| contaminated ({options.ngram}-gram overlap with evaluation sets) removed | "
        f"{report.reasoning_contaminated} | {report.general_contaminated} |",
        *_bounds_row(options, report),
        f"| in the dataset | {report.reasoning} | {report.general} |",
        "",
        *_difficulty_lines(options, report),
        *_contamination_lines(report.contamination),
        "Splits: " + ", ".join(f"{split} {count}" for split, count in sorted(report.splits.items())) + ".",
        f"Assistant turns use the `{options.template}` template; rows {_order_text(options)}, "
        f"seed {options.seed}.",
        "",
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        "from trl import SFTConfig, SFTTrainer",
        "",
        'dataset = load_dataset("parquet", data_dir="data")  # or load_dataset("<repo id>") from the Hub',
        'trainer = SFTTrainer(model="Qwen/Qwen2.5-1.5B-Instruct", train_dataset=dataset["train"],',
        f'                     args=SFTConfig(output_dir="student"{form.loss_argument}))',
        "trainer.train()",
        "```",
        "",
        form.loss_note,
        "",
        f"Columns: {form.columns}, `source` "
        "(`reasoning` or `general`), `job_id`, `prompt_id`, `teacher`, `verifiers` (those it passed), "
        "`num_tokens`, `pass_rate` (accepted / sampled for its prompt: a difficulty signal), "
        "`student_pass_rate` (the same for the student, where a probe job measured it), `reference` "
        "and `reference_from` (`prompt`, or `majority` where the prompt had none and its samples' "
        "majority vote gives the answer as a pseudo-reference).",
        "",
    ]
    return "\n".join(lines)


def _selection_lines(selection: dict[str, Any] | None) -> list[str]:
    if not selection:
        return []
    return [
        f"- Prompts: the {selection['selected']} prompts of job `{selection['job']}` (a {selection['of']} "
        f"job) with a pass rate from {selection['min_pass_rate']:g} to {selection['max_pass_rate']:g}"
        + (f", the {selection['order']} {selection['limit']}" if selection.get("limit") else "")
        + "."
    ]


def _bounds_row(options: ExportOptions, report: ExportReport) -> list[str]:
    if options.min_pass_rate == 0 and options.max_pass_rate == 1:
        return []
    return [
        f"| {options.difficulty} pass rate outside {options.min_pass_rate:g} to {options.max_pass_rate:g} "
        f"removed | {report.out_of_range} | |"
    ]


def _order_text(options: ExportOptions) -> str:
    if options.order == "curriculum":
        return (
            f"ordered easy to hard by the {options.difficulty_label} (shards in that order, ties "
            "shuffled, general rows spread through)"
        )
    return "shuffled"


def _difficulty_lines(options: ExportOptions, report: ExportReport) -> list[str]:
    """The figure (``difficulty.svg`` beside the card) and its table."""
    if not report.difficulty:
        return []
    levels = sorted(report.difficulty, key=lambda k: -1.0 if k == "unknown" else float(k), reverse=True)
    return [
        "## Difficulty",
        "",
        f"![Reasoning rows by the {options.difficulty_label}]({FILE})",
        "",
        f"| {options.difficulty_label} | reasoning rows |",
        "|---|---|",
        *[f"| {level} | {report.difficulty[level]} |" for level in levels],
        "",
    ]


def _contamination_lines(found: dict[str, Any]) -> list[str]:
    """Per task: rows, those removed and the n-grams that matched most; and the templates ignored."""
    if not found:
        return []
    lines = ["| task | rows | removed | most frequent matching n-grams |", "|---|---|---|---|"]
    for task, count in found["sources"].items():
        grams = "; ".join(f"“{g['ngram']}” ({g['rows']})" for g in count["top_ngrams"]) or "—"
        lines.append(f"| {task} | {count['rows']} | {count['removed']} | {grams} |")
    lines.append("")
    if found["templates_ignored"]:
        shown = "; ".join(f"“{g['ngram']}” ({g['rows']} rows)" for g in found["top_templates"])
        lines += [
            f"{found['templates_ignored']} n-grams of the evaluation sets were ignored as templates (fixed "
            f"instructions shared by a task's prompts), e.g. {shown}.",
            "",
        ]
    return lines
