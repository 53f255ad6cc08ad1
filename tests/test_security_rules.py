"""The operator's security settings on their own: token entries, host and key rules, the job rate, and
``serve`` refusing to listen beyond loopback without tokens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.security.limits import JobRate, TooManyRequests
from service.security.teachers import HostRules, TeacherPolicy
from service.security.tokens import BadTokenConfig, Role, TokenBook, entry_for, new_token


def test_an_entry_made_for_a_token_identifies_it_and_no_other() -> None:
    alice, robin = new_token(), new_token()
    entries = [
        entry_for("alice", Role.submit, alice),
        "# robin only reads",
        entry_for("robin", Role.read, robin),
    ]
    text = "\n".join(entries)
    book = TokenBook.parse(text, "TRACEMILL_TOKENS")
    assert book.configured
    assert book.identify(alice) == book.entries[0][1]
    assert (book.entries[0][1].name, book.entries[0][1].role) == ("alice", Role.submit)
    assert book.identify(robin) is not None and not book.identify(robin).may(Role.submit)  # type: ignore[union-attr]
    assert book.identify(alice[:-1]) is None
    assert book.identify("") is None
    assert alice not in entry_for("alice", Role.submit, alice)  # the entry holds the hash only


def test_the_command_prints_a_token_its_entry_identifies(tmp_path: Path) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "service.cli", "token", "new", "--name", "ci", "--role", "read"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    token = printed.split("it is not kept anywhere): ", 1)[1].split()[0]
    entry = printed.rsplit("TRACEMILL_TOKENS_FILE: ", 1)[1].strip()
    (tmp_path / "tokens").write_text(entry + "\n")
    principal = TokenBook.load("", tmp_path / "tokens").identify(token)
    assert principal is not None and (principal.name, principal.role) == ("ci", Role.read)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("alice:submit:sha256:abc", "entry 1: expected name:role:sha256:<64 hex digits>"),
        ("alice:submit:" + "f" * 64, "entry 1: expected name:role:sha256"),
        (f"a:read:sha256:{'0' * 64}, bob:owner:sha256:{'1' * 64}", "entry 2: role 'owner' is not one of"),
    ],
)
def test_a_bad_entry_is_named_by_its_number(text: str, said: str) -> None:
    with pytest.raises(BadTokenConfig, match=re.escape(said)):
        TokenBook.parse(text, "TRACEMILL_TOKENS")


def test_a_missing_tokens_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadTokenConfig, match=r"TRACEMILL_TOKENS_FILE: cannot read .*nothing"):
        TokenBook.load("", tmp_path / "nothing")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("[::1]", True),
        ("LOCALHOST.", True),
        ("vllm", True),
        ("gpu7.cluster.internal", True),
        ("169.254.169.254", False),  # the cloud metadata endpoint
        ("10.1.2.3", True),
        ("10.2.0.1", False),
        ("2130706433", False),  # 127.0.0.1 as one number: not an address we parse, not a listed name
        ("localhost.evil.example", False),
        ("vllm.evil.example", False),
        ("", False),
    ],
)
def test_host_rules_match_names_wildcards_and_networks(host: str, allowed: bool) -> None:
    rules = HostRules.parse(["127.0.0.0/8", "::1", "localhost", "vllm", "*.cluster.internal", "10.1.0.0/16"])
    assert rules.allow(host) is allowed


def test_a_key_goes_only_to_its_own_hosts() -> None:
    policy = TeacherPolicy.from_lists(["127.0.0.1", "vllm", "gpu*"], {"TEACHER_API_KEY": ["vllm"]})
    teacher = {"base_url": "http://vllm:8000/v1", "model": "m", "api_key_env": "TEACHER_API_KEY"}
    assert policy.refusal(teacher) is None
    assert policy.refusal({**teacher, "api_key_env": None}) is None
    both = policy.refusal({**teacher, "base_url": ["http://vllm:8000/v1", "http://gpu2:8000/v1"]})
    assert both is not None and both.field == "teacher.api_key_env" and "'gpu2'" in both.message
    other = policy.refusal({**teacher, "api_key_env": "HF_TOKEN"})
    assert other is not None and "TRACEMILL_TEACHER_KEYS" in other.message
    outside = policy.refusal({**teacher, "base_url": ["http://vllm:8000/v1", "http://10.0.0.5/v1"]})
    assert outside is not None and outside.field == "teacher.base_url.1"


def test_engine_jobs_load_only_listed_models_without_file_or_code_options() -> None:
    policy = TeacherPolicy.from_lists([], {}, ["/models/*"])
    engine = {
        "kind": "vllm-engine",
        "model": "/models/qwen-7b",
        "engine": {"options": {"max_model_len": 4096}},
    }
    assert policy.refusal(engine) is None
    assert policy.refusal({**engine, "model": "/etc/passwd"}).field == "teacher.model"  # type: ignore[union-attr]
    unsafe = policy.refusal({**engine, "engine": {"options": {"trust_remote_code": True}}})
    assert unsafe is not None and unsafe.field == "teacher.engine.options.trust_remote_code"


def test_the_job_rate_refills_over_time_and_says_when_to_come_back() -> None:
    rate = JobRate(per_minute=2)
    rate.take("alice", now=0.0)
    rate.take("alice", now=0.0)
    rate.take("bob", now=0.0)  # each token has its own allowance
    with pytest.raises(TooManyRequests) as refused:
        rate.take("alice", now=1.0)
    assert refused.value.retry_after_s == 29 and "TRACEMILL_JOBS_PER_MINUTE" in str(refused.value)
    rate.take("alice", now=31.0)
    JobRate(per_minute=0).take("alice")  # 0: no limit


def test_serve_refuses_every_interface_without_tokens(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEMILL_")}
    env["TRACEMILL_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "refusing to listen on 0.0.0.0 with no API tokens configured" in result.stderr
    assert "TRACEMILL_TOKENS" in result.stderr
