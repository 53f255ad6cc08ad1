"""``tracemill verify|export``: verifiers over existing data without a job, and datasets made from jobs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from service.cli.arguments import first_error, json_objects
from service.errors import TracemillError
from service.settings import Settings


def _verifier_specs(names: list[str], options: list[str]) -> list[Any]:
    """``--verifier NAME`` (repeated) with ``--options NAME=JSON``, checked like a job's."""
    from pydantic import ValidationError

    from verifiers.base import kind_of
    from verifiers.registry import load_verifier, validate_options
    from verifiers.runner import VerifierSpec

    given = json_objects("--options", options)
    unused = set(given) - set(names)
    if unused:
        raise TracemillError(f"--options for {', '.join(sorted(unused))}, which no --verifier names")
    specs = []
    for name in names:
        kind = kind_of(load_verifier(name))
        if kind != "sample":
            what = "asks a model" if kind == "model" else "judges a prompt's samples together"
            raise TracemillError(f"--verifier {name}: it {what}; run it in a job (tracemill submit)")
        try:
            validate_options(name, given.get(name, {}))
        except ValidationError as exc:
            raise TracemillError(f"--options {name}: {first_error(exc)}") from exc
        specs.append(VerifierSpec(name, given.get(name, {})))
    return specs


def cmd_verify(args: argparse.Namespace, _settings: Settings) -> int:
    from service.cli.offline import Columns, verify_rows, write_rows
    from service.sources import read_rows
    from verifiers.runner import VerifierRunner

    specs = _verifier_specs(args.verifier, args.options or [])
    if (args.completion is None) == (args.input is None):
        raise TracemillError("give --input FILE (with --output FILE) or --completion TEXT")
    if args.input is not None and args.output is None:
        raise TracemillError("--input needs --output FILE (.jsonl or .parquet)")
    runner = VerifierRunner(processes=args.processes, timeout_s=args.timeout)
    try:
        if args.completion is not None:
            row = {"completion": args.completion, "reference": args.reference, "prompt": args.prompt}
            [result] = verify_rows([row], specs, runner)
            print(
                json.dumps(
                    {k: result[k] for k in ("accepted", "reason", "reasons")}
                    | {"verdicts": [{**v, "details": json.loads(v["details"])} for v in result["verdicts"]]},
                    indent=2,
                    ensure_ascii=False,
                )
            )
            return 0 if result["accepted"] else 1
        rows = verify_rows(
            read_rows(Path(args.input)),
            specs,
            runner,
            columns=Columns(
                args.completion_field, args.reference_field, args.prompt_field, args.language_field
            ),
        )
        written = write_rows(rows, Path(args.output))
        print(f"verified {written} rows -> {args.output}", file=sys.stderr)
        return 0
    finally:
        runner.close()


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from service.database.db import make_engine
    from service.export.decontaminate import heavy_removals
    from service.export.mixing import export
    from service.export.options import ExportOptions
    from service.export.request import ExportIn

    try:
        request = ExportIn.model_validate(
            {
                "jobs": args.job,
                "general": args.general or [],
                "reasoning_share": args.reasoning_share,
                "keep_per_prompt": args.keep_per_prompt,
                "template": args.template,
                "format": args.format,
                "order": args.order,
                "difficulty": args.difficulty,
                "min_pass_rate": args.min_pass_rate,
                "max_pass_rate": args.max_pass_rate,
                "seed": args.seed,
                "test_size": args.test_size,
                "decontaminate": args.decontaminate or [],
                "ngram": args.ngram,
                "template_share": args.template_share,
                "template_min_rows": args.template_min_rows,
                "shard_rows": args.shard_rows,
                "license": args.license,
                "push_to_hub": args.push_to_hub,
                "private": not args.public,
                "soft_labels": args.soft_labels,
                "student_tokenizer": args.student_tokenizer,
            }
        )
    except ValidationError as exc:
        raise TracemillError(first_error(exc)) from exc
    missing = [p for p in (*request.general, *request.decontaminate) if not Path(p).exists()]
    if missing:
        raise TracemillError(f"no such file: {missing[0]}")
    options = ExportOptions.from_request(request, Path(args.output))
    engine = make_engine(settings.database_url)
    try:
        report = export(engine, settings.shard_store, options)
    finally:
        engine.dispose()
    print(
        f"exported {sum(report.splits.values())} rows ({report.reasoning} reasoning, "
        f"{report.general} general) to {args.output}: " + ", ".join(report.files)
    )
    if request.soft_labels:
        print(f"soft labels for {report.soft_labeled} reasoning rows in {Path(args.output) / 'soft_labels'}")
    if report.note:
        print(report.note, file=sys.stderr)
    for warning in heavy_removals(report.contamination, args.decontaminate_warn_share):
        print(f"warning: {warning}", file=sys.stderr)
    if args.push_to_hub:
        from service.export.hub import push_to_hub

        token = settings.hf_token.get_secret_value() if settings.hf_token else None
        url = push_to_hub(Path(args.output), args.push_to_hub, token, private=request.private)
        print(f"pushed to {url}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare this module's commands on the ``tracemill`` parser."""
    verify = sub.add_parser("verify", help="run verifiers over existing data, without a job")
    verify.add_argument("--verifier", action="append", required=True, help="verifier to apply (repeat)")
    verify.add_argument("--options", action="append", help="NAME=JSON options for a verifier (repeat)")
    verify.add_argument("--input", help="JSONL or Parquet with a completion column (and reference, tests)")
    verify.add_argument("--output", help="where rows go with their verdicts: .jsonl or .parquet")
    verify.add_argument("--completion-field", default="completion")
    verify.add_argument("--reference-field", default="reference")
    verify.add_argument("--prompt-field", default="prompt", help="column with the prompt text or messages")
    verify.add_argument(
        "--language-field", help="column with each row's target language (langmix's auto reads the prompt)"
    )
    verify.add_argument("--completion", help="verify one completion given as text; prints its verdict")
    verify.add_argument("--reference", help="with --completion: the reference answer")
    verify.add_argument("--prompt", help="with --completion: the prompt (sets langmix's language)")
    verify.add_argument("--processes", type=int, help="verifier processes (default: cores)")
    verify.add_argument("--timeout", type=float, default=10.0, help="seconds per verifier call")
    verify.set_defaults(run=cmd_verify)

    exp = sub.add_parser("export", help="write an SFT dataset (TRL messages) from jobs' accepted samples")
    exp.add_argument(
        "--job", action="append", required=True, help="job whose accepted samples to use (repeat)"
    )
    exp.add_argument("--output", required=True, help="an empty or new folder")
    exp.add_argument(
        "--general", action="append", help="general data: JSONL, Parquet or datasets folder (repeat)"
    )
    exp.add_argument("--reasoning-share", type=float, default=0.8, help="reasoning / all rows (default 0.8)")
    exp.add_argument("--keep-per-prompt", type=int, default=1, help="accepted samples kept per prompt")
    exp.add_argument("--template", choices=["think", "answer_tag"], default="think")
    exp.add_argument(
        "--format",
        choices=["messages", "prompt-completion"],
        default="messages",
        help="messages: one column of turns; prompt-completion: TRL's prompt and completion columns, "
        "so that SFTTrainer's loss is on the completion only",
    )
    exp.add_argument(
        "--order",
        choices=["shuffled", "curriculum"],
        default="shuffled",
        help="curriculum: rows easy to hard by --difficulty (docs/difficulty.md)",
    )
    exp.add_argument(
        "--difficulty",
        choices=["teacher", "student"],
        default="teacher",
        help="the pass rate the curriculum and the bounds read: the teacher's, or the probed student's",
    )
    exp.add_argument("--min-pass-rate", type=float, default=0.0, help="leave out reasoning rows below it")
    exp.add_argument("--max-pass-rate", type=float, default=1.0, help="leave out reasoning rows above it")
    exp.add_argument("--seed", type=int, default=0, help="shuffle and sampling seed")
    exp.add_argument("--test-size", type=float, default=0.0, help="share of rows in the test split")
    exp.add_argument(
        "--decontaminate", action="append", help="evaluation set to remove overlaps with (repeat)"
    )
    exp.add_argument("--ngram", type=int, default=8, help="n of the n-gram overlap rule")
    exp.add_argument(
        "--template-share",
        type=float,
        default=0.1,
        help="an evaluation n-gram in more than this share of a task's prompts is a template, not matched",
    )
    exp.add_argument("--template-min-rows", type=int, default=10, help="...and in at least this many")
    exp.add_argument(
        "--decontaminate-warn-share", type=float, default=0.5, help="warn when more of a task is removed"
    )
    exp.add_argument("--shard-rows", type=int, default=20_000, help="rows per output shard at most")
    exp.add_argument("--license", default="other", help="licence in the dataset card")
    exp.add_argument(
        "--push-to-hub", metavar="REPO_ID", help="upload the folder to this Hub dataset (HF_TOKEN)"
    )
    exp.add_argument("--public", action="store_true", help="with --push-to-hub: a public repository")
    exp.add_argument(
        "--soft-labels",
        action="store_true",
        help="also write soft_labels/ (token ids, loss mask, the teacher's top-k log-probabilities)",
    )
    exp.add_argument("--student-tokenizer", help="with --soft-labels: the student's tokenizer (name or path)")
    exp.set_defaults(run=cmd_export)
