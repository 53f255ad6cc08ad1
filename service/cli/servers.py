"""``tracemill serve|worker|db|token|teacher-standin``: the commands that run Tracemill's processes
(the HTTP API, workers, the stand-in teacher) and set up what they need (the schema, API tokens).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import time

from service.errors import TracemillError
from service.settings import Settings

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
    from verifiers.code import sandbox
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
        hard_above=args.hard_above,
        hard_correct_share=args.hard_correct_share,
    )

    def ready(port: int) -> None:
        print(f"stand-in teacher listening on http://{args.host}:{port}/v1", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_standin(config, args.host, args.port, ready))
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare this module's commands on the ``tracemill`` parser."""
    from service.standin.server import DEFAULT_MODEL, StandinConfig

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
    standin.add_argument(
        "--hard-above", type=int, default=0, help="a prompt with a number above this is hard (0: none is)"
    )
    standin.add_argument(
        "--hard-correct-share",
        type=float,
        default=0.0,
        help="share of a hard prompt's samples that are right",
    )
    standin.set_defaults(run=cmd_standin)
